// tmsdash: small progressive enhancements. Every page works without them.
// Live regions are htmx's (hx-get + hx-trigger="every 1s"); this script says what happens to
// them, keeps clocks and times, and guards forms.
"use strict";

const ZONE_KEY = "tmsdash.zone";

// --- Live regions -------------------------------------------------------------------------

function banner(text) {
  const element = document.getElementById("live-banner");
  if (!element) {
    return;
  }
  element.replaceChildren();
  if (text === null) {
    element.hidden = true;
    return;
  }
  element.append(text);
  element.hidden = false;
}

function signedOutBanner() {
  const element = document.getElementById("live-banner");
  const link = document.createElement("a");
  const next = encodeURIComponent(location.pathname + location.search);
  link.href = `${element.dataset.loginUrl}?next=${next}`;
  link.textContent = "sign in again";
  banner("You were signed out; ");
  element.append(link, ". What the page shows stopped updating.");
}

// A region answered with new content: the tab's title and the screen-reader announcer follow
// the page's live region (the one element with data-title, and data-announce).
document.addEventListener("htmx:afterSwap", () => {
  const live = document.querySelector("[data-title]");
  if (live) {
    document.title = live.dataset.title;
  }
  const spoken = document.querySelector("[data-announce]");
  const announcer = document.getElementById("live-announcer");
  if (spoken && announcer && announcer.textContent !== spoken.dataset.announce) {
    announcer.textContent = spoken.dataset.announce;
  }
  showTimes(document);
});

document.addEventListener("htmx:afterRequest", (event) => {
  if (event.detail.successful) {
    banner(null);
  }
});

document.addEventListener("htmx:responseError", (event) => {
  if (event.detail.xhr.status === 401) {
    signedOutBanner();
  } else {
    banner(`The server answered ${event.detail.xhr.status}; retrying.`);
  }
});

document.addEventListener("htmx:sendError", () => banner("Connection lost, retrying."));
document.addEventListener("htmx:timeout", () => banner("Connection lost, retrying."));

// --- Clocks ---------------------------------------------------------------------------------

// "1.234 s" below a minute, "2 min 5 s" above: the server's format (jobs_tags.period).
function period(seconds) {
  if (seconds < 60) {
    return `${seconds.toFixed(3)} s`;
  }
  return `${Math.floor(seconds / 60)} min ${Math.floor(seconds % 60)} s`;
}

// An element with data-since (an ISO moment) shows the time since then, every second; the
// server's value stands until the first tick, and the element stops once the server renders it
// without data-since.
function tick() {
  document.querySelectorAll("[data-since]").forEach((element) => {
    const seconds = (Date.now() - Date.parse(element.dataset.since)) / 1000;
    if (seconds >= 0) {
      element.textContent = period(Math.floor(seconds));
    }
  });
}

// --- Times: UTC or the browser's zone -----------------------------------------------------

function zoneIsLocal() {
  try {
    return localStorage.getItem(ZONE_KEY) === "local";
  } catch {
    return false;
  }
}

function two(number) {
  return String(number).padStart(2, "0");
}

function zoneName(moment) {
  return new Intl.DateTimeFormat(undefined, { timeZoneName: "short" })
    .formatToParts(moment)
    .find((part) => part.type === "timeZoneName").value;
}

function localText(moment) {
  return `${moment.getFullYear()}-${two(moment.getMonth() + 1)}-${two(moment.getDate())} `
    + `${two(moment.getHours())}:${two(moment.getMinutes())}:${two(moment.getSeconds())} `
    + zoneName(moment);
}

function utcText(moment) {
  return moment.toISOString().slice(0, 19).replace("T", " ") + " UTC";
}

// A moment's date and time in the chosen zone, for the short formats below.
function fields(moment, local) {
  if (local) {
    return {
      year: moment.getFullYear(), month: two(moment.getMonth() + 1), day: two(moment.getDate()),
      hour: two(moment.getHours()), minute: two(moment.getMinutes()),
    };
  }
  return {
    year: moment.getUTCFullYear(), month: two(moment.getUTCMonth() + 1), day: two(moment.getUTCDate()),
    hour: two(moment.getUTCHours()), minute: two(moment.getUTCMinutes()),
  };
}

// The data-time-format of charts' time labels (lib/svgcharts.py TIME_FORMATS).
const TIME_FORMATS = {
  hour: (f) => `${f.hour}:${f.minute}`,
  day: (f) => `${f.month}-${f.day}`,
  datetime: (f) => `${f.year}-${f.month}-${f.day} ${f.hour}:${f.minute}`,
};

// <time datetime> in full; elements with data-time (an ISO moment) in their data-time-format;
// elements with data-time-zone say which zone those are in.
function showTimes(root) {
  const local = zoneIsLocal();
  root.querySelectorAll("time[datetime]").forEach((element) => {
    const moment = new Date(element.getAttribute("datetime"));
    if (!Number.isNaN(moment.getTime())) {
      element.textContent = local ? localText(moment) : utcText(moment);
    }
  });
  root.querySelectorAll("[data-time]").forEach((element) => {
    const moment = new Date(element.dataset.time);
    const format = TIME_FORMATS[element.dataset.timeFormat] || TIME_FORMATS.datetime;
    if (!Number.isNaN(moment.getTime())) {
      element.textContent = format(fields(moment, local));
    }
  });
  root.querySelectorAll("[data-time-zone]").forEach((element) => {
    element.textContent = local ? zoneName(new Date()) : "UTC";
  });
  const button = document.getElementById("zone-switch");
  if (button) {
    button.textContent = local ? "Times: your zone" : "Times: UTC";
    button.setAttribute("aria-pressed", String(local));
  }
}

function switchZone() {
  try {
    localStorage.setItem(ZONE_KEY, zoneIsLocal() ? "utc" : "local");
  } catch {
    return;
  }
  showTimes(document);
}

// --- Copy buttons and forms ---------------------------------------------------------------

// The button says what happened and keeps saying it (no timer to race a reader): "Copied", or,
// when the browser refuses the clipboard, the text is left selected for the user to copy.
function copyText(button) {
  const target = document.querySelector(button.dataset.copy);
  const text = target.textContent.trim();
  const report = (copied) => {
    button.textContent = copied ? "Copied" : "Press Ctrl+C";
    const announcer = document.getElementById("live-announcer");
    if (announcer) {
      announcer.textContent = copied ? "Copied to the clipboard." : "Selected: press Ctrl+C to copy.";
    }
  };
  const copyBySelection = () => {
    const range = document.createRange();
    range.selectNodeContents(target);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    let copied = false;
    try {
      copied = document.execCommand("copy");
    } catch {
      copied = false;
    }
    report(copied);
  };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(() => report(true), copyBySelection);
  } else {
    copyBySelection();
  }
}

// --- Where the focus starts ---------------------------------------------------------------

// Arriving from another page of the site (a link, Review, Confirm, any form), the focus starts at
// the page's heading, so that a screen reader says where it landed and Tab goes on from there.
// A field with an error takes it instead (the first one; its error is its description), and it
// stays where the browser put it when a field asks for it (autofocus) or the address names a
// fragment. On a first visit (a typed or bookmarked address, a new tab) it stays at the start of
// the page, where the first Tab reaches "Skip to content".
function focusStart() {
  const heading = document.querySelector("main h1");
  if (heading) {
    heading.tabIndex = -1;
  }
  const invalid = document.querySelector("main [aria-invalid=true]");
  if (invalid) {
    invalid.focus();
    return;
  }
  if (location.hash || document.querySelector("[autofocus]") || !heading) {
    return;
  }
  let fromHere = false;
  try {
    fromHere = new URL(document.referrer).origin === location.origin;
  } catch {
    fromHere = false;
  }
  if (fromHere) {
    heading.focus({ preventScroll: true });
  }
}

document.addEventListener("DOMContentLoaded", focusStart);

document.addEventListener("DOMContentLoaded", () => {
  showTimes(document);
  setInterval(tick, 1000);
});

// Delegated, so that buttons inside live regions behave the same.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (button) {
    copyText(button);
  }
  if (event.target.closest("#zone-switch")) {
    switchZone();
  }
});

// The idempotency key makes a second submit harmless; this makes it unlikely too.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-submit-once]");
  if (!form) {
    return;
  }
  if (form.dataset.submitted) {
    event.preventDefault();
    return;
  }
  form.dataset.submitted = "true";
  form.querySelectorAll("button[type=submit]").forEach((button) => {
    // Disabled after this event, so that the browser still submits the form.
    setTimeout(() => {
      button.disabled = true;
      button.textContent = "Submitting…";
    }, 0);
  });
});

// Last, once every handler above is in place: the buttons that need them show (tmsdash.css).
document.documentElement.dataset.scripts = "ready";
