// Dropping files anywhere on the page: an overlay while files hover the window; dropped
// folders are walked by folder-walk.js. The whole window is the target: a file dropped
// just outside a smaller one would be opened by the browser in place of the page.

import { appendNew } from "./dom.js";
import { readDrop } from "./folder-walk.js";

// dragover repeats every ~50 ms while files hover the window; silence means they left.
const DRAG_HIDE_MS = 250;

/**
 * Take files dropped anywhere on the page, folders walked, with an overlay while dragging.
 * @param {(walked: import("./folder-walk.js").Walked) => void} onDrop called once per drop
 *   with what it held (the lists may be empty)
 */
export function bindDropAnywhere(onDrop) {
  const overlay = document.createElement("div");
  overlay.className = "drop-overlay";
  overlay.hidden = true;
  const box = appendNew(overlay, "div", "drop-overlay-box");
  appendNew(box, "p", "drop-overlay-title", "Drop to upload");
  appendNew(box, "p", "drop-overlay-hint", "Files and whole folders are welcome.");
  document.body.append(overlay);

  let hideTimer = null;
  const show = () => {
    overlay.hidden = false;
    clearTimeout(hideTimer);
    hideTimer = setTimeout(hide, DRAG_HIDE_MS);
  };
  const hide = () => {
    clearTimeout(hideTimer);
    overlay.hidden = true;
  };
  const carriesFiles = (event) => event.dataTransfer?.types?.includes("Files");

  window.addEventListener("dragenter", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    show();
  });
  window.addEventListener("dragover", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault(); // without it the browser would open the file instead
    event.dataTransfer.dropEffect = "copy";
    show();
  });
  window.addEventListener("drop", (event) => {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    hide();
    readDrop(event.dataTransfer).then(onDrop, (error) => console.error(error));
  });
}
