// Binds the upload queue (upload-queue.js) to the page: drop anywhere, a file picker, and one
// row per file with its stage, a hashing bar, an uploading bar, speed, time left and buttons.
//
// Markup the page provides (templates/library/_uploader.html):
//
//   <section class="upload-panel" data-upload-panel
//            data-api="/api"                 JSON API base (default "/api")
//            data-concurrency="2"            optional: files uploading at once (default 2)
//            data-parts-in-flight="4"        optional: parts in flight per file (default 4)
//            data-file-url="/files/{id}"     optional: link done/duplicate rows to the movie
//            data-multipart-threshold="N"    optional: larger files are hashed while they
//                                            upload (the server's MULTIPART_THRESHOLD)
//   >
//     <div class="upload-intro">
//       <h2>Add movies</h2>
//       <p class="muted">Drop files or folders anywhere on this page, or
//         <label class="button button-primary file-picker">Choose files
//           <input type="file" multiple data-upload-input class="visually-hidden">
//         </label>
//         <label class="button file-picker">Add folder                  (optional)
//           <input type="file" webkitdirectory data-upload-folder-input class="visually-hidden">
//         </label>
//         <button type="button" class="button button-quiet button-small" data-upload-clear
//                 hidden>Clear finished</button>            (optional)
//       </p>
//     </div>
//     <details class="upload-skipped" data-upload-skipped hidden>    (optional: created)
//       <summary></summary><ul></ul></details>
//     <ol class="upload-rows" data-upload-rows aria-live="polite"></ol>
//   </section>
//
// Only [data-upload-panel] is required: a missing input or row list is created. The drop
// overlay (.drop-overlay) is appended to <body> by this module. The page also needs
// <meta name="csrf-token" content="..."> and loads <script type="module" src=".../js/app.js">.
// Its Content-Security-Policy must allow WebAssembly for the hash worker:
// script-src 'self' 'wasm-unsafe-eval' (and worker-src 'self', connect-src the store).
//
// Each row this module renders (styled by app.css):
//   <li class="upload-row" data-stage="uploading" data-upload-id="u1">
//     .upload-row-head: .upload-name, .upload-size, .upload-stage (stage label)
//     .upload-bars: .upload-bar.upload-bar-hash and .upload-bar.upload-bar-upload, each a
//       label, <progress class="progress progress-hash|progress-upload"> and a percentage
//       (.upload-bar-value)
//     .upload-row-foot: .upload-detail (speed · time left, the error, or which file it
//       duplicates) and .upload-actions with [data-action=cancel|retry|remove] buttons
//
// Events: the queue dispatches `files-changed` on <body> when a file is done, so the
// catalogue can use hx-trigger="files-changed from:body". The queue's per-file events
// (file-added, file-stage, file-progress, file-removed; detail = the file's state, see
// QueuedFile#snapshot) are repeated on the [data-upload-panel] element.

import { appendNew } from "./dom.js";
import { bindDropAnywhere } from "./drop-zone.js";
import { readPicked } from "./folder-walk.js";
import { formatBytes, formatDuration, formatSpeed, percent } from "./format.js";
import { SkippedList } from "./skipped-list.js";
import { sidecarUploader } from "./subtitles.js";
import { UploadQueue } from "./upload-queue.js";
import { FINAL_STAGES, canRetry } from "./upload-stages.js";

const ROWS_PER_FRAME = 40;

const STAGE_LABELS = {
  queued: "Waiting",
  hashing: "Hashing",
  checking: "Checking",
  uploading: "Uploading",
  finishing: "Finishing",
  done: "Done",
  duplicate: "Duplicate",
  failed: "Failed",
  cancelled: "Cancelled",
};

/**
 * Wire the upload panel found at `root` (a [data-upload-panel] element).
 * @param {HTMLElement} root
 * @returns {UploadQueue} the queue, for scripts and tests
 */
export function initUploadPanel(root) {
  const queue = new UploadQueue({
    api: root.dataset.api || "/api",
    concurrency: positiveInt(root.dataset.concurrency, 2),
    partsInFlight: positiveInt(root.dataset.partsInFlight, 4),
    hashWhileUploadingAbove: positiveInt(root.dataset.multipartThreshold, Infinity),
  });
  const list =
    root.querySelector("[data-upload-rows], [data-upload-list]") ??
    appendNew(root, "ol", "upload-rows");
  const input = root.querySelector("[data-upload-input]") ?? createInput(root);
  const clear = root.querySelector("[data-upload-clear]");
  const fileUrl = root.dataset.fileUrl || "";
  const rows = new Map();
  // "Clear finished" shows while a row is settled: a file's, or a subtitle's (those rows
  // are subtitles.js's own, and tell the list when their stage changes).
  const SETTLED_SUBTITLES = [".subtitle-row[data-stage=done]",
    ".subtitle-row[data-stage=skipped]", ".subtitle-row[data-stage=failed]"].join(", ");
  const showClear = () => {
    if (!clear) return;
    const settled = [...rows.values()].some((r) => FINAL_STAGES.has(r.stage));
    clear.hidden = !settled && list.querySelector(SETTLED_SUBTITLES) === null;
  };
  list.addEventListener("subtitle-stage", showClear);

  // Rows are drawn once per frame with each file's latest state, at most ROWS_PER_FRAME a
  // frame: a folder of hundreds of files, added or answered at once, is drawn over a few
  // frames instead of holding the page, and a file's many progress events cost one update.
  const pending = new Map();
  let drawing = false;
  const draw = () => {
    drawing = false;
    let drawn = 0;
    for (const [id, state] of pending) {
      if (drawn++ === ROWS_PER_FRAME) break; // the rest next frame, in order
      let row = rows.get(id);
      if (!row) {
        row = createRow(state);
        rows.set(id, row);
        list.append(row.element);
      }
      updateRow(row, state, fileUrl);
      pending.delete(id);
    }
    if (pending.size) schedule();
    showClear();
  };
  const schedule = () => {
    if (!drawing) requestAnimationFrame(draw);
    drawing = true;
  };
  const render = (event) => {
    pending.set(event.detail.id, event.detail);
    schedule();
  };
  queue.addEventListener("file-added", render);
  queue.addEventListener("file-stage", render);
  queue.addEventListener("file-progress", render);
  // The queue's events are repeated on the panel element, for tests and other scripts.
  for (const type of ["file-added", "file-stage", "file-progress", "file-removed"]) {
    queue.addEventListener(type, (event) => {
      root.dispatchEvent(new CustomEvent(type, { detail: event.detail }));
    });
  }
  queue.addEventListener("file-removed", (event) => {
    pending.delete(event.detail.id);
    rows.get(event.detail.id)?.element.remove();
    rows.delete(event.detail.id);
    showClear();
  });

  list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const id = button?.closest("[data-upload-id]")?.dataset.uploadId;
    if (!id) return;
    if (button.dataset.action === "cancel") queue.cancel(id);
    else if (button.dataset.action === "retry") queue.retry(id);
    else if (button.dataset.action === "remove") queue.remove(id);
  });
  clear?.addEventListener("click", () => {
    for (const [id, row] of rows) if (FINAL_STAGES.has(row.stage)) queue.remove(id);
    for (const row of list.querySelectorAll(SETTLED_SUBTITLES)) row.remove();
    skippedList.clear();
    showClear();
  });

  // Subtitle files wait for the movie of the same name in the drop (subtitles.js).
  const add = sidecarUploader(queue, list, root.dataset.api || "/api");
  const skippedList = new SkippedList(root.querySelector("[data-upload-skipped]"), list);
  const addWalked = ({ files, folderOf, skipped }) => {
    if (files.length) add(files, folderOf);
    skippedList.add(skipped);
  };
  input.addEventListener("change", () => {
    if (input.files.length) add(input.files);
    input.value = ""; // choosing the same file again must fire `change` again
  });
  const folderInput = root.querySelector("[data-upload-folder-input]");
  folderInput?.addEventListener("change", () => {
    addWalked(readPicked(folderInput.files));
    folderInput.value = "";
  });
  bindDropAnywhere(addWalked);
  window.addEventListener("beforeunload", (event) => {
    // Leaving stops the uploads; multipart ones can be resumed by adding the file again.
    if (queue.busy) event.preventDefault();
  });
  return queue;
}

// ---- rows ----------------------------------------------------------------------------------

function createRow(state) {
  const element = document.createElement("li");
  element.className = "upload-row";
  element.dataset.uploadId = state.id;

  const head = appendNew(element, "div", "upload-row-head");
  const name = appendNew(head, "span", "upload-name", state.name);
  name.title = state.name;
  appendNew(head, "span", "upload-size", formatBytes(state.size));
  const stageLabel = appendNew(head, "span", "upload-stage");

  const bars = appendNew(element, "div", "upload-bars");
  const hash = createBar(bars, "Hashing", "hash", state.name);
  const upload = createBar(bars, "Uploading", "upload", state.name);

  const foot = appendNew(element, "div", "upload-row-foot");
  const detail = appendNew(foot, "span", "upload-detail");
  const actions = appendNew(foot, "span", "upload-actions");
  const cancel = createButton(actions, "cancel", "Cancel", `Cancel uploading ${state.name}`);
  const retry = createButton(actions, "retry", "Retry", `Retry uploading ${state.name}`);
  const remove = createButton(actions, "remove", "Dismiss", `Remove ${state.name} from this list`);

  return { element, stage: state.stage, stageLabel, hash, upload, detail, cancel, retry, remove };
}

function createBar(parent, label, kind, fileName) {
  const bar = appendNew(parent, "div", `upload-bar upload-bar-${kind}`);
  appendNew(bar, "span", "upload-bar-label", label);
  const progress = appendNew(bar, "progress", `progress progress-${kind}`);
  progress.max = 100;
  progress.value = 0;
  progress.setAttribute("aria-label", `${label} ${fileName}`);
  const value = appendNew(bar, "span", "upload-bar-value", "");
  return { progress, value };
}

function createButton(parent, action, text, label) {
  const button = appendNew(parent, "button", `button button-small upload-${action}`, text);
  button.type = "button";
  button.dataset.action = action;
  button.setAttribute("aria-label", label);
  button.hidden = true;
  return button;
}

function updateRow(row, state, fileUrl) {
  row.stage = state.stage;
  row.element.dataset.stage = state.stage;
  row.stageLabel.textContent = STAGE_LABELS[state.stage] ?? state.stage;

  // A big file is hashed while it uploads: both bars move then.
  const hashing = state.stage === "hashing" ||
    (state.stage === "uploading" && state.hashedBytes < state.size);
  setBar(row.hash, state.hashedBytes, state.size, hashing);
  setBar(row.upload, state.uploadedBytes, state.size, state.stage === "uploading");

  row.cancel.hidden = !state.cancellable;
  row.retry.hidden = !(canRetry(state.stage) && state.retryable);
  row.remove.hidden = !FINAL_STAGES.has(state.stage);
  renderDetail(row.detail, state, fileUrl);
}

function setBar(bar, done, total, active) {
  const value = percent(done, total);
  bar.progress.value = value;
  bar.value.textContent = done > 0 || !active ? `${value}%` : "";
  bar.progress.classList.toggle("is-active", active);
}

/** The line under the bars: speed and time left, or what happened. */
function renderDetail(element, state, fileUrl) {
  element.classList.toggle("upload-error", state.stage === "failed");
  if (state.stage === "failed") {
    element.replaceChildren(state.error || "The upload failed.");
  } else if (state.stage === "duplicate") {
    const match = state.match;
    element.replaceChildren(
      "Already in your library as ",
      match ? fileLink(match, fileUrl) : "another file",
      ". Nothing was uploaded.",
    );
  } else if (state.stage === "done") {
    const as = state.file ? [" as ", fileLink(state.file, fileUrl)] : [];
    element.replaceChildren("Added to your library", ...as, ".");
  } else if (state.stage === "cancelled") {
    element.replaceChildren("Cancelled.");
  } else if (state.stage === "hashing" || state.stage === "uploading") {
    const left = state.eta != null ? `${formatDuration(state.eta)} left` : "";
    element.replaceChildren([formatSpeed(state.speed), left].filter(Boolean).join(" · "));
  } else {
    element.replaceChildren("");
  }
}

function fileLink(file, fileUrl) {
  const name = document.createElement(fileUrl ? "a" : "strong");
  name.textContent = file.name;
  if (fileUrl) name.href = fileUrl.replace("{id}", encodeURIComponent(file.id));
  return name;
}

// ---- small DOM helpers ---------------------------------------------------------------------

function createInput(root) {
  const input = document.createElement("input");
  input.type = "file";
  input.multiple = true;
  input.className = "visually-hidden";
  input.dataset.uploadInput = "";
  root.prepend(input);
  return input;
}

function positiveInt(value, fallback) {
  const number = Number.parseInt(value ?? "", 10);
  return Number.isFinite(number) && number > 0 ? number : fallback;
}
