// Folders dropped on the page or picked with "Add folder", walked recursively: each file
// found is taken (a movie, or a subtitle to pair with one) or skipped with the reason in
// words ("Trip/notes.txt: not a video"). No DOM here; upload-panel.js shows the result.
//
// A dropped folder is read through the File and Directory Entries API: a directory's
// reader answers readEntries() in batches (100 in Chromium) until it answers with an empty
// one. A picked folder (<input type=file webkitdirectory>) arrives as one flat list whose
// files carry their webkitRelativePath. Loose files dropped or chosen beside folders are
// taken as they are, as before folders were walked: the server decides what it accepts.

import { isSubtitle } from "./subtitles.js";

// What a folder's movies are called; anything else that says it is video/* is taken too.
const VIDEO_EXTENSIONS = new Set([
  "3gp", "asf", "avi", "divx", "flv", "m2ts", "m4v", "mkv", "mov", "mp4", "mpeg", "mpg",
  "mts", "ogv", "ts", "vob", "webm", "wmv",
]);
// File entries opened at a time: a folder of thousands is not opened all at once.
const OPEN_AT_ONCE = 64;

/**
 * @typedef {object} Walked
 * @property {File[]} files what to queue: movies and subtitles, in the order found
 * @property {Map<File, string>} folderOf the folder of each file found in one ("Trip/Day 1");
 *   subtitles pair only with movies of the same folder; loose files have none
 * @property {{path: string, reason: string}[]} skipped what was left out, and why
 */

/**
 * Why a file found in a folder is left out, or null when it is taken.
 * @param {string} name
 * @param {string} [type] its MIME type, as the browser guessed it
 * @returns {string|null}
 */
export function skipReason(name, type = "") {
  if (name.startsWith(".")) return "hidden file";
  if (isSubtitle(name)) return null;
  const dot = name.lastIndexOf(".");
  const extension = dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
  return VIDEO_EXTENSIONS.has(extension) || type.startsWith("video/") ? null : "not a video";
}

/**
 * The files of a drop, its folders walked. Entries must be taken synchronously, in the
 * drop event itself: the DataTransfer is emptied once the event is over.
 * @param {DataTransfer} dataTransfer
 * @returns {Promise<Walked>}
 */
export function readDrop(dataTransfer) {
  const items = [...(dataTransfer.items ?? [])].filter((item) => item.kind === "file");
  const entries = items.map((item) => item.webkitGetAsEntry?.() ?? null);
  if (entries.length === 0 || entries.some((entry) => entry === null)) {
    return Promise.resolve(loose([...(dataTransfer.files ?? [])]));
  }
  // Taken now as well: WebKit gives a file that exists only in memory (not on disk) an
  // entry whose file() fails with NotFoundError, while the item's own File still reads.
  const ownFiles = new Map(entries.map((entry, i) => [entry, items[i].getAsFile?.() ?? null]));
  return walkEntries(entries, ownFiles);
}

/**
 * The files of a folder picked with <input type=file webkitdirectory>.
 * @param {Iterable<File>} fileList
 * @returns {Walked}
 */
export function readPicked(fileList) {
  const walked = loose([]);
  const hiddenFolders = new Set();
  for (const file of fileList) {
    const path = file.webkitRelativePath || file.name;
    const parts = path.split("/");
    const hidden = parts.slice(0, -1).findIndex((part) => part.startsWith("."));
    if (hidden >= 0) {
      // A hidden folder (.git, .thumbnails) is one line, not one per file inside it.
      const line = `${parts.slice(0, hidden + 1).join("/")}/`;
      if (!hiddenFolders.has(line)) walked.skipped.push({ path: line, reason: "hidden folder" });
      hiddenFolders.add(line);
      continue;
    }
    take(walked, file, parts.slice(0, -1).join("/"), path);
  }
  return walked;
}

/** Walk dropped entries: files at the top are loose, folders are walked breadth first. */
async function walkEntries(entries, ownFiles) {
  const walked = loose([]);
  const folders = [];
  const fileEntries = [];
  for (const entry of entries) {
    if (entry.isDirectory) folders.push(entry);
    else fileEntries.push(entry);
  }
  const unreadable = (path) => walked.skipped.push({ path, reason: "could not be read" });
  (await openAll(fileEntries)).forEach((file, i) => {
    const taken = file ?? ownFiles.get(fileEntries[i]);
    if (taken) walked.files.push(taken);
    else unreadable(fileEntries[i].name);
  });
  while (folders.length) {
    const folder = folders.shift();
    const path = folder.fullPath.replace(/^\//, "");
    const found = [];
    let children;
    try {
      children = await readAll(folder);
    } catch {
      unreadable(`${path}/`); // no permission, or gone since the drop
      continue;
    }
    for (const child of children) {
      const childPath = child.fullPath.replace(/^\//, "");
      if (child.isDirectory) {
        if (child.name.startsWith(".")) {
          walked.skipped.push({ path: `${childPath}/`, reason: "hidden folder" });
        } else {
          folders.push(child);
        }
      } else {
        // Hidden files are left out unopened; the others are opened, and those whose name
        // does not say "video" are then judged by their MIME type too.
        if (child.name.startsWith(".")) {
          walked.skipped.push({ path: childPath, reason: "hidden file" });
        } else {
          found.push([child, childPath]);
        }
      }
    }
    const files = await openAll(found.map(([entry]) => entry));
    files.forEach((file, i) => {
      if (file) take(walked, file, path, found[i][1]);
      else unreadable(found[i][1]);
    });
  }
  return walked;
}

/** Every entry of a folder: readEntries() answers in batches until an empty one. */
async function readAll(folder) {
  const reader = folder.createReader();
  const children = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (batch.length === 0) return children;
    children.push(...batch);
  }
}

/** The File of each entry (null: it could not be opened), OPEN_AT_ONCE at a time, in order. */
async function openAll(entries) {
  const files = [];
  for (let i = 0; i < entries.length; i += OPEN_AT_ONCE) {
    const batch = entries.slice(i, i + OPEN_AT_ONCE);
    files.push(...(await Promise.all(batch.map(
      (entry) => new Promise((resolve) => entry.file(resolve, () => resolve(null))),
    ))));
  }
  return files;
}

function loose(files) {
  return { files, folderOf: new Map(), skipped: [] };
}

/** Take the file found in `folder`, or note why it is skipped. */
function take(walked, file, folder, path) {
  const reason = skipReason(file.name, file.type);
  if (reason) {
    walked.skipped.push({ path, reason });
    return;
  }
  walked.files.push(file);
  walked.folderOf.set(file, folder);
}
