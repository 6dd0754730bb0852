// Main-thread side of hash-worker.js: a small pool of workers, one job per worker at a time.
// A cancelled hash rejects with Cancelled (cancel.js), like the rest of the upload path.

import { Cancelled, throwIfCancelled } from "./cancel.js";
import { Limiter } from "./limiter.js";

const WORKER_URL = new URL("./hash-worker.js", import.meta.url);

let nextJobId = 1;

/** One worker and the job it runs. */
class PooledWorker {
  constructor() {
    this.worker = new Worker(WORKER_URL, { type: "module" });
    this.job = null;
    this.worker.addEventListener("message", (event) => this.onMessage(event.data));
    // A worker that fails to load (bad path, CSP) reports here, not through messages.
    this.worker.addEventListener("error", (event) => {
      event.preventDefault();
      this.fail(
        new Error(`The hashing worker failed to start: ${event.message || "unknown error"}`),
      );
      this.broken = true;
    });
  }

  run(file, { signal, onProgress, onPart, sliceSize, readAhead, inline, parts, whole }) {
    return new Promise((resolve, reject) => {
      const id = nextJobId++;
      const onAbort = () => this.worker.postMessage({ type: "cancel", id });
      this.job = { id, resolve, reject, onProgress, onPart, signal, onAbort };
      signal?.addEventListener("abort", onAbort, { once: true });
      const message = { type: "hash", id, file, sliceSize, readAhead, inline, parts, whole };
      this.worker.postMessage(message);
    });
  }

  onMessage(msg) {
    const job = this.job;
    if (!job || msg.id !== job.id) return;
    if (msg.type === "progress") {
      job.onProgress?.(msg.bytesHashed);
    } else if (msg.type === "part") {
      job.onPart?.(msg.number, msg.sha256);
    } else if (msg.type === "done") {
      this.finish();
      job.resolve({ sha256: msg.sha256, bytesHashed: msg.bytesHashed, ms: msg.ms });
    } else if (msg.type === "cancelled") {
      this.finish();
      job.reject(new Cancelled());
    } else if (msg.type === "error") {
      this.finish();
      job.reject(new Error(msg.message));
    }
  }

  fail(error) {
    const job = this.job;
    this.finish();
    job?.reject(error);
  }

  finish() {
    const job = this.job;
    job?.signal?.removeEventListener("abort", job.onAbort);
    this.job = null;
  }
}

/**
 * Hashes files with a bounded number of workers; extra jobs wait their turn.
 */
export class HashPool {
  /**
   * @param {object} [options]
   * @param {number} [options.size=1] workers at most; hashing is CPU-bound, one is usually right
   * @param {number} [options.sliceSize] bytes per read (default 8 MiB, set in the worker)
   * @param {number} [options.readAhead] reads kept in flight while hashing (default 2)
   * @param {boolean} [options.inline] read on the hashing thread (slower; for comparisons)
   */
  constructor({ size = 1, sliceSize, readAhead, inline } = {}) {
    this.defaults = { sliceSize, readAhead, inline };
    this.limiter = new Limiter(size);
    // Workers are kept between jobs, so each one starts (and compiles hash-wasm) once.
    this.idle = [];
  }

  /**
   * SHA-256 of a file, read by slices in a worker.
   * @param {Blob} file
   * @param {object} [options]
   * @param {AbortSignal} [options.signal] aborting rejects with Cancelled
   * @param {() => void} [options.onStart] when a worker takes the job (it may wait its turn)
   * @param {(bytesHashed: number) => void} [options.onProgress] about every 100 ms
   * @param {{number: number, size: number}[]} [options.parts] consecutive pieces of the
   *   file to hash each on its own as well (a multipart upload's parts)
   * @param {(number: number, sha256: string) => void} [options.onPart] a part's SHA-256,
   *   as soon as its bytes have been read
   * @param {boolean} [options.whole=true] false: only the parts' hashes are wanted
   * @returns {Promise<{sha256: string|null, bytesHashed: number, ms: number}>}
   */
  async hash(file, options = {}) {
    const { signal } = options;
    await this.limiter.acquire(signal);
    const worker = this.idle.pop() ?? new PooledWorker();
    try {
      throwIfCancelled(signal);
      options.onStart?.();
      return await worker.run(file, { ...this.defaults, ...options });
    } finally {
      // A worker that failed to start is dropped; the next job starts a fresh one.
      if (worker.broken) worker.worker.terminate();
      else this.idle.push(worker);
      this.limiter.release();
    }
  }
}

/** The pool of hashAside(), started on first use. */
let asidePool = null;

/**
 * SHA-256 of a small blob in a worker of its own, not waiting behind the queue's long
 * jobs: re-hashing a part (or a small file) the storage refused as damaged in transit.
 * @param {Blob} blob
 * @param {AbortSignal} [signal]
 * @returns {Promise<string>} hex
 */
export async function hashAside(blob, signal) {
  asidePool ??= new HashPool();
  const { sha256 } = await asidePool.hash(blob, { signal });
  return sha256;
}
