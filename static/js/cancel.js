// Cancellation, the same way everywhere in the upload path. A file's Cancel button aborts
// its AbortController; whatever was waiting on that signal (a place in a limiter, a hash,
// an API call, a part PUT, a pause between retries) rejects with Cancelled. Callers need
// one `instanceof` test to tell "the user stopped it" from a failure worth showing.
//
// Imported by the hash worker too, so nothing here may touch the DOM.

/** The work was cancelled through its AbortSignal; never shown as an error. */
export class Cancelled extends Error {
  constructor(message = "Cancelled.") {
    super(message);
    this.name = "Cancelled";
  }
}

/**
 * Throw Cancelled if `signal` has already aborted.
 * @param {AbortSignal} [signal]
 */
export function throwIfCancelled(signal) {
  if (signal?.aborted) throw new Cancelled();
}

/**
 * `promise`, or a Cancelled rejection as soon as `signal` aborts.
 * @template T
 * @param {Promise<T>} promise
 * @param {AbortSignal} signal
 * @returns {Promise<T>}
 */
export function abortable(promise, signal) {
  if (signal.aborted) return Promise.reject(new Cancelled());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Cancelled());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/**
 * Wait `ms` milliseconds, or reject with Cancelled when `signal` aborts first.
 * @param {number} ms
 * @param {AbortSignal} signal
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return abortable(new Promise((resolve) => setTimeout(resolve, ms)), signal);
}

/**
 * A controller that aborts with `signal` but can also be aborted alone: tasks run as a
 * group (the parts of one file) stop together when one fails for good, without touching
 * the caller's signal. Call `unlink()` when the group is done, so a long-lived `signal`
 * does not keep the controller alive.
 * @param {AbortSignal} signal
 * @returns {{controller: AbortController, unlink: () => void}}
 */
export function linkedController(signal) {
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  if (signal.aborted) controller.abort();
  else signal.addEventListener("abort", onAbort, { once: true });
  return { controller, unlink: () => signal.removeEventListener("abort", onAbort) };
}
