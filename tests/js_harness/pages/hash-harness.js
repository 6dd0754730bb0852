// Exposes hashing entry points on window for the Playwright scripts.
import { HashPool } from "/static/js/hash-pool.js";

const input = document.getElementById("file");

/** Hash the chosen file with the app's pool; resolves with the digest, time and progress seen. */
window.hashChosen = async ({ sliceSize, readAhead, inline, tee } = {}) => {
  const pool = new HashPool({ sliceSize, readAhead, inline });
  const progress = [];
  let teeBytes = 0;
  const onSlice = tee
    ? (offset, buffer, release) => {
        teeBytes += buffer.byteLength;
        release();
      }
    : undefined;
  const t0 = performance.now();
  const result = await pool.hash(input.files[0], { onProgress: (b) => progress.push(b), onSlice });
  return { ...result, wallMs: performance.now() - t0, progress, teeBytes };
};

/** Start hashing and cancel it after `afterMs`; resolves with the rejection's name. */
window.hashAndCancel = async (afterMs) => {
  const pool = new HashPool();
  const controller = new AbortController();
  setTimeout(() => controller.abort(), afterMs);
  try {
    await pool.hash(input.files[0], { signal: controller.signal });
    return "finished";
  } catch (error) {
    // The pool must still be usable after a cancel.
    const again = await pool.hash(new Blob(["abc"]));
    return `${error.name}:${again.sha256}`;
  }
};

let bench = null;

/** Run one measurement in the benchmark worker (see bench-worker.js for the modes). */
window.benchRun = (mode, opts = {}) => {
  bench ??= new Worker("/harness/bench-worker.js", { type: "module" });
  return new Promise((resolve, reject) => {
    bench.onmessage = (e) => (e.data.error ? reject(new Error(e.data.error)) : resolve(e.data));
    bench.postMessage({ mode, file: input.files[0], ...opts });
  });
};

window.pageContext = () => ({
  secure: window.isSecureContext,
  subtle: typeof crypto.subtle,
  origin: location.origin,
});

document.getElementById("status").textContent = "ready";
