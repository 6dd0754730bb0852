// "Use this frame as poster": posts the player's current time to the API, which cuts the
// poster from the stored movie at that time, then shows the new poster.
//
// Markup contract (templates/library/movie.html):
//   button[data-poster-pick]   data-api: the API base; data-file-id; data-poster-url: the
//                              page route that redirects to the poster
//   [data-poster-status]       says what happened (a live region)
//   img[data-poster-thumb]     the current poster, beside the button (made here if the
//                              movie had none)
// The player is the page's video.player.

import { createApi } from "./api.js";

/**
 * Wire the button.
 * @param {HTMLButtonElement} button
 */
export function initPosterPicker(button) {
  const api = createApi({ base: button.dataset.api });
  const video = document.querySelector("video.player");
  const tools = button.closest("[data-player-tools]") ?? button.parentElement;
  const status = tools.querySelector("[data-poster-status]");
  let thumb = tools.querySelector("img[data-poster-thumb]");

  button.addEventListener("click", async () => {
    const at = Math.round(video.currentTime * 1000) / 1000;
    button.disabled = true;
    status.textContent = "Saving the poster…";
    try {
      await api.post(`/files/${button.dataset.fileId}/poster`, { at });
      // A new address, so neither the image cache nor the player reuses the old picture.
      const url = `${button.dataset.posterUrl}?v=${Date.now()}`;
      video.poster = url;
      thumb ??= newThumb(button);
      thumb.src = url;
      status.textContent = `Poster saved: the frame at ${clock(at)}.`;
    } catch (error) {
      status.textContent = error.message;
    } finally {
      button.disabled = false;
    }
  });
}

/** The small picture of the poster beside the button, for a movie that had none. */
function newThumb(button) {
  const thumb = document.createElement("img");
  thumb.className = "poster-thumb";
  thumb.alt = "Current poster";
  thumb.width = 96;
  thumb.height = 54;
  thumb.dataset.posterThumb = "";
  button.after(thumb);
  return thumb;
}

/**
 * A time in the film as a player shows it.
 * @param {number} seconds
 * @returns {string} e.g. "0:07", "1:02:03"
 */
export function clock(seconds) {
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
