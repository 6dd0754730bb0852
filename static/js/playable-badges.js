// Marks the library's cards and rows whose movie this browser will not play: each carries
// data-playback-type (set by the server from the probed streams) and a hidden
// [data-noplay-badge] that is shown when `canPlayType` refuses the type.

import { canPlay } from "./playback.js";

const probe = document.createElement("video");

/**
 * Show or hide the badge of every movie in `root` (root included).
 * @param {Element} root
 */
export function markUnplayable(root) {
  const items = [...root.querySelectorAll("[data-playback-type]")];
  if (root.matches?.("[data-playback-type]")) items.push(root);
  for (const item of items) {
    const badge = item.querySelector("[data-noplay-badge]");
    if (badge) badge.hidden = canPlay(item.dataset.playbackType, probe);
  }
}
