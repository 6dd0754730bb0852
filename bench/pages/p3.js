// P3 in the page: the app's own hashing (static/js/hash-pool.js → hash-worker.js) of the
// chosen file, and references measured by p3-worker.js in a worker of the same kind.
import { HashPool } from "/static/js/hash-pool.js";

const pool = new HashPool();
const reference = new Worker("/bench/p3-worker.js", { type: "module" });
const file = () => document.getElementById("file").files[0];

function ask(worker, message) {
  return new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data));
    worker.postMessage(message);
  });
}

/**
 * The page's hashing, timed from the call to the digest (as a user waits for it).
 * `options` (sliceSize, readAhead) are HashPool's own knobs, to compare settings.
 */
window.hashWithApp = async (options = {}) => {
  const started = performance.now();
  const { sha256 } = await pool.hash(file(), options);
  return { ms: performance.now() - started, sha256 };
};

/** "memory" (hash-wasm over bytes already in memory) or "read" (read slices, no hash). */
window.reference = (mode, sliceSize) =>
  ask(reference, { mode, file: file(), sliceSize });

// Start the worker and compile the WebAssembly before anything is timed.
await pool.hash(new Blob([new Uint8Array(1024)]));
await ask(reference, { mode: "memory", bytes: 1024 });
document.getElementById("status").textContent = "ready";
