// Entry point of every page (<script type="module" src="/static/js/app.js">). No inline
// scripts anywhere: pages pass data through data-* attributes and <meta> tags.

import { csrfTokenFromMeta } from "./api.js";
import { initCopyButtons } from "./copy-button.js";
import { deferRefreshWhileRenaming } from "./list-refresh.js";
import { markUnplayable } from "./playable-badges.js";
import { initPlayer } from "./player.js";
import { initPosterPicker } from "./poster-picker.js";
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

/** Badges on movies this browser will not play, also on cards and rows htmx swaps in. */
function markMoviesThatWillNotPlay() {
  markUnplayable(document.body);
  document.body.addEventListener("htmx:load", (event) => markUnplayable(event.detail.elt));
}

sendCsrfWithHtmx();
confirmForms();
initCopyButtons();
markMoviesThatWillNotPlay();

const listRefresh = document.querySelector("[data-list-refresh]");
if (listRefresh) deferRefreshWhileRenaming(listRefresh);
const panel = document.querySelector("[data-upload-panel]");
if (panel) initUploadPanel(panel);
const player = document.querySelector("[data-player]");
if (player) initPlayer(player);
const posterPick = document.querySelector("button[data-poster-pick]");
if (posterPick) initPosterPicker(posterPick);
const subtitlePanel = document.querySelector("[data-subtitle-panel]");
if (subtitlePanel) initSubtitlePicker(subtitlePanel);
