// Main-thread side of hash-worker.js: a small pool of workers, one job per worker at a time.

const WORKER_URL = new URL("./hash-worker.js", import.meta.url);

/** Raised (as a rejection) when a hash is cancelled through its AbortSignal. */
export class HashCancelled extends Error {
  constructor() {
    super("Hashing was cancelled.");
    this.name = "HashCancelled";
  }
}

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

  run(file, { signal, onProgress, sliceSize, readAhead, inline }) {
    return new Promise((resolve, reject) => {
      const id = nextJobId++;
      const onAbort = () => this.worker.postMessage({ type: "cancel", id });
      this.job = { id, resolve, reject, onProgress, signal, onAbort };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.worker.postMessage({ type: "hash", id, file, sliceSize, readAhead, inline });
    });
  }

  onMessage(msg) {
    const job = this.job;
    if (!job || msg.id !== job.id) return;
    if (msg.type === "progress") {
      job.onProgress?.(msg.bytesHashed);
    } else if (msg.type === "done") {
      this.finish();
      job.resolve({ sha256: msg.sha256, bytesHashed: msg.bytesHashed, ms: msg.ms });
    } else if (msg.type === "cancelled") {
      this.finish();
      job.reject(new HashCancelled());
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
    this.size = size;
    this.defaults = { sliceSize, readAhead, inline };
    this.idle = [];
    this.count = 0;
    this.waiting = [];
  }

  /**
   * SHA-256 of a file, read by slices in a worker.
   * @param {Blob} file
   * @param {object} [options]
   * @param {AbortSignal} [options.signal] aborting rejects with HashCancelled
   * @param {() => void} [options.onStart] when a worker takes the job (it may wait its turn)
   * @param {(bytesHashed: number) => void} [options.onProgress] about every 100 ms
   * @returns {Promise<{sha256: string, bytesHashed: number, ms: number}>}
   */
  async hash(file, options = {}) {
    const { signal } = options;
    if (signal?.aborted) throw new HashCancelled();
    const worker = await this.acquire(signal);
    try {
      if (signal?.aborted) throw new HashCancelled();
      options.onStart?.();
      return await worker.run(file, { ...this.defaults, ...options });
    } finally {
      this.release(worker);
    }
  }

  async acquire(signal) {
    const idle = this.idle.pop();
    if (idle) return idle;
    if (this.count < this.size) {
      this.count += 1;
      return new PooledWorker();
    }
    // Wait for a worker to be released, unless cancelled meanwhile.
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiting.push(waiter);
      signal?.addEventListener(
        "abort",
        () => {
          this.waiting = this.waiting.filter((w) => w !== waiter);
          reject(new HashCancelled());
        },
        { once: true },
      );
    });
  }

  release(worker) {
    if (worker.broken) {
      worker.worker.terminate();
      this.count -= 1;
      worker = this.count < this.size && this.waiting.length ? new PooledWorker() : null;
      if (!worker) return;
      this.count += 1;
    }
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve(worker);
    else this.idle.push(worker);
  }
}
