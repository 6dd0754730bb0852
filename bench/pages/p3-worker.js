// References for P3, in a module worker like the app's hash worker:
//   memory: hash-wasm over data already in memory, as much of it as the file holds
//   read:   read the file by slices one after the other, without hashing
import "/static/vendor/hash-wasm/sha256.umd.min.js";

const { createSHA256 } = globalThis.hashwasm;
const MiB = 1024 * 1024;
let memory = null;

self.onmessage = async ({ data }) => {
  try {
    const bytes = data.bytes ?? data.file.size;
    const sliceSize = data.sliceSize ?? 8 * MiB;
    self.postMessage(data.mode === "memory" ? await hashMemory(bytes, sliceSize)
      : await readSlices(data.file, sliceSize));
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};

async function hashMemory(total, sliceSize) {
  // 64 MiB of random bytes, far larger than any CPU cache, hashed over and over.
  if (!memory) {
    memory = new Uint8Array(64 * MiB);
    for (let i = 0; i < memory.length; i += 65536)
      crypto.getRandomValues(memory.subarray(i, i + 65536));
  }
  const hasher = await createSHA256();
  hasher.init();
  const started = performance.now();
  for (let done = 0; done < total;) {
    const start = done % memory.length;
    const n = Math.min(sliceSize, total - done, memory.length - start);
    hasher.update(memory.subarray(start, start + n));
    done += n;
  }
  hasher.digest("hex");
  return { ms: performance.now() - started };
}

async function readSlices(file, sliceSize) {
  const started = performance.now();
  for (let offset = 0; offset < file.size; offset += sliceSize) {
    await file.slice(offset, offset + sliceSize).arrayBuffer();
  }
  return { ms: performance.now() - started };
}
