// Reads slices of a File and transfers them to the worker that started this one.
//
// Chromium fills the ArrayBuffer of `blob.arrayBuffer()` on the thread that asked for it,
// so a read started by the hash worker makes no progress while that worker is busy hashing.
// Reading here, on a thread of its own, lets the two really overlap.
//
// Messages in:  {type: "read", id, file, sliceSize, readAhead, window}
//               {type: "credit", id}     one delivered slice has been consumed
//               {type: "stop", id}
// Messages out: {type: "slice", id, offset, buffer}   (buffer transferred)
//               {type: "error", id, name, message}

/** The current job: {id, file, sliceSize, readAhead, credits, next, inFlight, stopped}. */
let job = null;

self.addEventListener("message", (event) => {
  const msg = event.data;
  if (msg.type === "read") {
    // Slices in flight or delivered but not consumed are bounded by `window`.
    job = { ...msg, credits: msg.window, next: 0, inFlight: 0, stopped: false };
    pump(job);
  } else if (msg.type === "credit" && job?.id === msg.id) {
    job.credits += 1;
    pump(job);
  } else if (msg.type === "stop" && job?.id === msg.id) {
    job.stopped = true;
    job = null;
  }
});

function pump(current) {
  while (
    !current.stopped &&
    current.inFlight < current.readAhead &&
    current.credits > 0 &&
    current.next < current.file.size
  ) {
    const offset = current.next;
    const end = Math.min(offset + current.sliceSize, current.file.size);
    current.next = end;
    current.inFlight += 1;
    current.credits -= 1;
    current.file
      .slice(offset, end)
      .arrayBuffer()
      .then(
        (buffer) => {
          current.inFlight -= 1;
          if (current.stopped) return;
          self.postMessage({ type: "slice", id: current.id, offset, buffer }, [buffer]);
          pump(current);
        },
        (error) => {
          if (current.stopped) return;
          current.stopped = true;
          self.postMessage({
            type: "error",
            id: current.id,
            name: error?.name,
            message: error?.message,
          });
        },
      );
  }
}
