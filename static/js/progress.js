// Progress of one file: bytes hashed and uploaded, speed and time left, and how often the
// page is told (at most every 100 ms; a big upload reports progress thousands of times).

const REPORT_EVERY_MS = 100;
const SPEED_WINDOW_MS = 5000;
// Stages whose bytes move; speed and time left mean nothing in the others.
const MEASURED = new Set(["hashing", "uploading"]);

/**
 * Bytes sent of a file going out in pieces: confirmed pieces plus the in-flight progress of
 * the others. What it reports never goes down: a retried piece restarts at 0, and a bar
 * that runs backwards is a common complaint about other uploaders.
 */
export class ByteProgress {
  /**
   * @param {number} total the file's size
   * @param {number} [confirmed=0] bytes already stored (a resumed upload)
   */
  constructor(total, confirmed = 0) {
    this.total = total;
    this.confirmed = confirmed;
    this.inFlight = new Map();
    this.shown = Math.min(total, confirmed);
  }

  /** Bytes of one piece sent so far (0 again when it is retried). */
  report(key, bytes) {
    this.inFlight.set(key, bytes);
  }

  /** The piece is stored; its bytes count for good. */
  confirm(key, bytes) {
    this.inFlight.delete(key);
    this.confirmed += bytes;
  }

  /** @returns {number} bytes to show, never fewer than shown before */
  value() {
    let sum = this.confirmed;
    for (const bytes of this.inFlight.values()) sum += bytes;
    this.shown = Math.max(this.shown, Math.min(this.total, sum));
    return this.shown;
  }
}

/** Speed over the last few seconds, from (time, bytes) samples. */
class SpeedMeter {
  constructor() {
    this.samples = [];
  }

  add(bytes, now = performance.now()) {
    this.samples.push([now, bytes]);
    while (this.samples.length > 2 && now - this.samples[0][0] > SPEED_WINDOW_MS)
      this.samples.shift();
  }

  /** Bytes per second, or 0 until half a second of samples exists (too jumpy before). */
  speed() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 500 ? 0 : ((b1 - b0) * 1000) / (t1 - t0);
  }
}

/**
 * One file's counters as the page shows them, with the speed and time left of its current
 * stage. Reports go to `onReport` at most every 100 ms; a stage change is reported by the
 * queue itself, with the latest counters, so a pending report is dropped then.
 */
export class FileProgress {
  /**
   * @param {number} size the file's size in bytes
   * @param {() => void} onReport called when the counters should be shown again
   */
  constructor(size, onReport) {
    this.size = size;
    this.onReport = onReport;
    this.hashedBytes = 0;
    this.uploadedBytes = 0;
    this.speed = 0;
    this.eta = null; // seconds left, null while unknown
    this.stage = "queued";
    this.meter = new SpeedMeter();
    this.lastReport = 0;
    this.timer = null;
  }

  /**
   * The file moved to `stage`; speed and time left mean nothing outside hashing and
   * uploading.
   * @param {string} stage
   * @param {number} [uploadedBytes] already stored when uploading starts (a resume)
   */
  setStage(stage, uploadedBytes) {
    this.stage = stage;
    this.cancelReport();
    if (uploadedBytes !== undefined) {
      this.uploadedBytes = uploadedBytes;
      this.meter.add(uploadedBytes);
    }
    if (!MEASURED.has(stage)) {
      this.speed = 0;
      this.eta = null;
    }
  }

  /**
   * Measure speed afresh: the queue calls this when a hash is done and when the upload
   * has been created, so neither is averaged with the bytes of what came before.
   */
  restartSpeed() {
    this.meter = new SpeedMeter();
  }

  /**
   * New byte counts; speed and time left follow those of the current stage.
   * @param {{hashedBytes?: number, uploadedBytes?: number}} counts
   */
  update({ hashedBytes, uploadedBytes }) {
    if (hashedBytes !== undefined) this.hashedBytes = hashedBytes;
    if (uploadedBytes !== undefined) this.uploadedBytes = uploadedBytes;
    const current = this.stage === "hashing" ? this.hashedBytes : this.uploadedBytes;
    this.meter.add(current);
    this.speed = this.meter.speed();
    this.eta = this.speed > 0 ? (this.size - current) / this.speed : null;
    this.scheduleReport();
  }

  /** Every byte is stored: full bar, nothing left to wait for. */
  complete() {
    this.uploadedBytes = this.size;
    this.speed = 0;
    this.eta = 0;
    this.scheduleReport();
  }

  scheduleReport() {
    const wait = this.lastReport + REPORT_EVERY_MS - performance.now();
    if (wait <= 0) this.report();
    else this.timer ??= setTimeout(() => this.report(), wait);
  }

  report() {
    this.cancelReport();
    this.lastReport = performance.now();
    this.onReport();
  }

  cancelReport() {
    clearTimeout(this.timer);
    this.timer = null;
  }
}
