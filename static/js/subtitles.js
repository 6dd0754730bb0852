// Subtitle files (.srt, .vtt, .ass, .ssa): paired with the movie of the same base name in
// a drop ("Film.mp4" with "Film.srt", "Film.en.srt", "Film.eng.forced.srt"), and the
// movie page's "Add subtitles" picker. A subtitle goes up like a movie, straight to the
// store: POST /api/files/<id>/subtitles answers with an upload sent whole (form POST or
// PUT), then /api/uploads/<id>/complete converts it to WebVTT and attaches it.
//
// Markup of the movie page (templates/library/_subtitles.html):
//   <section data-subtitle-panel data-api="/api" data-file-id="7">
//     <input type="file" data-subtitle-input multiple accept=".srt,.vtt,.ass,.ssa">
//     <p data-subtitle-status></p>
//   </section>

import { ApiError, createApi } from "./api.js";
import { appendNew } from "./dom.js";
import { hashAside } from "./hash-pool.js";
import { sendXhr, storageErrorMessage } from "./transfer.js";

const SUBTITLE = /\.(srt|vtt|ass|ssa)$/i;

/** Whether the file name is a subtitle file's. */
export function isSubtitle(name) {
  return SUBTITLE.test(name);
}

/** The name without its extension. */
function stem(name) {
  const dot = name.lastIndexOf(".");
  return dot > 0 ? name.slice(0, dot) : name;
}

/**
 * Split a drop into movies and subtitles, each subtitle paired with the movie whose base
 * name its own begins with (the longest such name, so "Film 2" wins over "Film"), in the
 * same folder when they come from folders.
 * @param {File[]} files
 * @param {Map<File, string>} [folderOf] each file's folder (folder-walk.js); none: loose
 * @returns {{movies: File[], pairs: Map<File, File[]>, skipped: File[]}}
 */
export function pairSidecars(files, folderOf = new Map()) {
  const movies = files.filter((file) => !SUBTITLE.test(file.name));
  const pairs = new Map();
  const skipped = [];
  for (const subtitle of files.filter((file) => SUBTITLE.test(file.name))) {
    const own = stem(subtitle.name).toLowerCase();
    let best = null;
    for (const movie of movies) {
      if (folderOf.get(movie) !== folderOf.get(subtitle)) continue;
      const base = stem(movie.name).toLowerCase();
      const fits = own === base || own.startsWith(`${base}.`);
      if (fits && (!best || base.length > stem(best.name).length)) best = movie;
    }
    if (best) pairs.set(best, [...(pairs.get(best) ?? []), subtitle]);
    else skipped.push(subtitle);
  }
  return { movies, pairs, skipped };
}

/**
 * Upload one subtitle file for the movie `fileId` and attach it.
 * @param {{post: Function}} api the JSON API client (api.js)
 * @param {number|string} fileId
 * @param {File} file
 * @returns {Promise<{subtitle: object, before: boolean}>} the attached subtitle, as the
 *   API shows it, and whether the movie had it from this very file already
 */
export async function attachSubtitle(api, fileId, file) {
  const sha256 = await hashAside(file);
  const { data } = await api.post(`/files/${encodeURIComponent(fileId)}/subtitles`, {
    name: file.name,
    size: file.size,
    sha256,
    content_type: file.type || "application/octet-stream",
  });
  if (data.duplicate) return { subtitle: data.subtitle, before: true };
  const { upload } = data;
  let request;
  if (upload.method === "put") {
    request = { method: "PUT", url: upload.put.url, headers: upload.put.headers, body: file };
  } else {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.post.fields)) form.append(name, value);
    form.append("file", file);
    request = { method: "POST", url: upload.post.url, body: form };
  }
  const xhr = await sendXhr(request);
  if (xhr.status < 200 || xhr.status >= 300) throw new Error(storageErrorMessage(xhr));
  const done = await api.post(`/uploads/${encodeURIComponent(upload.id)}/complete`, {});
  return { subtitle: done.data.subtitle, before: false };
}

/** A row in the upload list for a subtitle file: its name and what became of it. */
function subtitleRow(list, file) {
  const element = appendNew(list, "li", "upload-row subtitle-row");
  element.dataset.subtitleName = file.name;
  const head = appendNew(element, "div", "upload-row-head");
  appendNew(head, "span", "upload-name", file.name).title = file.name;
  const stage = appendNew(head, "span", "upload-stage");
  const detail = appendNew(appendNew(element, "div", "upload-row-foot"), "span", "upload-detail");
  return (state, label, text) => {
    element.dataset.stage = state;
    stage.textContent = label;
    detail.textContent = text;
    detail.classList.toggle("upload-error", state === "failed");
    // The panel shows "Clear finished" once a row is settled (upload-panel.js).
    element.dispatchEvent(new CustomEvent("subtitle-stage", { bubbles: true }));
  };
}

/**
 * Add a drop to the upload queue, holding back its subtitles until their movie is done
 * (uploaded, or already in the library), then attaching them to it.
 * @param {import("./upload-queue.js").UploadQueue} queue
 * @param {HTMLElement} list where subtitle rows go (the upload rows)
 * @param {string} apiBase
 * @returns {(files: Iterable<File>, folderOf?: Map<File, string>) => void}
 */
export function sidecarUploader(queue, list, apiBase) {
  const api = createApi({ base: apiBase });
  const waiting = new Map(); // queue id → [{file, show}]
  queue.addEventListener("file-stage", (event) => {
    const { id, stage, name } = event.detail;
    const subtitles = waiting.get(id);
    if (!subtitles) return;
    const movie = stage === "done" ? event.detail.file : event.detail.match;
    if (stage === "done" || stage === "duplicate") {
      waiting.delete(id);
      for (const { file, show } of subtitles) attachOne(api, movie, file, show);
    } else if (stage === "failed" || stage === "cancelled") {
      waiting.delete(id);
      for (const { show } of subtitles) {
        show("skipped", "Skipped", `${name} was not uploaded, so its subtitles were not either.`);
      }
    }
  });
  return (files, folderOf) => {
    const { movies, pairs, skipped } = pairSidecars([...files], folderOf);
    const ids = movies.length ? queue.add(movies) : [];
    movies.forEach((movie, index) => {
      const subtitles = (pairs.get(movie) ?? []).map((file) => {
        const show = subtitleRow(list, file);
        show("waiting", "Waiting", `Subtitles for ${movie.name}: sent once the movie is in.`);
        return { file, show };
      });
      if (subtitles.length) waiting.set(ids[index], subtitles);
    });
    for (const file of skipped) {
      const show = subtitleRow(list, file);
      show("skipped", "Skipped", folderOf?.has(file)
        ? "No movie of the same name in its folder: add it on the movie's page."
        : "No movie of the same name in this drop: add it on the movie's page.");
    }
  };
}

async function attachOne(api, movie, file, show) {
  show("uploading", "Uploading", `Subtitles for ${movie.name}…`);
  try {
    const { subtitle, before } = await attachSubtitle(api, movie.id, file);
    const attached = before ? "Already attached" : "Attached";
    show("done", "Done", `${attached} to ${movie.name} (${subtitle.label}).`);
  } catch (error) {
    show("failed", "Failed", messageOf(error));
  }
}

function messageOf(error) {
  return error instanceof ApiError || error instanceof Error ? error.message : String(error);
}

/**
 * The movie page's "Add subtitles" picker: attach the chosen files, then show the page again
 * (its player gets the new tracks).
 * @param {HTMLElement} root a [data-subtitle-panel] element
 */
export function initSubtitlePicker(root) {
  const api = createApi({ base: root.dataset.api || "/api" });
  const input = root.querySelector("[data-subtitle-input]");
  const status = root.querySelector("[data-subtitle-status]");
  input?.addEventListener("change", async () => {
    const files = [...input.files];
    input.value = "";
    const problems = [];
    for (const file of files) {
      if (status) status.textContent = `Adding ${file.name}…`;
      try {
        await attachSubtitle(api, root.dataset.fileId, file);
      } catch (error) {
        problems.push(`${file.name}: ${messageOf(error)}`);
      }
    }
    if (problems.length) {
      if (status) status.textContent = problems.join(" ");
      status?.classList.add("upload-error");
    } else {
      window.location.reload();
    }
  });
}
