// SHA-256 of a File in a module Web Worker, with hash-wasm.
//
// The file is read by slices (never whole). A nested worker (read-worker.js) reads the next
// slices while this one hashes the current one: Chromium fills a Blob read on the thread that
// started it, so reading on this thread would stall whenever hashing runs. Where nested
// workers are missing, reads are started here, one ahead, which overlaps less.
// No crypto.subtle: it does not exist on plain-http origins such as http://192.168.1.20:8000,
// and it cannot hash a file incrementally anyway.
//
// Messages in (from the page):
//   {type: "hash", id, file, sliceSize?, readAhead?, inline?, parts?, whole?}
//     inline: read on this thread even where a reader worker could start (for benchmarks)
//     readAhead: reads kept in flight when reading on this thread
//     parts: [{number, size}, ...] consecutive pieces of `file` to hash each on its own
//       too (the parts of a multipart upload), in the same single pass over the file
//     whole: false to skip the whole file's hash (only the parts' are wanted)
//   {type: "cancel", id}
// Messages out (to the page):
//   {type: "progress", id, bytesHashed}          at most every PROGRESS_INTERVAL_MS
//   {type: "part", id, number, sha256}           as soon as that part has been read
//   {type: "done", id, sha256, bytesHashed, ms}  (sha256 null when whole was false)
//   {type: "cancelled", id}
//   {type: "error", id, message}
//
// Slice buffers circulate between the reader and this worker (see read-worker.js).

import "../vendor/hash-wasm/sha256.umd.min.js";
import { Cancelled } from "./cancel.js";

const { createSHA256 } = globalThis.hashwasm;

const MiB = 1024 * 1024;
const DEFAULT_SLICE_SIZE = 8 * MiB;
const DEFAULT_READ_AHEAD = 2;
// Slices read but not yet hashed, reads in flight included: bounds memory to 4 slices.
const READ_WINDOW = 4;
const PROGRESS_INTERVAL_MS = 100;

/** Jobs by id: {cancelled, wakeReader}. */
const jobs = new Map();

self.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg.type === "hash") {
    runJob(msg);
  } else if (msg.type === "cancel") {
    const job = jobs.get(msg.id);
    if (job) {
      job.cancelled = true;
      job.wakeReader?.();
    }
  }
});

async function runJob(msg) {
  const job = { cancelled: false, wakeReader: null };
  jobs.set(msg.id, job);
  try {
    const result = await hashFile(msg, job);
    self.postMessage({ type: "done", id: msg.id, ...result });
  } catch (error) {
    if (error instanceof Cancelled) {
      self.postMessage({ type: "cancelled", id: msg.id });
    } else {
      self.postMessage({ type: "error", id: msg.id, message: describeError(error) });
    }
  } finally {
    jobs.delete(msg.id);
  }
}

async function hashFile(msg, job) {
  const { id, file } = msg;
  const options = {
    sliceSize: msg.sliceSize || DEFAULT_SLICE_SIZE,
    readAhead: Math.max(1, msg.readAhead || DEFAULT_READ_AHEAD),
  };
  const started = performance.now();
  const hasher = msg.whole === false ? null : await createSHA256();
  hasher?.init();
  const parts = msg.parts?.length ? await partHasher(id, msg.parts) : null;

  let bytesHashed = 0;
  let lastReport = started;
  const reader = msg.inline ? null : getReader();
  const slices = reader
    ? readerSlices(reader, job, id, file, options)
    : inlineSlices(file, options);
  for await (const slice of slices) {
    if (job.cancelled) throw new Cancelled();
    const bytes = new Uint8Array(slice.buffer, 0, slice.length);
    hasher?.update(bytes);
    parts?.update(bytes);
    bytesHashed += slice.length;

    const now = performance.now();
    if (now - lastReport >= PROGRESS_INTERVAL_MS) {
      lastReport = now;
      self.postMessage({ type: "progress", id, bytesHashed });
    }
  }
  if (job.cancelled) throw new Cancelled();
  if (bytesHashed !== file.size) {
    throw new Error("The file changed while it was being read.");
  }
  self.postMessage({ type: "progress", id, bytesHashed });
  const sha256 = hasher ? hasher.digest("hex") : null;
  return { sha256, bytesHashed, ms: performance.now() - started };
}

/**
 * A second hasher that follows the bytes across part boundaries (slices and parts do not
 * line up) and posts each part's SHA-256 the moment its last byte has been read, so that
 * part can be sent while the rest of the file is still being read.
 */
async function partHasher(id, parts) {
  const hasher = await createSHA256();
  hasher.init();
  let index = 0;
  let left = parts[0].size;
  return {
    update(bytes) {
      let offset = 0;
      while (offset < bytes.length && index < parts.length) {
        const take = Math.min(left, bytes.length - offset);
        hasher.update(bytes.subarray(offset, offset + take));
        offset += take;
        left -= take;
        if (left > 0) continue;
        const sha256 = hasher.digest("hex");
        self.postMessage({ type: "part", id, number: parts[index].number, sha256 });
        index += 1;
        if (index < parts.length) {
          hasher.init();
          left = parts[index].size;
        }
      }
    },
  };
}

/** The nested reader worker, started once; null where workers cannot start workers. */
let reader;

function getReader() {
  if (reader !== undefined) return reader;
  try {
    reader = new Worker(new URL("./read-worker.js", import.meta.url), { type: "module" });
  } catch {
    reader = null;
  }
  return reader;
}

/**
 * Slices in file order, read by the nested worker. Each slice's buffer goes back to the
 * reader with a credit once it has been hashed, to be read into again.
 */
async function* readerSlices(worker, job, id, file, { sliceSize }) {
  const arrived = new Map();
  let failure = null;
  let wake = null;
  job.wakeReader = () => wake?.();
  worker.onmessage = ({ data }) => {
    if (data.id !== id) return;
    if (data.type === "slice") arrived.set(data.offset, data);
    else failure = Object.assign(new Error(data.message), { name: data.name });
    wake?.();
  };
  // A reader that failed to load reports only here.
  worker.onerror = (event) => {
    event.preventDefault();
    failure = new Error(`The file reader failed to start: ${event.message || "unknown error"}`);
    reader = null; // later jobs read on this thread
    wake?.();
  };
  worker.postMessage({ type: "read", id, file, sliceSize, window: READ_WINDOW });
  try {
    for (let offset = 0; offset < file.size;) {
      while (!arrived.has(offset) && !failure && !job.cancelled) {
        await new Promise((resolve) => {
          wake = resolve;
        });
        wake = null;
      }
      if (failure) throw failure;
      if (job.cancelled) return;
      const { buffer, length } = arrived.get(offset);
      arrived.delete(offset);
      if (length === 0) throw new Error("The file changed while it was being read.");
      yield { offset, buffer, length };
      worker.postMessage({ type: "credit", id, buffer }, [buffer]);
      offset += length;
    }
  } finally {
    // Also runs when the hashing loop stops early (cancel, error).
    worker.postMessage({ type: "stop", id });
    worker.onmessage = null;
  }
}

/** Fallback: slices read on this thread, `readAhead` reads started before hashing. */
async function* inlineSlices(file, { sliceSize, readAhead }) {
  const reads = [];
  let next = 0;
  const fill = () => {
    while (reads.length < readAhead && next < file.size) {
      reads.push(readSlice(file, next, sliceSize));
      next += sliceSize;
    }
  };
  fill();
  while (reads.length > 0) {
    const slice = await reads.shift();
    fill();
    yield slice;
  }
}

/** Read one slice; a rejection is handled by whoever awaits it, or ignored after a cancel. */
function readSlice(file, offset, sliceSize) {
  const read = file
    .slice(offset, Math.min(offset + sliceSize, file.size))
    .arrayBuffer()
    .then((buffer) => ({ offset, buffer, length: buffer.byteLength }));
  read.catch(() => {});
  return read;
}

function describeError(error) {
  if (error?.name === "NotReadableError" || error?.name === "NotFoundError") {
    return "The file could not be read. Was it moved, changed or deleted after you chose it?";
  }
  if (error instanceof WebAssembly.CompileError || error?.name === "CompileError") {
    return "The browser refused to run the hashing code (the page's security policy must allow 'wasm-unsafe-eval').";
  }
  return error?.message || String(error);
}
