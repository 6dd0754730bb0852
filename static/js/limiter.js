// A concurrency limiter: at most `size` holders at a time, waiters served in the order
// they came. The upload queue bounds the files uploading at once with one, the hash pool
// the files hashed at once with another.

import { Cancelled, throwIfCancelled } from "./cancel.js";

export class Limiter {
  /** @param {number} size holders at most (at least 1) */
  constructor(size) {
    this.free = Math.max(1, size);
    this.waiting = [];
  }

  /**
   * Wait for a place; pair every successful acquire() with one release().
   * @param {AbortSignal} [signal] aborting gives up the wait and rejects with Cancelled
   * @returns {Promise<void>}
   */
  async acquire(signal) {
    throwIfCancelled(signal);
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise((resolve, reject) => {
      const onAbort = () => {
        // Leave the line, or release() would hand the place to nobody.
        this.waiting = this.waiting.filter((wake) => wake !== waiter);
        reject(new Cancelled());
      };
      const waiter = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      this.waiting.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** Give a place back: the longest waiter gets it, or it becomes free. */
  release() {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}
