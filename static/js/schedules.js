// The new schedule form: the time zone starts as the browser's, and only the fields of the
// choices made show. Without this script the zone is the site's and every field shows.
"use strict";

function showChosen(form) {
  const kind = form.querySelector("input[name=kind]:checked");
  const repeat = form.querySelector("select[name=repeat]");
  form.querySelectorAll("[data-kind]").forEach((element) => {
    element.classList.toggle("js-hidden", kind !== null && element.dataset.kind !== kind.value);
  });
  form.querySelectorAll("[data-repeat]").forEach((element) => {
    const shown = element.dataset.repeat.split(" ").includes(repeat.value);
    element.classList.toggle("js-hidden", !shown);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("schedule-form");
  if (!form) {
    return;
  }
  // A new form only: a form shown again with its errors keeps the zone that was chosen.
  const zone = form.querySelector("select[data-browser-zone]");
  const browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  if (zone && !form.querySelector(".field-errors, .form-errors")
      && [...zone.options].some((option) => option.value === browserZone)) {
    zone.value = browserZone;
  }
  showChosen(form);
  form.addEventListener("change", () => showChosen(form));
});
