// The upload queue: the files added to the page, the stage each is in (upload-stages.js
// holds the table of allowed moves), and the order they go in. UI-agnostic: it emits
// events and upload-panel.js draws them.
//
// Per batch: hash every file (hash-pool.js) → one bulk duplicate check → each new file's
// upload session (upload-session.js): create, send, complete.
//
// Files big enough to go multipart are hashed while they upload, instead of before: first
// only their fingerprint (the hash of their first and last MiB) goes to the duplicate
// check. When no file of the user's could hold the same bytes (none of the same size and
// fingerprint), the upload starts at once and the hash runs alongside it; the whole
// file's SHA-256 goes with complete. Otherwise the file is hashed in full and checked
// again first, so a duplicate is still caught before any byte is sent.
//
// Events (CustomEvent, `detail` is a snapshot, see QueuedFile#snapshot):
//   "file-added"     a file joined the list
//   "file-stage"     its stage changed
//   "file-progress"  its hashed/uploaded bytes, speed or ETA changed (at most every 100 ms)
//   "file-removed"   a finished file was forgotten (remove())
// When a file is done, `files-changed` is also dispatched on document.body (bubbling), so
// an htmx list with hx-trigger="files-changed from:body" refreshes itself.

import { createApi } from "./api.js";
import { abortable, throwIfCancelled } from "./cancel.js";
import { checkFiles, fingerprintOf } from "./duplicate-check.js";
import { HashPool } from "./hash-pool.js";
import { Limiter } from "./limiter.js";
import { QueuedFile } from "./queued-file.js";
import { UploadFailure, UploadSession } from "./upload-session.js";
import { canCancel, canRetry } from "./upload-stages.js";

export class UploadQueue extends EventTarget {
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
    this.slots = new Limiter(concurrency);
    this.hashPool = new HashPool({ size: Math.max(1, hashWorkers) });
    this.hashWhileUploadingAbove = hashWhileUploadingAbove;
    this.notifyTarget = notifyTarget === undefined ? globalThis.document?.body : notifyTarget;
    this.entries = new Map();
    this.nextId = 1;
    this.emit = (type, entry) => {
      this.dispatchEvent(new CustomEvent(type, { detail: entry.snapshot() }));
    };
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
    const batch = [...files].map((file) => {
      const entry = new QueuedFile(`u${this.nextId++}`, file, this.emit);
      this.entries.set(entry.id, entry);
      return entry;
    });
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
    if (!entry || !canCancel(entry.stage)) return false;
    entry.controller.abort();
    entry.session?.abandon();
    entry.moveTo("cancelled");
    return true;
  }

  /**
   * Try a failed or cancelled file again; a multipart upload resumes with its missing parts.
   * @param {string} id
   * @returns {boolean} whether it was restarted
   */
  retry(id) {
    const entry = this.entries.get(id);
    if (!entry || !canRetry(entry.stage) || !entry.retryable) return false;
    entry.controller = new AbortController();
    entry.error = null;
    entry.moveTo("queued");
    this.runOne(entry);
    return true;
  }

  /**
   * Forget a file in a final stage.
   * @param {string} id
   * @returns {boolean} whether it was removed
   */
  remove(id) {
    const entry = this.entries.get(id);
    if (!entry?.final) return false;
    this.entries.delete(id);
    this.emit("file-removed", entry);
    return true;
  }

  /**
   * @param {string} id
   * @returns {object|undefined} the state of one file (QueuedFile#snapshot)
   */
  get(id) {
    return this.entries.get(id)?.snapshot();
  }

  /** @returns {boolean} whether any file is still being worked on */
  get busy() {
    for (const entry of this.entries.values()) if (!entry.final) return true;
    return false;
  }

  // ---- the flow of a batch and of a retry ----------------------------------------------

  async runBatch(batch) {
    const signals = new Map(batch.map((entry) => [entry, entry.controller.signal]));
    // A file cancelled or retried meanwhile has left the batch (a retry runs on its own).
    const current = (entry) => entry.controller.signal === signals.get(entry);
    const ready = (entries) => entries.filter((e) => current(e) && e.stage === "queued");
    // A file that can be hashed while uploading is known by its fingerprint at first.
    const identify = (entry) =>
      entry.file.size > this.hashWhileUploadingAbove ? "fingerprint" : "sha256";
    await Promise.all(batch.map((entry) => this.hashOrFail(entry, identify(entry))));
    const unsure = await this.check(ready(batch), current);
    if (unsure.length === 0) return;
    // A file of the same size is in the library: hash these in full before sending a byte.
    await Promise.all(unsure.map((entry) => this.hashOrFail(entry, "sha256")));
    await this.check(ready(unsure), current);
  }

  /**
   * One bulk duplicate check: duplicates are marked, new files start uploading. Returns
   * the files known only by a fingerprint that some file of the user's might match.
   */
  async check(entries, current) {
    if (entries.length === 0) return [];
    for (const entry of entries) entry.moveTo("checking");
    let results;
    try {
      results = await checkFiles(
        this.api,
        entries.map(({ sha256, fingerprint, file }) => ({ sha256, fingerprint, size: file.size })),
      );
    } catch (error) {
      for (const entry of entries) {
        if (current(entry) && entry.stage === "checking") entry.fail(error);
      }
      return [];
    }
    const unsure = [];
    entries.forEach((entry, i) => {
      if (!current(entry) || entry.stage !== "checking") return;
      const result = results[i];
      if (result.duplicate) {
        entry.finish({ stage: "duplicate", match: result.file ?? null });
      } else if (result.needs_sha256) {
        entry.moveTo("queued");
        unsure.push(entry);
      } else {
        entry.session = this.createSession(entry, { singlePass: !entry.sha256 });
        this.upload(entry, entry.controller.signal);
      }
    });
    return unsure;
  }

  /** A retry: hash if needed, then upload (creating the upload reports duplicates too). */
  async runOne(entry) {
    const signal = entry.controller.signal;
    if (!entry.sha256 && !entry.session?.singlePass) {
      if (!(await this.hashOrFail(entry, "sha256"))) return;
    }
    entry.session ??= this.createSession(entry, { singlePass: false });
    await this.upload(entry, signal);
  }

  /** The file's upload session; singlePass: created without its SHA-256 (see top). */
  createSession(entry, { singlePass }) {
    const { api, hashPool, partsInFlight } = this;
    const { file, contentType } = entry;
    return new UploadSession({ api, hashPool, partsInFlight, file, contentType, singlePass });
  }

  /**
   * Hash the file in full ("sha256") or its fingerprint into the entry, in the hash pool.
   * @returns {Promise<string>} the digest
   * @throws {Cancelled|Error} cancelled, or why the file could not be hashed
   */
  async hash(entry, signal, kind) {
    const { file } = entry;
    if (file.size === 0) throw new UploadFailure("This file is empty.", { retryable: false });
    const full = kind === "sha256";
    const { sha256 } = await this.hashPool.hash(full ? file : fingerprintOf(file), {
      signal,
      onStart: () => entry.moveTo("hashing"),
      onProgress: full ? (bytes) => entry.progress.update({ hashedBytes: bytes }) : undefined,
    });
    throwIfCancelled(signal);
    entry[kind] = sha256;
    if (full) entry.progress.update({ hashedBytes: file.size });
    entry.progress.restartSpeed();
    entry.moveTo("queued");
    return sha256;
  }

  /** hash(), showing a failure on the file's row; returns whether it succeeded. */
  async hashOrFail(entry, kind) {
    const signal = entry.controller.signal;
    try {
      await this.hash(entry, signal, kind);
      return true;
    } catch (error) {
      if (!signal.aborted) entry.fail(error);
      return false;
    }
  }

  /** Wait for an upload slot, then run the file's upload session. */
  async upload(entry, signal) {
    entry.moveTo("queued");
    const content = entry.sha256 ?? `${entry.fingerprint}/${entry.file.size}`;
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
      const result = await entry.session.run(
        { sha256: entry.sha256, fingerprint: entry.fingerprint },
        this.sessionHooks(entry, signal),
      );
      if (!signal.aborted) this.finish(entry, result);
    } catch (error) {
      if (!signal.aborted) entry.fail(error);
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

  /** What the file's session may ask; a cancelled run still unwinding is not listened to. */
  sessionHooks(entry, signal) {
    return {
      signal,
      stage: (stage, uploadedBytes) => {
        if (!signal.aborted) entry.moveTo(stage, uploadedBytes);
      },
      created: () => entry.progress.restartSpeed(),
      progress: (counts) => entry.progress.update(counts),
      hash: () => this.hash(entry, signal, "sha256"),
      hashed: (sha256) => {
        entry.sha256 = sha256;
        entry.progress.update({ hashedBytes: entry.file.size });
      },
    };
  }

  /** A session's result; a new file in the library refreshes the page's list. */
  finish(entry, result) {
    entry.finish(result);
    if (result.stage === "done") {
      this.notifyTarget?.dispatchEvent(new CustomEvent("files-changed", { bubbles: true }));
    }
  }
}
