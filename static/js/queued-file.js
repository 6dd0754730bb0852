// One file in the upload queue: what is known of its content, the stage it is in (moved
// only as upload-stages.js allows), its progress, how it ended, and the snapshot of all
// that which the page receives. The queue decides what happens to it; this is its record.

import { ApiError } from "./api.js";
import { Cancelled } from "./cancel.js";
import { FileProgress } from "./progress.js";
import { FINAL_STAGES, canCancel, canMove } from "./upload-stages.js";

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

export class QueuedFile {
  /**
   * @param {string} id
   * @param {File} file
   * @param {(type: string, file: QueuedFile) => void} emit tells the page about a change
   */
  constructor(id, file, emit) {
    this.id = id;
    this.file = file;
    this.contentType = contentTypeOf(file);
    this.emit = emit;
    this.stage = "queued";
    // What is known of the content before its upload starts.
    this.sha256 = null;
    this.fingerprint = null;
    // Its upload (upload-session.js), once the duplicate check let it go; kept for Retry.
    this.session = null;
    // Replaced on Retry: a signal tells the current run from one that was cancelled.
    this.controller = new AbortController();
    this.progress = new FileProgress(file.size, () => emit("file-progress", this));
    this.error = null;
    this.retryable = true;
    this.match = null; // the library's file it duplicates
    this.result = null; // the library's file it became
  }

  /** @returns {boolean} whether the queue is done with it */
  get final() {
    return FINAL_STAGES.has(this.stage);
  }

  /**
   * Move to `stage` and tell the page; a move the table does not allow is a bug.
   * @param {string} stage
   * @param {number} [uploadedBytes] already stored when uploading starts (a resume)
   */
  moveTo(stage, uploadedBytes) {
    if (this.stage === stage) return;
    if (!canMove(this.stage, stage)) {
      throw new Error(`Upload ${this.id} cannot go from "${this.stage}" to "${stage}".`);
    }
    this.stage = stage;
    this.progress.setStage(stage, uploadedBytes);
    this.emit("file-stage", this);
  }

  /**
   * Show why it failed; a cancellation is not a failure.
   * @param {unknown} error
   */
  fail(error) {
    if (error instanceof Cancelled || this.stage === "cancelled") return;
    this.error = error?.message || String(error);
    // A request the server rejects as invalid will not get better by sending it again.
    const invalid = error instanceof ApiError && (error.status === 400 || error.status === 413);
    this.retryable = error?.retryable !== false && !invalid;
    if (error instanceof ApiError && error.status === 401) {
      this.error = `${this.error} Log in again, then retry.`;
    }
    this.moveTo("failed");
  }

  /**
   * It is in the library: as a new file, or as the duplicate of `match`.
   * @param {{stage: "done", file: object} | {stage: "duplicate", match: object|null}} result
   */
  finish({ stage, file, match }) {
    if (stage === "duplicate") {
      this.match = match;
    } else {
      this.result = file;
      this.progress.complete();
    }
    this.moveTo(stage);
  }

  /**
   * A plain copy of the file's state, as sent in event details.
   * @returns {{id: string, name: string, size: number, type: string, stage: string,
   *   sha256: string|null, hashedBytes: number, uploadedBytes: number, speed: number,
   *   eta: number|null, error: string|null, retryable: boolean, method: string|null,
   *   match: object|null, file: object|null, cancellable: boolean}}
   *   speed in bytes/s of the current stage (hashing or uploading), eta in seconds;
   *   match is the existing file a duplicate matches; file the created one when done.
   */
  snapshot() {
    const { progress } = this;
    return {
      id: this.id,
      name: this.file.name,
      size: this.file.size,
      type: this.contentType,
      stage: this.stage,
      sha256: this.sha256,
      hashedBytes: progress.hashedBytes,
      uploadedBytes: progress.uploadedBytes,
      speed: progress.speed,
      eta: progress.eta,
      error: this.error,
      retryable: this.retryable,
      method: this.session?.method ?? null,
      match: this.match,
      file: this.result,
      cancellable: canCancel(this.stage),
    };
  }
}

/** The browser's content type, else one guessed from the extension (.mkv is often blank). */
function contentTypeOf(file) {
  if (file.type) return file.type;
  const extension = /\.([^.]+)$/.exec(file.name)?.[1]?.toLowerCase();
  return VIDEO_TYPES[extension] ?? "application/octet-stream";
}
