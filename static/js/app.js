// Entry point of every page (<script type="module" src="/static/js/app.js">). No inline
// scripts anywhere: pages pass data through data-* attributes and <meta> tags.

import { csrfTokenFromMeta } from "./api.js";
import { initSubtitlePicker } from "./subtitles.js";
import { initUploadPanel } from "./upload-panel.js";

/** htmx requests (rename, delete, ...) carry the CSRF token like the JSON API calls. */
function sendCsrfWithHtmx() {
  document.body.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRFToken"] = csrfTokenFromMeta();
  });
}

/** Forms with data-confirm="question" ask before they submit (no inline onsubmit under CSP). */
function confirmForms() {
  document.addEventListener("submit", (event) => {
    const question = event.target.dataset?.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
}

sendCsrfWithHtmx();
confirmForms();

const panel = document.querySelector("[data-upload-panel]");
if (panel) initUploadPanel(panel);

const subtitlePanel = document.querySelector("[data-subtitle-panel]");
if (subtitlePanel) initSubtitlePicker(subtitlePanel);
