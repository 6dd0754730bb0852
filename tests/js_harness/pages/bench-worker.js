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
  throw new Error(`unknown mode ${mode}`);
}

let memory = null;

async function hashMemory(total, sliceSize) {
  // 64 MiB of random data, hashed over and over: larger than any CPU cache.
  if (!memory) {
    memory = new Uint8Array(64 * MiB);
    for (let i = 0; i < memory.length; i += 65536)
      crypto.getRandomValues(memory.subarray(i, i + 65536));
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
