// Reference measurements for the hashing benchmark, in a worker like the app's:
//   memory: hash-wasm over data already in memory (the ceiling the page is compared to)
//   read:   read the file by slices, one after the other, without hashing
//   naive:  read a slice, then hash it, then read the next (no overlap)
//   context: whether this worker runs in a secure context and has crypto.subtle
import "/static/vendor/hash-wasm/sha256.umd.min.js";

const { createSHA256 } = globalThis.hashwasm;
const MiB = 1024 * 1024;

self.onmessage = async (e) => {
  try {
    self.postMessage(await run(e.data));
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};

async function run({ mode, file, bytes, sliceSize = 8 * MiB }) {
  if (mode === "context") return { secure: self.isSecureContext, subtle: typeof crypto.subtle };
  if (mode === "memory") return hashMemory(bytes ?? file.size, sliceSize);
  if (mode === "read") return readOnly(file, sliceSize);
  if (mode === "naive") return naive(file, sliceSize);
  if (mode === "yield") return yielding(file, sliceSize, arguments[0].sub ?? MiB, arguments[0].readAhead ?? 1);
  if (mode === "twothread") return twoThread(file, sliceSize, arguments[0].readAhead ?? 1, arguments[0].window ?? 4);
  throw new Error(`unknown mode ${mode}`);
}

let memory = null;

async function hashMemory(total, sliceSize) {
  // 64 MiB of random data, hashed over and over: larger than any CPU cache.
  if (!memory) {
    memory = new Uint8Array(64 * MiB);
    for (let i = 0; i < memory.length; i += 65536) crypto.getRandomValues(memory.subarray(i, i + 65536));
  }
  const hasher = await createSHA256();
  hasher.init();
  const t0 = performance.now();
  let done = 0;
  while (done < total) {
    const start = done % memory.length;
    const n = Math.min(sliceSize, total - done, memory.length - start);
    hasher.update(memory.subarray(start, start + n));
    done += n;
  }
  hasher.digest("hex");
  return { ms: performance.now() - t0, bytes: total };
}

async function readOnly(file, sliceSize) {
  const t0 = performance.now();
  for (let off = 0; off < file.size; off += sliceSize) {
    await file.slice(off, off + sliceSize).arrayBuffer();
  }
  return { ms: performance.now() - t0, bytes: file.size };
}

async function naive(file, sliceSize) {
  const hasher = await createSHA256();
  hasher.init();
  const t0 = performance.now();
  for (let off = 0; off < file.size; off += sliceSize) {
    hasher.update(new Uint8Array(await file.slice(off, off + sliceSize).arrayBuffer()));
  }
  const sha256 = hasher.digest("hex");
  return { ms: performance.now() - t0, bytes: file.size, sha256 };
}

const channel = new MessageChannel();
const tickQueue = [];
channel.port2.onmessage = () => tickQueue.shift()();
const tick = () => new Promise((r) => { tickQueue.push(r); channel.port1.postMessage(0); });

async function yielding(file, sliceSize, sub, readAhead) {
  const hasher = await createSHA256();
  hasher.init();
  const t0 = performance.now();
  const reads = [];
  let next = 0;
  const fill = () => { while (reads.length < readAhead && next < file.size) { reads.push(file.slice(next, next + sliceSize).arrayBuffer()); next += sliceSize; } };
  fill();
  while (reads.length) {
    const buf = new Uint8Array(await reads.shift());
    fill();
    for (let i = 0; i < buf.length; i += sub) {
      hasher.update(buf.subarray(i, i + sub));
      await tick();
    }
  }
  const sha256 = hasher.digest("hex");
  return { ms: performance.now() - t0, bytes: file.size, sha256 };
}

async function twoThread(file, sliceSize, readAhead, window) {
  const hasher = await createSHA256();
  hasher.init();
  const t0 = performance.now();
  const reader = new Worker("/harness/reader-worker.js", { type: "module" });
  const ch = new MessageChannel();
  const pending = new Map();
  let want = 0;
  let wake = null;
  ch.port1.onmessage = (e) => { pending.set(e.data.off, e.data.buf); if (wake) { const w = wake; wake = null; w(); } };
  reader.postMessage({ file, sliceSize, readAhead, window, port: ch.port2 }, [ch.port2]);
  while (want < file.size) {
    while (!pending.has(want)) await new Promise((r) => (wake = r));
    const buf = pending.get(want);
    pending.delete(want);
    hasher.update(new Uint8Array(buf));
    ch.port1.postMessage(0);
    want += buf.byteLength;
  }
  reader.terminate();
  const sha256 = hasher.digest("hex");
  return { ms: performance.now() - t0, bytes: file.size, sha256 };
}
