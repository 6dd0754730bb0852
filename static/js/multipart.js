// The parts of one multipart upload: which ones the storage still lacks (a resumed upload
// sends only those), several PUTs at a time as slices of the File, and, in one pass of the
// hash worker, the whole file's SHA-256 when the upload was created without it and each
// part's SHA-256 when the store checks parts (the upload's `checksum`). A part then goes
// as soon as its own hash is known.

import { Cancelled, linkedController } from "./cancel.js";
import { hashAside } from "./hash-pool.js";
import { PartDigests, PartUrls } from "./part-urls.js";
import { ByteProgress } from "./progress.js";
import { sendWithRetries } from "./retry.js";
import { TransferError, sendXhr } from "./transfer.js";

/**
 * @typedef {object} PartPlan
 * @property {number} partSize bytes of every part but the last
 * @property {number} partCount
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
  return { partSize, partCount, partBytes, todo, progress: new ByteProgress(size, confirmed) };
}

/** Part n of the file, as a Blob the browser reads from the disk when it needs it. */
function partOf(file, { partSize, partBytes }, n) {
  const start = (n - 1) * partSize;
  return file.slice(start, start + partBytes(n));
}

/**
 * Read and hash `blob` again after the store refused it as damaged (400 BadDigest): the
 * same hash means the bytes were damaged on the way, so sending them again is right; a
 * different one means the file reads differently each time, and nothing is sent.
 * @param {Blob} blob
 * @param {string} what "Part 3", "The file"
 * @param {string|Promise<string>} expected the hash (hex) the URL was signed with
 * @param {AbortSignal} signal
 */
export async function confirmDigest(blob, what, expected, signal) {
  const again = await hashAside(blob, signal);
  if (again !== (await expected)) {
    throw new TransferError(
      "refused",
      `${what} of this file read differently twice: the disk or the memory may be failing. Copy the file elsewhere and try again.`,
    );
  }
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
 * @param {PartDigests|null} [options.digests] each part's SHA-256, for uploads with
 *   checksums: a part's URL is asked for once its hash is known
 * @returns {Promise<void>}
 */
export async function sendParts({
  api,
  file,
  upload,
  plan,
  partsInFlight,
  signal,
  onProgress,
  digests = null,
}) {
  const { todo, progress } = plan;
  const urls = new PartUrls(api, upload.id, todo, digests);
  const { controller: parts, unlink } = linkedController(signal);
  const queue = [...todo];
  const sender = async () => {
    while (queue.length > 0 && !parts.signal.aborted) {
      const n = queue.shift();
      const body = partOf(file, plan, n);
      await sendPart({ n, body, urls, digests, progress, signal: parts.signal, onProgress });
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

/**
 * PUT one part with the headers its URL was signed with, with retries, a fresh URL when
 * its URL expired, and the part read again when the store found it damaged.
 */
async function sendPart({ n, body, urls, digests, progress, signal, onProgress }) {
  let { url, headers } = await urls.get(n, signal);
  await sendWithRetries(signal, {
    send: () =>
      sendXhr({
        method: "PUT",
        url,
        headers,
        body,
        signal,
        onProgress: (loaded) => {
          progress.report(n, loaded);
          onProgress(progress.value());
        },
      }),
    reset: () => progress.report(n, 0),
    renew: async () => {
      ({ url, headers } = await urls.refresh(n, signal));
    },
    badDigest: digests ? () => confirmDigest(body, `Part ${n}`, digests.get(n), signal) : undefined,
  });
  progress.confirm(n, body.size);
  onProgress(progress.value());
}

/**
 * sendParts() and, at the same time, one pass of the hash pool over the file: for the
 * whole file's SHA-256 (`wholeFile`), and for each part's (`checksums`, posted as each
 * part has been read, which that part's URL waits for). Without the whole file's hash
 * only the parts still to send are read. Either failing stops the other.
 *
 * The hash reads the file a second time. Handing the hash worker's slices to the PUTs
 * instead would read it once, but Chromium holds an in-memory request body in the tab
 * until garbage collection: a 2 GiB upload grew the tab by 1.5 GiB and ran at a tenth of
 * the speed. A File cannot change between the two reads: Chromium refuses to read one
 * modified after it was chosen.
 * @param {object} options those of sendParts(), plus:
 * @param {import("./hash-pool.js").HashPool} options.hashPool
 * @param {(hashedBytes: number) => void} [options.onHashProgress] for the whole file's hash
 * @param {boolean} [options.wholeFile=true] compute the whole file's SHA-256
 * @param {boolean} [options.checksums=false] compute each part's SHA-256 for its URL
 * @returns {Promise<string|null>} the file's SHA-256, hex (null without wholeFile)
 */
export async function sendPartsWhileHashing({
  hashPool,
  onHashProgress,
  wholeFile = true,
  checksums = false,
  ...send
}) {
  const { file, plan } = send;
  const digests = checksums ? new PartDigests() : null;
  const numbers = wholeFile ? Array.from({ length: plan.partCount }, (_, i) => i + 1) : plan.todo;
  if (numbers.length === 0) return null; // resumed with every part stored already
  const { controller: both, unlink } = linkedController(send.signal);
  let hashError = null;
  // Blob slices of a File are read from the disk as they are hashed, never held whole.
  const blob = wholeFile ? file : new Blob(numbers.map((n) => partOf(file, plan, n)));
  const hashed = hashPool.hash(blob, {
    signal: both.signal,
    onProgress: wholeFile ? onHashProgress : undefined,
    parts: digests ? numbers.map((number) => ({ number, size: plan.partBytes(number) })) : undefined,
    onPart: digests ? (n, sha256) => digests.resolve(n, sha256) : undefined,
    whole: wholeFile,
  });
  hashed.catch((error) => {
    hashError = error;
    digests?.fail(error);
    both.abort(); // a file that cannot be read stops its upload too
  });
  try {
    await sendParts({ ...send, digests, signal: both.signal });
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
