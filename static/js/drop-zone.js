// Dropping files anywhere on the page: an overlay while files hover the window, and the
// dropped folders walked for their files. The whole window is the target: a file dropped
// just outside a smaller one would be opened by the browser in place of the page.

import { appendNew } from "./dom.js";

// dragover repeats every ~50 ms while files hover the window; silence means they left.
const DRAG_HIDE_MS = 250;

/**
 * Take files dropped anywhere on the page, folders walked, with an overlay while dragging.
 * @param {(files: File[]) => void} onFiles called once per drop (the list may be empty)
 */
export function bindDropAnywhere(onFiles) {
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
    filesFromDrop(event.dataTransfer).then(onFiles, (error) => console.error(error));
  });
}

/**
 * The dropped files, with dropped folders walked recursively (hidden files skipped).
 * Entries must be taken synchronously: the DataTransfer empties after the event.
 */
function filesFromDrop(dataTransfer) {
  const items = [...(dataTransfer.items ?? [])].filter((item) => item.kind === "file");
  const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
  // Taken now as well: WebKit gives a file that exists only in memory (not on disk) an
  // entry whose file() fails with NotFoundError; the item's own File still reads.
  const files = items.map((item) => item.getAsFile());
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return Promise.resolve([...dataTransfer.files]);
  }
  const walked = entries.map((entry, i) =>
    walkEntry(entry, true).catch((error) => {
      if (entry.isFile && files[i]) return [files[i]];
      throw error;
    }),
  );
  return Promise.all(walked).then((lists) => lists.flat());
}

async function walkEntry(entry, topLevel = false) {
  if (!topLevel && entry.name.startsWith(".")) return [];
  if (entry.isFile) {
    return [await new Promise((resolve, reject) => entry.file(resolve, reject))];
  }
  const reader = entry.createReader();
  const children = [];
  // readEntries answers in chunks (100 in Chromium) until it returns an empty list.
  for (;;) {
    const chunk = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (chunk.length === 0) break;
    children.push(...chunk);
  }
  const lists = await Promise.all(children.map((child) => walkEntry(child)));
  return lists.flat();
}
