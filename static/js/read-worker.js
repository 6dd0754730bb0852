// Reads a File in order, by slices, and transfers them to the worker that started this one.
//
// Chromium fills the ArrayBuffer of a Blob read on the thread that asked for it, so a read
// started by the hash worker makes no progress while that worker is busy hashing. Reading
// here, on a thread of its own, lets the two really overlap.
//
// Buffers circulate instead of being allocated per slice: the file is read with a BYOB
// stream reader into at most `window` buffers, each transferred to the consumer and back
// with its credit. A fresh buffer per slice (`blob.slice().arrayBuffer()`) is garbage as
// soon as it is hashed, and V8 frees it so lazily that a 2 GiB file grew the tab by about
// 270 MiB; recycled buffers keep it at `window` slices. Where BYOB readers are missing,
// slices are read the old way.
//
// Messages in:  {type: "read", id, file, sliceSize, window}
//               {type: "credit", id, buffer?}  one slice consumed; its buffer, to reuse
//               {type: "stop", id}
// Messages out: {type: "slice", id, offset, buffer, length}   (buffer transferred; the
//                 slice is its first `length` bytes)
//               {type: "error", id, name, message}

/** The current job: {id, file, sliceSize, credits, spare, next, reading, stopped, reader}. */
let job = null;

self.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg.type === "read") {
    stop(job);
    // Slices delivered but not consumed, and the one being read, are bounded by `window`.
    job = { ...msg, credits: msg.window, spare: [], next: 0, reading: false, stopped: false };
    job.reader = byobReader(msg.file);
    pump(job);
  } else if (msg.type === "credit" && job?.id === msg.id) {
    job.credits += 1;
    if (msg.buffer?.byteLength === job.sliceSize) job.spare.push(msg.buffer);
    pump(job);
  } else if (msg.type === "stop" && job?.id === msg.id) {
    stop(job);
    job = null;
  }
});

function stop(current) {
  if (!current) return;
  current.stopped = true;
  current.reader?.cancel().catch(() => {});
}

/** Whether Blob streams take BYOB readers here: asked once, of an empty Blob. */
let byobBlobStreams;

/**
 * A BYOB reader of the file, or null where the browser has none for Blob streams.
 *
 * The question goes to an empty Blob, never to the file: WebKit starts reading a Blob's
 * stream as soon as stream() makes it, and it has no BYOB reader for one, so a stream of
 * the file made only to ask pulled the whole file, unread, into WebKit's network process
 * (+200 to +450 MiB for a 512 MiB file) and slowed the reads the hashing waits for.
 */
function byobReader(file) {
  if (byobBlobStreams === undefined) {
    try {
      new Blob().stream().getReader({ mode: "byob" }).releaseLock();
      byobBlobStreams = true;
    } catch {
      byobBlobStreams = false;
    }
  }
  if (!byobBlobStreams) return null;
  try {
    return file.stream().getReader({ mode: "byob" });
  } catch {
    return null; // the file's stream disagrees with the empty Blob's: read it the old way
  }
}

/** Read slices one after another while credits last. */
async function pump(current) {
  if (current.reading) return;
  current.reading = true;
  try {
    while (!current.stopped && current.credits > 0 && current.next < current.file.size) {
      current.credits -= 1;
      const offset = current.next;
      const { buffer, length } = current.reader
        ? await fill(current, current.spare.pop() ?? new ArrayBuffer(current.sliceSize))
        : await sliceRead(current, offset);
      if (current.stopped) return;
      current.next = offset + length;
      if (length === 0) current.next = current.file.size; // shrank: the consumer notices
      self.postMessage({ type: "slice", id: current.id, offset, buffer, length }, [buffer]);
    }
  } catch (error) {
    if (current.stopped) return;
    stop(current);
    self.postMessage({ type: "error", id: current.id, name: error?.name, message: error?.message });
  } finally {
    current.reading = false;
  }
}

/** Fill `buffer` from the stream, up to one slice (less at the end of the file). */
async function fill(current, buffer) {
  const want = Math.min(current.sliceSize, current.file.size - current.next);
  let length = 0;
  while (length < want) {
    const { value, done } = await current.reader.read(new Uint8Array(buffer, length, want - length));
    // The read detached the buffer it was given; its bytes come back in `value`.
    if (value) buffer = value.buffer;
    if (done) break;
    length += value.byteLength;
  }
  return { buffer, length };
}

/**
 * Fallback where Blob streams have no BYOB reader (WebKit): the slice's own stream copied
 * into a recycled buffer. `slice().arrayBuffer()` would allocate a fresh 8 MiB buffer per
 * slice, which WebKit collects late (its tab grew +296 MiB in a 256 MiB upload).
 */
async function sliceRead(current, offset) {
  const end = Math.min(offset + current.sliceSize, current.file.size);
  const buffer = current.spare.pop() ?? new ArrayBuffer(current.sliceSize);
  const view = new Uint8Array(buffer);
  const reader = current.file.slice(offset, end).stream().getReader();
  let length = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    view.set(value, length);
    length += value.byteLength;
  }
  return { buffer, length };
}
