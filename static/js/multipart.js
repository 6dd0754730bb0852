// The parts of one multipart upload: which ones the storage still lacks (a resumed upload
// sends only those), several PUTs at a time as slices of the File, and the whole file's
// SHA-256 computed alongside when the upload was created without it.

import { Cancelled, linkedController } from "./cancel.js";
import { PartUrls } from "./part-urls.js";
import { ByteProgress } from "./progress.js";
import { sendWithRetries } from "./retry.js";
import { sendXhr } from "./transfer.js";

/**
 * @typedef {object} PartPlan
 * @property {number} partSize bytes of every part but the last
 * @property {(n: number) => number} partBytes bytes of part n
 * @property {number[]} todo the part numbers to send
 * @property {ByteProgress} progress starting at the bytes already stored
 */

/**
 * Which parts to send: all for a new upload; for a resumed one, those the storage does not
 * hold yet (asked once).
 * @param {object} options
 * @param {{get: Function}} options.api
 * @param {{id: string, part_size: number, part_count: number}} options.upload
 * @param {number} options.size the file's size
 * @param {boolean} options.resumed whether the server handed back a pending upload
 * @param {AbortSignal} options.signal
 * @returns {Promise<PartPlan>}
 */
export async function planParts({ api, upload, size, resumed, signal }) {
  const { part_size: partSize, part_count: partCount } = upload;
  const partBytes = (n) => Math.min(partSize, size - (n - 1) * partSize);
  const held = new Set();
  if (resumed) {
    const { data } = await api.get(`/uploads/${upload.id}`, { signal });
    for (const part of data.uploaded_parts ?? []) {
      // A part of the wrong size (cut off) is sent again.
      if (part.size === partBytes(part.part_number)) held.add(part.part_number);
    }
  }
  const todo = [];
  let confirmed = 0;
  for (let n = 1; n <= partCount; n += 1) {
    if (held.has(n)) confirmed += partBytes(n);
    else todo.push(n);
  }
  return { partSize, partBytes, todo, progress: new ByteProgress(size, confirmed) };
}

/**
 * Send the planned parts, `partsInFlight` at a time; the first part that fails for good
 * stops the others.
 *
 * Parts go as Blob slices of the File, which the browser streams from the disk (or the
 * page cache) in its own process: the page never holds a part in memory.
 * @param {object} options
 * @param {{post: Function}} options.api
 * @param {File} options.file
 * @param {{id: string}} options.upload
 * @param {PartPlan} options.plan
 * @param {number} options.partsInFlight
 * @param {AbortSignal} options.signal
 * @param {(uploadedBytes: number) => void} options.onProgress
 * @returns {Promise<void>}
 */
export async function sendParts({ api, file, upload, plan, partsInFlight, signal, onProgress }) {
  const { partSize, partBytes, todo, progress } = plan;
  const urls = new PartUrls(api, upload.id, todo);
  const { controller: parts, unlink } = linkedController(signal);
  const queue = [...todo];
  const sender = async () => {
    while (queue.length > 0 && !parts.signal.aborted) {
      const n = queue.shift();
      const start = (n - 1) * partSize;
      const body = file.slice(start, start + partBytes(n));
      await sendPart({ n, body, urls, progress, signal: parts.signal, onProgress });
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(partsInFlight, todo.length) }, sender));
  } catch (error) {
    parts.abort();
    throw error;
  } finally {
    unlink();
  }
}

/** PUT one part, with retries and a fresh URL when its URL expired. */
async function sendPart({ n, body, urls, progress, signal, onProgress }) {
  let url = await urls.get(n, signal);
  await sendWithRetries(signal, {
    send: () =>
      sendXhr({
        method: "PUT",
        url,
        body,
        signal,
        onProgress: (loaded) => {
          progress.report(n, loaded);
          onProgress(progress.value());
        },
      }),
    reset: () => progress.report(n, 0),
    renew: async () => {
      url = await urls.refresh(n, signal);
    },
  });
  progress.confirm(n, body.size);
  onProgress(progress.value());
}

/**
 * sendParts() and, at the same time, the whole file's SHA-256 in the hash pool. Either
 * failing stops the other.
 *
 * The hash reads the file a second time. Handing the hash worker's slices to the PUTs
 * instead would read it once, but Chromium holds an in-memory request body in the tab
 * until garbage collection: a 2 GiB upload grew the tab by 1.5 GiB and ran at a tenth of
 * the speed. A File cannot change between the two reads: Chromium refuses to read one
 * modified after it was chosen.
 * @param {object} options those of sendParts(), plus:
 * @param {import("./hash-pool.js").HashPool} options.hashPool
 * @param {(hashedBytes: number) => void} options.onHashProgress
 * @returns {Promise<string>} the file's SHA-256, hex
 */
export async function sendPartsWhileHashing({ hashPool, onHashProgress, ...send }) {
  const { controller: both, unlink } = linkedController(send.signal);
  let hashError = null;
  const hashed = hashPool.hash(send.file, { signal: both.signal, onProgress: onHashProgress });
  hashed.catch((error) => {
    hashError = error;
    both.abort(); // a file that cannot be read stops its upload too
  });
  try {
    await sendParts({ ...send, signal: both.signal });
    const { sha256 } = await hashed;
    return sha256;
  } catch (error) {
    both.abort();
    // The parts stopped because the hash failed: its reason is the one to show.
    if (hashError && !(hashError instanceof Cancelled)) throw hashError;
    throw error;
  } finally {
    unlink();
  }
}
