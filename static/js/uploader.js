// The upload engine: hashes files, asks the server which are new, and sends the new ones
// straight to the storage (S3 or the app's local store, which hand out the same kinds of
// instructions). UI-agnostic: it only emits events; upload-panel.js draws them.
//
// Per batch: hash every file (web worker) → one bulk duplicate check → per new file
// POST /api/uploads → form POST or multipart part PUTs → POST /api/uploads/<id>/complete.
//
// Files big enough to go multipart are hashed while they upload, instead of before: first
// only their fingerprint (the hash of their first and last MiB) goes to the duplicate
// check. When no file of the user's could hold the same bytes (none of the same size and
// fingerprint), the upload starts at once and the hash runs alongside it; the whole
// file's SHA-256 goes with complete. Otherwise the file is hashed in full and checked
// again first, so a duplicate is still caught before any byte is sent.
//
// Events (CustomEvent, `detail` is a snapshot, see Uploader#snapshot):
//   "file-added"     a file joined the list
//   "file-stage"     its stage changed
//   "file-progress"  its hashed/uploaded bytes, speed or ETA changed (at most every 100 ms)
//   "file-removed"   a finished file was forgotten (remove())
// When a file is done, `files-changed` is also dispatched on document.body (bubbling), so
// an htmx list with hx-trigger="files-changed from:body" refreshes itself.

import { ApiError, createApi } from "./api.js";
import { Cancelled } from "./cancel.js";
import { HashPool } from "./hash-pool.js";
import { TransferError, sendXhr, storageErrorMessage } from "./transfer.js";

/** Stages in order of a normal life; the last four are final. */
export const STAGES = [
  "queued",
  "hashing",
  "checking",
  "uploading",
  "finishing",
  "done",
  "duplicate",
  "failed",
  "cancelled",
];
const FINAL = new Set(["done", "duplicate", "failed", "cancelled"]);

const MiB = 1024 * 1024;
const RETRY_DELAYS_MS = [0, 1000, 3000, 5000];
const CHECK_BATCH = 1000;
const PART_URL_BATCH = 100;
const URL_REFRESHES_PER_PART = 2;
const PROGRESS_EVENT_MS = 100;
const SPEED_WINDOW_MS = 5000;

const VIDEO_TYPES = {
  mp4: "video/mp4",
  m4v: "video/mp4",
  mkv: "video/x-matroska",
  webm: "video/webm",
  mov: "video/quicktime",
  avi: "video/x-msvideo",
  ts: "video/mp2t",
  ogv: "video/ogg",
};

/** A failure to show on the file's row. */
class UploadFailure extends Error {}

/** Bytes sent: confirmed parts plus in-flight progress, never lower than shown before. */
class ByteProgress {
  constructor(total, confirmed = 0) {
    this.total = total;
    this.confirmed = confirmed;
    this.inFlight = new Map();
    this.shown = Math.min(total, confirmed);
  }

  /** Bytes of one part sent so far (0 again when it is retried). */
  report(key, bytes) {
    this.inFlight.set(key, bytes);
  }

  /** The part is stored; its bytes count for good. */
  confirm(key, bytes) {
    this.inFlight.delete(key);
    this.confirmed += bytes;
  }

  value() {
    let sum = this.confirmed;
    for (const bytes of this.inFlight.values()) sum += bytes;
    // A retried part restarts at 0: the bar holds still instead of running backwards.
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

  /** Bytes per second, or 0 until half a second of samples exists. */
  speed() {
    if (this.samples.length < 2) return 0;
    const [t0, b0] = this.samples[0];
    const [t1, b1] = this.samples[this.samples.length - 1];
    return t1 - t0 < 500 ? 0 : ((b1 - b0) * 1000) / (t1 - t0);
  }
}

/** Fetches presigned part URLs in batches of up to 100, ahead of need, in part order. */
class PartUrls {
  constructor(api, uploadId, partNumbers) {
    this.api = api;
    this.uploadId = uploadId;
    this.order = partNumbers;
    this.urls = new Map();
    this.pending = new Map();
  }

  async get(partNumber, signal) {
    if (this.urls.has(partNumber)) return this.urls.get(partNumber);
    if (!this.pending.has(partNumber)) {
      // Ask for this part and the next ones nobody asked for yet.
      const start = this.order.indexOf(partNumber);
      const batch = this.order
        .slice(start)
        .filter((n) => !this.urls.has(n) && !this.pending.has(n))
        .slice(0, PART_URL_BATCH);
      this.fetch(batch.length ? batch : [partNumber], signal);
    }
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  /** A fresh URL for one part (the old one expired). */
  async refresh(partNumber, signal) {
    this.urls.delete(partNumber);
    this.fetch([partNumber], signal);
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  fetch(partNumbers, signal) {
    const request = this.api
      .post(`/uploads/${this.uploadId}/parts`, { part_numbers: partNumbers }, { signal })
      .then(({ data }) => {
        for (const { part_number: n, url } of data.parts) this.urls.set(n, url);
      })
      .finally(() => {
        for (const n of partNumbers) this.pending.delete(n);
      });
    for (const n of partNumbers) this.pending.set(n, request);
    request.catch(() => {}); // awaited by whoever needs the URL
  }
}

/** At most `size` holders at a time; waiters are served in order. */
class Slots {
  constructor(size) {
    this.free = size;
    this.waiting = [];
  }

  async acquire(signal) {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.waiting.push(waiter);
      signal.addEventListener(
        "abort",
        () => {
          this.waiting = this.waiting.filter((w) => w !== waiter);
          reject(new Cancelled());
        },
        { once: true },
      );
    });
  }

  release() {
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve();
    else this.free += 1;
  }
}

/**
 * The upload engine. Create one per page; add files with add().
 */
export class Uploader extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.api="/api"] base URL of the JSON API
   * @param {number} [options.concurrency=2] files uploading at the same time
   * @param {number} [options.partsInFlight=4] multipart parts in flight per file
   * @param {number} [options.hashWorkers=1] files hashed at the same time
   * @param {number} [options.hashWhileUploadingAbove=Infinity] bytes: larger files are
   *   hashed while they upload (the server's MULTIPART_THRESHOLD is the natural value)
   * @param {() => string} [options.csrfToken] defaults to `<meta name="csrf-token">`
   * @param {EventTarget|null} [options.notifyTarget] gets `files-changed`; default document.body
   */
  constructor({
    api = "/api",
    concurrency = 2,
    partsInFlight = 4,
    hashWorkers = 1,
    hashWhileUploadingAbove = Infinity,
    csrfToken,
    notifyTarget,
  } = {}) {
    super();
    this.api = createApi({ base: api, csrfToken });
    this.partsInFlight = Math.max(1, partsInFlight);
    this.slots = new Slots(Math.max(1, concurrency));
    this.hashPool = new HashPool({ size: Math.max(1, hashWorkers) });
    this.hashWhileUploadingAbove = hashWhileUploadingAbove;
    this.notifyTarget = notifyTarget === undefined ? globalThis.document?.body : notifyTarget;
    this.entries = new Map();
    this.nextId = 1;
    // sha256 (or fingerprint and size) → promise settled when the file uploading that
    // content is finished with it.
    this.claims = new Map();
  }

  /**
   * Add files as one batch: hashed, checked for duplicates in one request, then uploaded.
   * @param {Iterable<File>} files
   * @returns {string[]} the ids given to the files
   */
  add(files) {
    const batch = [...files].map((file) => this.createEntry(file));
    for (const entry of batch) this.emit("file-added", entry);
    this.runBatch(batch);
    return batch.map((entry) => entry.id);
  }

  /**
   * Cancel a file: stops hashing or uploading and drops its pending upload on the server.
   * Not possible once it is finishing (the server may already be recording it) or final.
   * @param {string} id
   * @returns {boolean} whether it was cancelled
   */
  cancel(id) {
    const entry = this.entries.get(id);
    if (!entry || FINAL.has(entry.stage) || entry.stage === "finishing") return false;
    entry.controller.abort();
    this.forgetUpload(entry);
    this.setStage(entry, "cancelled");
    return true;
  }

  /**
   * Try a failed or cancelled file again; a multipart upload resumes with its missing parts.
   * @param {string} id
   * @returns {boolean} whether it was restarted
   */
  retry(id) {
    const entry = this.entries.get(id);
    if (!entry || !["failed", "cancelled"].includes(entry.stage) || !entry.retryable) return false;
    entry.controller = new AbortController();
    entry.error = null;
    this.setStage(entry, "queued");
    this.runOne(entry);
    return true;
  }

  /**
   * Forget a file in a final stage.
   * @param {string} id
   * @returns {boolean}
   */
  remove(id) {
    const entry = this.entries.get(id);
    if (!entry || !FINAL.has(entry.stage)) return false;
    this.entries.delete(id);
    this.emit("file-removed", entry);
    return true;
  }

  /**
   * The state of one file.
   * @param {string} id
   * @returns {object|undefined} see snapshot()
   */
  get(id) {
    const entry = this.entries.get(id);
    return entry && this.snapshot(entry);
  }

  /** @returns {boolean} whether any file is still being worked on */
  get busy() {
    for (const entry of this.entries.values()) if (!FINAL.has(entry.stage)) return true;
    return false;
  }

  // ---- batch and per-file flow -------------------------------------------------------

  createEntry(file) {
    const entry = {
      id: `u${this.nextId++}`,
      file,
      name: file.name,
      size: file.size,
      contentType: contentTypeOf(file),
      stage: "queued",
      sha256: null,
      fingerprint: null,
      // Hashed while uploading: created with the fingerprint, sha256 sent at complete.
      singlePass: false,
      hashedBytes: 0,
      uploadedBytes: 0,
      speed: 0,
      eta: null,
      error: null,
      retryable: true,
      match: null,
      result: null,
      upload: null,
      pendingComplete: null,
      method: null,
      controller: new AbortController(),
      meter: new SpeedMeter(),
      lastProgressEvent: 0,
      progressTimer: null,
    };
    this.entries.set(entry.id, entry);
    return entry;
  }

  async runBatch(batch) {
    const signals = new Map(batch.map((entry) => [entry, entry.controller.signal]));
    // A file cancelled or retried meanwhile has left the batch (a retry runs on its own).
    const current = (entry) => entry.controller.signal === signals.get(entry);
    const ready = (entries) => entries.filter((e) => current(e) && e.stage === "queued");
    await Promise.all(batch.map((entry) => this.identifyStep(entry, signals.get(entry))));
    const unsure = await this.checkStep(ready(batch), current);
    if (unsure.length === 0) return;
    // A file of the same size is in the library: hash these in full before sending a byte.
    await Promise.all(unsure.map((entry) => this.hashStep(entry, signals.get(entry))));
    await this.checkStep(ready(unsure), current);
  }

  /** Hash a file in full, or only its fingerprint when it can be hashed while uploading. */
  identifyStep(entry, signal) {
    return entry.size > this.hashWhileUploadingAbove
      ? this.fingerprintStep(entry, signal)
      : this.hashStep(entry, signal);
  }

  /**
   * One bulk duplicate check: duplicates are marked, new files start uploading. Returns
   * the files known only by a fingerprint that some file of the user's might match.
   */
  async checkStep(entries, current) {
    if (entries.length === 0) return [];
    for (const entry of entries) this.setStage(entry, "checking");
    let results;
    try {
      results = await this.checkDuplicates(entries);
    } catch (error) {
      for (const entry of entries) {
        if (current(entry) && entry.stage === "checking") this.fail(entry, error);
      }
      return [];
    }
    const unsure = [];
    entries.forEach((entry, i) => {
      if (!current(entry) || entry.stage !== "checking") return;
      const result = results[i];
      if (result.duplicate) {
        this.markDuplicate(entry, result.file);
      } else if (result.needs_sha256) {
        this.setStage(entry, "queued");
        unsure.push(entry);
      } else {
        entry.singlePass = !entry.sha256;
        this.uploadStep(entry, entry.controller.signal);
      }
    });
    return unsure;
  }

  /** A retry: hash if needed, then upload (creating the upload reports duplicates too). */
  async runOne(entry) {
    const signal = entry.controller.signal;
    const hashed = entry.sha256 || entry.singlePass;
    if (!hashed && !(await this.hashStep(entry, signal))) return;
    await this.uploadStep(entry, signal);
  }

  /** Hash one file; returns whether it succeeded. */
  async hashStep(entry, signal) {
    return this.hashInto(entry, "sha256", entry.file, signal);
  }

  /**
   * Hash the file's first MiB followed by its last MiB (all of it up to 2 MiB): what the
   * server compares with the files of the same size. Returns whether it succeeded.
   */
  async fingerprintStep(entry, signal) {
    const { file } = entry;
    const ends = new Blob([file.slice(0, MiB), file.slice(Math.max(MiB, file.size - MiB))]);
    return this.hashInto(entry, "fingerprint", ends, signal);
  }

  /** Hash `blob` in the worker pool into entry[field], showing progress for the full hash. */
  async hashInto(entry, field, blob, signal) {
    if (entry.size === 0) {
      this.fail(entry, new UploadFailure("This file is empty."), false);
      return false;
    }
    const full = field === "sha256";
    try {
      const { sha256 } = await this.hashPool.hash(blob, {
        signal,
        onStart: () => this.setStage(entry, "hashing"),
        onProgress: full ? (bytes) => this.progress(entry, { hashedBytes: bytes }) : undefined,
      });
      if (signal.aborted) return false;
      entry[field] = sha256;
      if (full) this.progress(entry, { hashedBytes: entry.size });
      entry.meter = new SpeedMeter();
      this.setStage(entry, "queued");
      return true;
    } catch (error) {
      if (!signal.aborted && !(error instanceof Cancelled)) this.fail(entry, error);
      return false;
    }
  }

  /** Bulk checks of 1000 files at most; the results in the order of `entries`. */
  async checkDuplicates(entries) {
    const files = entries.map((e) =>
      e.sha256 ? { sha256: e.sha256, size: e.size } : { fingerprint: e.fingerprint, size: e.size },
    );
    const results = [];
    for (let i = 0; i < files.length; i += CHECK_BATCH) {
      const { data } = await this.api.post("/files/check", {
        files: files.slice(i, i + CHECK_BATCH),
      });
      results.push(...data.results);
    }
    return results;
  }

  /** Wait for an upload slot, then create the upload, send the bytes, complete. */
  async uploadStep(entry, signal) {
    this.setStage(entry, "queued");
    const content = entry.sha256 ?? `${entry.fingerprint}/${entry.size}`;
    let release = null;
    try {
      // The same content twice (in one batch): let the first finish, so that the second is
      // then reported as its duplicate instead of sharing its upload.
      while (this.claims.has(content)) await abortable(this.claims.get(content), signal);
      this.claims.set(content, new Promise((resolve) => (release = resolve)));
      await this.slots.acquire(signal);
    } catch {
      this.unclaim(content, release);
      return; // cancelled while waiting
    }
    try {
      await this.upload(entry, signal);
    } catch (error) {
      if (!signal.aborted) this.fail(entry, error);
    } finally {
      this.slots.release();
      this.unclaim(content, release);
    }
  }

  unclaim(content, release) {
    if (!release) return;
    this.claims.delete(content);
    release();
  }

  async upload(entry, signal) {
    // Bytes all sent but complete failed (503, 409): a retry only completes again.
    if (!entry.pendingComplete) {
      const body = await this.transfer(entry, signal);
      if (!body) return; // a duplicate
      if (signal.aborted) throw new Cancelled();
      entry.pendingComplete = { id: entry.upload.id, body };
    }
    await this.complete(entry);
  }

  /** Create the upload and send the bytes; returns the body for complete, null for a duplicate. */
  async transfer(entry, signal) {
    this.setStage(entry, "checking");
    const upload = await this.createOrHash(entry, signal);
    if (!upload) return null;
    entry.upload = upload.upload;
    entry.method = upload.upload.method;
    entry.meter = new SpeedMeter();

    if (entry.method === "post") {
      // Not expected (the page hashes while uploading only multipart-sized files), but a
      // form upload sends the File itself: hash it first, then send it.
      if (entry.singlePass && !entry.sha256 && !(await this.hashStep(entry, signal))) {
        throw new Cancelled();
      }
      this.setStage(entry, "uploading");
      await this.postUpload(entry, signal);
      return entry.singlePass ? { sha256: entry.sha256 } : {};
    }
    if (entry.method === "multipart") {
      const plan = await this.planParts(entry, upload.resumed, signal);
      this.setStage(entry, "uploading");
      // Complete is sent without the part list: the server takes it from the store and
      // checks every part's size, so the request stays small however big the file.
      if (entry.singlePass) return { sha256: await this.hashWhileSending(entry, plan, signal) };
      await this.sendParts(entry, plan, signal);
      return {};
    }
    throw new UploadFailure(`The server asked for an unknown upload method "${entry.method}".`);
  }

  async complete(entry) {
    this.setStage(entry, "finishing");
    const { id, body } = entry.pendingComplete;
    let data;
    try {
      ({ data } = await this.api.post(`/uploads/${id}/complete`, body));
    } catch (error) {
      // Only a store that is down (503) or busy (409) keeps the upload for another try.
      if (!(error instanceof ApiError && (error.status === 503 || error.status === 409))) {
        entry.pendingComplete = null;
      }
      throw error;
    }
    entry.pendingComplete = null;
    entry.upload = null;
    if (data?.duplicate) {
      this.markDuplicate(entry, data.file);
      return;
    }
    entry.result = data.file;
    this.progress(entry, { uploadedBytes: entry.size, speed: 0, eta: 0 });
    this.setStage(entry, "done");
    this.notifyTarget?.dispatchEvent(new CustomEvent("files-changed", { bubbles: true }));
  }

  /**
   * Create the upload. One to be hashed while uploading is refused (409) when a file of the
   * same size and fingerprint arrived meanwhile: then hash it in full and create it again.
   */
  async createOrHash(entry, signal) {
    try {
      return await this.createUpload(entry, signal);
    } catch (error) {
      if (!(entry.singlePass && error instanceof ApiError && error.status === 409)) throw error;
    }
    entry.singlePass = false;
    if (!(await this.hashStep(entry, signal))) throw new Cancelled();
    this.setStage(entry, "checking");
    return this.createUpload(entry, signal);
  }

  /**
   * POST /api/uploads: null for a duplicate, else {upload, resumed}. Not aborted by a cancel,
   * so that an upload the server created meanwhile is known and can be deleted.
   */
  async createUpload(entry, signal) {
    const { status, data } = await this.api.post("/uploads", {
      name: entry.name,
      size: entry.size,
      // Without sha256 the server plans an upload to be hashed while it is sent.
      sha256: entry.singlePass ? undefined : entry.sha256,
      fingerprint: entry.fingerprint ?? undefined,
      content_type: entry.contentType,
    });
    if (signal.aborted) {
      if (data?.upload) this.api.del(`/uploads/${data.upload.id}`).catch(() => {});
      throw new Cancelled();
    }
    if (data?.duplicate) {
      this.markDuplicate(entry, data.file);
      return null;
    }
    // 200 with an upload: one was already pending for this content, so resume it.
    return { upload: data.upload, resumed: status === 200 };
  }

  /** One form POST (fields first, the file last), retried like a part. */
  async postUpload(entry, signal) {
    const progress = new ByteProgress(entry.size);
    await this.withRetries(entry, signal, {
      send: () => {
        const form = new FormData();
        for (const [name, value] of Object.entries(entry.upload.post.fields))
          form.append(name, value);
        form.append("file", entry.file);
        return sendXhr({
          method: "POST",
          url: entry.upload.post.url,
          body: form,
          signal,
          // The body is a little larger than the file (fields, boundaries): scale it.
          onProgress: (loaded, total) => {
            progress.report("post", total ? (loaded / total) * entry.size : 0);
            this.progress(entry, { uploadedBytes: progress.value() });
          },
        });
      },
      reset: () => progress.report("post", 0),
      // An expired policy: creating the upload again hands out fresh fields.
      renew: async () => {
        const again = await this.createUpload(entry, signal);
        if (!again) throw new Cancelled(); // became a duplicate meanwhile
        entry.upload = again.upload;
      },
    });
    progress.confirm("post", entry.size);
    this.progress(entry, { uploadedBytes: progress.value() });
  }

  /**
   * Which parts to send: all for a new upload; for a resumed one, those the storage does
   * not hold yet (asked once). Progress starts at the bytes already stored.
   */
  async planParts(entry, resumed, signal) {
    const { part_size: partSize, part_count: partCount } = entry.upload;
    const partBytes = (n) => Math.min(partSize, entry.size - (n - 1) * partSize);
    const held = new Set();
    if (resumed) {
      const { data } = await this.api.get(`/uploads/${entry.upload.id}`, { signal });
      for (const part of data.uploaded_parts ?? []) {
        // A part of the wrong size (cut off) is sent again.
        if (part.size === partBytes(part.part_number)) held.add(part.part_number);
      }
    }
    const todo = [];
    let confirmed = 0;
    for (let n = 1; n <= partCount; n += 1) {
      if (held.has(n)) confirmed += partBytes(n);
      else todo.push(n);
    }
    const progress = new ByteProgress(entry.size, confirmed);
    entry.uploadedBytes = progress.value();
    entry.meter.add(entry.uploadedBytes);
    return { partSize, partBytes, todo, progress };
  }

  /**
   * Send the parts and hash the file at the same time; returns the whole file's sha256.
   *
   * Parts go as Blob slices of the File, which the browser streams from the disk (or the
   * page cache) in its own process. Handing the hash worker's slices to the PUTs instead
   * would read the file once, but Chromium holds an in-memory request body in the tab
   * until garbage collection: a 2 GiB upload grew the tab by 1.5 GiB and ran at a tenth
   * of the speed. A File cannot change between the two reads: Chromium refuses to read
   * one modified after it was chosen.
   */
  async hashWhileSending(entry, plan, signal) {
    const both = new AbortController();
    const onAbort = () => both.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let hashError = null;
    const hashed = this.hashPool.hash(entry.file, {
      signal: both.signal,
      onProgress: (bytes) => this.progress(entry, { hashedBytes: bytes }),
    });
    hashed.catch((error) => {
      hashError = error;
      both.abort(); // a file that cannot be read stops its upload too
    });
    try {
      await this.sendParts(entry, plan, both.signal);
      const { sha256 } = await hashed;
      entry.sha256 = sha256;
      this.progress(entry, { hashedBytes: entry.size });
      return sha256;
    } catch (error) {
      both.abort();
      if (hashError && !(hashError instanceof Cancelled)) throw hashError;
      if (error instanceof Cancelled) throw new Cancelled();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Send the planned parts, as Blob slices of the File, several at a time. */
  async sendParts(entry, { partSize, partBytes, todo, progress }, signal) {
    const { id } = entry.upload;
    const urls = new PartUrls(this.api, id, todo);
    // One part failing for good stops the others.
    const parts = new AbortController();
    const onAbort = () => parts.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const queue = [...todo];
    const sender = async () => {
      while (queue.length > 0 && !parts.signal.aborted) {
        const n = queue.shift();
        const start = (n - 1) * partSize;
        const body = entry.file.slice(start, start + partBytes(n));
        await this.sendPart(entry, parts.signal, { n, body, urls, progress });
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.partsInFlight, todo.length) }, sender));
    } catch (error) {
      parts.abort();
      throw error;
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** PUT one part. */
  async sendPart(entry, signal, { n, body, urls, progress }) {
    let url = await urls.get(n, signal);
    await this.withRetries(entry, signal, {
      send: () =>
        sendXhr({
          method: "PUT",
          url,
          body,
          signal,
          onProgress: (loaded) => {
            progress.report(n, loaded);
            this.progress(entry, { uploadedBytes: progress.value() });
          },
        }),
      reset: () => progress.report(n, 0),
      renew: async () => {
        url = await urls.refresh(n, signal);
      },
    });
    progress.confirm(n, body.size);
    this.progress(entry, { uploadedBytes: progress.value() });
  }

  /**
   * Run send() until the storage accepts: network errors and 5xx (also 409, 423, 429) wait
   * 0, 1, 3, 5 s between tries, a 403 (expired URL) renews the URL, other 4xx fail at once.
   * Being offline waits for the `online` event without using up a try.
   */
  async withRetries(entry, signal, { send, reset, renew }) {
    let retries = 0;
    let renewals = 0;
    for (;;) {
      if (signal.aborted) throw new Cancelled();
      let xhr;
      try {
        xhr = await send();
      } catch (error) {
        reset();
        if (!(error instanceof TransferError)) throw error;
        if (!navigator.onLine) {
          await waitForOnline(signal);
          continue;
        }
        if (retries >= RETRY_DELAYS_MS.length) throw new UploadFailure(error.message);
        await sleep(RETRY_DELAYS_MS[retries++], signal);
        continue;
      }
      if (xhr.status >= 200 && xhr.status < 300) return xhr;
      reset();
      if (xhr.status === 403 && renewals < URL_REFRESHES_PER_PART) {
        renewals += 1;
        await renew();
      } else if (isRetryableStatus(xhr.status) && retries < RETRY_DELAYS_MS.length) {
        await sleep(RETRY_DELAYS_MS[retries++], signal);
      } else {
        throw new UploadFailure(storageErrorMessage(xhr));
      }
    }
  }

  // ---- state and events --------------------------------------------------------------

  markDuplicate(entry, file) {
    entry.match = file ?? null;
    this.setStage(entry, "duplicate");
  }

  fail(entry, error, retryable = true) {
    if (error instanceof Cancelled || entry.stage === "cancelled") return;
    entry.error = error?.message || String(error);
    // A request the server rejects as invalid will not get better by sending it again.
    const invalid = error instanceof ApiError && (error.status === 400 || error.status === 413);
    entry.retryable = retryable && !invalid;
    if (error instanceof ApiError && error.status === 401) {
      entry.error = `${entry.error} Log in again, then retry.`;
    }
    this.setStage(entry, "failed");
  }

  /** On cancel: abort the server-side pending upload (fire and forget). */
  forgetUpload(entry) {
    const upload = entry.upload;
    entry.upload = null;
    if (upload) {
      this.api.del(`/uploads/${upload.id}`).catch((error) => {
        console.warn(`Could not cancel upload ${upload.id}: ${error.message}`);
      });
    }
  }

  setStage(entry, stage) {
    if (entry.stage === stage) return;
    entry.stage = stage;
    if (stage !== "hashing" && stage !== "uploading") {
      entry.speed = 0;
      entry.eta = null;
    }
    // The stage event carries the latest bytes, so a pending progress event is moot.
    clearTimeout(entry.progressTimer);
    entry.progressTimer = null;
    this.emit("file-stage", entry);
  }

  /** Apply byte counts, update speed/ETA, and emit at most every PROGRESS_EVENT_MS. */
  progress(entry, changes) {
    Object.assign(entry, changes);
    const current = entry.stage === "hashing" ? entry.hashedBytes : entry.uploadedBytes;
    if (!("speed" in changes)) {
      entry.meter.add(current);
      entry.speed = entry.meter.speed();
      entry.eta = entry.speed > 0 ? (entry.size - current) / entry.speed : null;
    }
    const wait = entry.lastProgressEvent + PROGRESS_EVENT_MS - performance.now();
    if (wait <= 0) {
      this.emitProgress(entry);
    } else if (!entry.progressTimer) {
      entry.progressTimer = setTimeout(() => this.emitProgress(entry), wait);
    }
  }

  emitProgress(entry) {
    clearTimeout(entry.progressTimer);
    entry.progressTimer = null;
    entry.lastProgressEvent = performance.now();
    this.emit("file-progress", entry);
  }

  emit(type, entry) {
    this.dispatchEvent(new CustomEvent(type, { detail: this.snapshot(entry) }));
  }

  /**
   * A plain copy of a file's state, as sent in event details.
   * @returns {{id: string, name: string, size: number, type: string, stage: string,
   *   sha256: string|null, hashedBytes: number, uploadedBytes: number, speed: number,
   *   eta: number|null, error: string|null, retryable: boolean, method: string|null,
   *   match: object|null, file: object|null, cancellable: boolean}}
   *   speed in bytes/s of the current stage (hashing or uploading), eta in seconds;
   *   match is the existing file a duplicate matches; file the created one when done.
   */
  snapshot(entry) {
    return {
      id: entry.id,
      name: entry.name,
      size: entry.size,
      type: entry.contentType,
      stage: entry.stage,
      sha256: entry.sha256,
      hashedBytes: entry.hashedBytes,
      uploadedBytes: entry.uploadedBytes,
      speed: entry.speed,
      eta: entry.eta,
      error: entry.error,
      retryable: entry.retryable,
      method: entry.method,
      match: entry.match,
      file: entry.result,
      cancellable: !FINAL.has(entry.stage) && entry.stage !== "finishing",
    };
  }
}

// ---- helpers -----------------------------------------------------------------------------

function isRetryableStatus(status) {
  return status >= 500 || status === 409 || status === 423 || status === 429;
}

function contentTypeOf(file) {
  if (file.type) return file.type;
  const extension = /\.([^.]+)$/.exec(file.name)?.[1]?.toLowerCase();
  return VIDEO_TYPES[extension] ?? "application/octet-stream";
}

/** The promise, or a Cancelled rejection when the signal aborts first. */
function abortable(promise, signal) {
  if (signal.aborted) return Promise.reject(new Cancelled());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(new Cancelled());
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

function sleep(ms, signal) {
  return abortable(new Promise((resolve) => setTimeout(resolve, ms)), signal);
}

function waitForOnline(signal) {
  if (navigator.onLine) return Promise.resolve();
  return abortable(
    new Promise((resolve) => window.addEventListener("online", resolve, { once: true })),
    signal,
  );
}
