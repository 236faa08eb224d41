// tmsdash: small progressive enhancements. Every page works without them.
"use strict";

const REFRESH_MS = 1000;
const RETRY_MS = 3000;

// A live region (an element with data-refresh-url) is replaced by the server's fresh HTML
// every second; the server stops adding the attribute once nothing in it can change.
function refresh(element) {
  fetch(element.dataset.refreshUrl, { credentials: "same-origin" })
    .then((response) => (response.ok ? response.text() : Promise.reject(response.status)))
    .then((html) => {
      const holder = document.createElement("template");
      holder.innerHTML = html.trim();
      const fresh = holder.content.firstElementChild;
      element.replaceWith(fresh);
      if (fresh.dataset.refreshUrl) {
        setTimeout(() => refresh(fresh), REFRESH_MS);
      }
    })
    .catch(() => setTimeout(() => refresh(element), RETRY_MS));
}

function copyText(button) {
  const target = document.querySelector(button.dataset.copy);
  const text = target.textContent.trim();
  const done = () => {
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = "Copy"; }, 1500);
  };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(text).then(done);
  } else {
    const range = document.createRange();
    range.selectNodeContents(target);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    document.execCommand("copy");
    done();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-refresh-url]").forEach((element) => {
    setTimeout(() => refresh(element), REFRESH_MS);
  });
});

// Delegated, so that forms and buttons inside refreshed regions behave the same.
document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-copy]");
  if (button) {
    copyText(button);
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
