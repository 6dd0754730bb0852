// Two ways to read a File by 8 MiB slices; each slice is touched (a byte summed), as a
// hasher would, then dropped.
const SLICE = 8 * 1024 * 1024;

self.onmessage = async ({ data }) => {
  try {
    const started = performance.now();
    const sum = data.mode === "byob" ? await byob(data.file) : await slices(data.file);
    self.postMessage({ ms: performance.now() - started, sum });
  } catch (error) {
    self.postMessage({ error: String(error) });
  }
};

/** What read-worker.js does: file.slice().arrayBuffer(), a new buffer every time. */
async function slices(file) {
  let sum = 0;
  for (let offset = 0; offset < file.size; offset += SLICE) {
    const buffer = await file.slice(offset, offset + SLICE).arrayBuffer();
    sum += new Uint8Array(buffer)[0];
  }
  return sum;
}

/** A BYOB reader filling one 8 MiB buffer again and again (it is transferred and back). */
async function byob(file) {
  const reader = file.stream().getReader({ mode: "byob" });
  let buffer = new ArrayBuffer(SLICE);
  let sum = 0;
  for (;;) {
    let filled = 0;
    let done = false;
    while (filled < SLICE) {
      const result = await reader.read(new Uint8Array(buffer, filled, SLICE - filled));
      if (result.done) {
        done = true;
        if (result.value) buffer = result.value.buffer;
        break;
      }
      buffer = result.value.buffer;
      filled += result.value.byteLength;
    }
    if (filled) sum += new Uint8Array(buffer)[0];
    if (done) return sum;
  }
}
