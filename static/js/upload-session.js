// One file's trip to the storage: create the upload on the server, send the bytes (one
// form POST or PUT, or parts: multipart.js), complete it. The queue decides when a file goes; the
// session does the going. It reports stages and bytes through the hooks it is given and
// returns how the upload ended, leaving the queue's records to the queue. Between tries it
// keeps what a retry needs (the server's pending upload, a complete still to be accepted),
// so Retry resumes instead of starting over.

import { ApiError } from "./api.js";
import { Cancelled } from "./cancel.js";
import { confirmDigest, planParts, sendParts, sendPartsWhileHashing } from "./multipart.js";
import { ByteProgress } from "./progress.js";
import { isRetryableStatus, sendWithRetries } from "./retry.js";
import { sendXhr } from "./transfer.js";

/** A failure to show on the file's row; `retryable` is false when trying again cannot help. */
export class UploadFailure extends Error {
  constructor(message, { retryable = true } = {}) {
    super(message);
    this.name = "UploadFailure";
    this.retryable = retryable;
  }
}

/** The result of a run whose content is in the library already, as `match`. */
const duplicateOf = (match) => ({ stage: "duplicate", match: match ?? null });

/**
 * Thrown wherever a run learns that its content is in the library already (creating the
 * upload, renewing an expired form policy); run() returns it as its result.
 */
class FoundDuplicate extends Error {
  constructor(match) {
    super("Already in the library.");
    this.result = duplicateOf(match);
  }
}

/**
 * @typedef {object} SessionHooks what a session may ask of the queue
 * @property {AbortSignal} signal the file's Cancel
 * @property {(stage: string, uploadedBytes?: number) => void} stage the file moved on
 *   (uploadedBytes: already stored when uploading starts)
 * @property {() => void} created the server created (or handed back) the upload
 * @property {(counts: {hashedBytes?: number, uploadedBytes?: number}) => void} progress
 * @property {() => Promise<string>} hash hash the whole file now, shown as such; its SHA-256
 * @property {(sha256: string) => void} hashed the SHA-256 computed while the parts went out
 */

/**
 * @typedef {{stage: "done", file: object} | {stage: "duplicate", match: object|null}}
 *   SessionResult how a run ended: the library's file, or the one it duplicates
 */

export class UploadSession {
  /**
   * @param {object} options
   * @param {object} options.api the JSON API client (api.js)
   * @param {import("./hash-pool.js").HashPool} options.hashPool hashes while parts are sent
   * @param {number} options.partsInFlight
   * @param {File} options.file
   * @param {string} options.contentType
   * @param {boolean} options.singlePass create the upload without the SHA-256 and hash the
   *   file while it is sent; the SHA-256 then goes with complete
   */
  constructor({ api, hashPool, partsInFlight, file, contentType, singlePass }) {
    this.api = api;
    this.hashPool = hashPool;
    this.partsInFlight = partsInFlight;
    this.file = file;
    this.contentType = contentType;
    this.singlePass = singlePass;
    this.method = null; // "post", "put" or "multipart", as the server chose
    this.upload = null; // the server's pending upload, while there is one
    this.pendingComplete = null; // {id, body}: every byte is stored, complete still to succeed
  }

  /**
   * One try: create the upload, send what the storage lacks, complete.
   * @param {{sha256: string|null, fingerprint: string|null}} content what is known of the bytes
   * @param {SessionHooks} hooks
   * @returns {Promise<SessionResult>}
   * @throws {Cancelled} after hooks.signal aborted; anything else is a failure to show
   */
  async run(content, hooks) {
    try {
      // Bytes all sent but complete failed (5xx, 409, no answer): a retry only completes again,
      // unless the server has forgotten the upload meanwhile (removed once expired, or
      // cancelled from another tab, never recorded): then the file is sent again.
      if (this.pendingComplete) {
        try {
          return await this.complete(hooks);
        } catch (error) {
          if (!(error instanceof ApiError && error.status === 404)) throw error;
        }
      }
      const body = await this.send(content, hooks);
      if (hooks.signal.aborted) throw new Cancelled();
      this.pendingComplete = { id: this.upload.id, body };
      return await this.complete(hooks);
    } catch (error) {
      if (error instanceof FoundDuplicate) return error.result;
      throw error;
    }
  }

  /** The file was cancelled: drop its pending upload on the server (fire and forget). */
  abandon() {
    const upload = this.upload;
    this.upload = null;
    if (upload) {
      this.api.del(`/uploads/${upload.id}`).catch((error) => {
        console.warn(`Could not cancel upload ${upload.id}: ${error.message}`);
      });
    }
  }

  /** Create the upload and send the bytes; returns the body for complete. */
  async send(content, hooks) {
    const { signal } = hooks;
    hooks.stage("checking");
    let created;
    try {
      created = await this.create(content, signal);
    } catch (error) {
      // Refused (409) when a file of the same size and fingerprint arrived meanwhile:
      // hash this one in full and create it again, so a duplicate is still caught.
      if (!(this.singlePass && error instanceof ApiError && error.status === 409)) throw error;
      this.singlePass = false;
      content = { ...content, sha256: await hooks.hash() };
      hooks.stage("checking");
      created = await this.create(content, signal);
    }
    const { upload, resumed } = created;
    this.upload = upload;
    this.method = upload.method;
    hooks.created();

    if (upload.method === "post" || upload.method === "put") {
      // Not expected (the page hashes while uploading only multipart-sized files), but a
      // file sent whole is the File itself: hash it first, then send it.
      let { sha256 } = content;
      if (this.singlePass && !sha256) sha256 = await hooks.hash();
      hooks.stage("uploading");
      await this.sendWhole(content, hooks);
      return this.singlePass ? { sha256 } : {};
    }
    if (upload.method === "multipart") {
      const { api, file } = this;
      const plan = await planParts({ api, upload, size: file.size, resumed, signal });
      hooks.stage("uploading", plan.progress.value());
      const parts = {
        api,
        file,
        upload,
        plan,
        partsInFlight: this.partsInFlight,
        signal,
        onProgress: (bytes) => hooks.progress({ uploadedBytes: bytes }),
      };
      // Complete is sent without the part list: the server takes it from the store and
      // checks every part's size, so the request stays small however big the file.
      const checksums = upload.checksum === "sha256";
      if (!this.singlePass && !checksums) {
        await sendParts(parts);
        return {};
      }
      const sha256 = await sendPartsWhileHashing({
        ...parts,
        hashPool: this.hashPool,
        wholeFile: this.singlePass,
        checksums,
        onHashProgress: (bytes) => hooks.progress({ hashedBytes: bytes }),
      });
      if (!this.singlePass) return {};
      hooks.hashed(sha256);
      return { sha256 };
    }
    throw new UploadFailure(`The server asked for an unknown upload method "${upload.method}".`);
  }

  /**
   * POST /api/uploads: {upload, resumed}; throws FoundDuplicate. Not aborted by a cancel,
   * so that an upload the server created meanwhile is known and can be deleted.
   */
  async create({ sha256, fingerprint }, signal) {
    const { status, data } = await this.api.post("/uploads", {
      name: this.file.name,
      size: this.file.size,
      // Without sha256 the server plans an upload to be hashed while it is sent.
      sha256: this.singlePass ? undefined : sha256,
      fingerprint: fingerprint ?? undefined,
      content_type: this.contentType,
    });
    if (signal.aborted) {
      if (data?.upload) this.api.del(`/uploads/${data.upload.id}`).catch(() => {});
      throw new Cancelled();
    }
    if (data?.duplicate) throw new FoundDuplicate(data.file);
    // 200 with an upload: one was already pending for this content, so resume it.
    return { upload: data.upload, resumed: status === 200 };
  }

  /**
   * One form POST (fields first, the file last) or one PUT (with the headers its URL was
   * signed with: type and checksum), retried like a part.
   */
  async sendWhole(content, hooks) {
    const { signal } = hooks;
    const { file } = this;
    const progress = new ByteProgress(file.size);
    await sendWithRetries(signal, {
      send: () =>
        sendXhr({
          ...this.wholeRequest(),
          signal,
          // A form is a little larger than the file (fields, boundaries): scale it.
          onProgress: (loaded, total) => {
            progress.report("whole", total ? (loaded / total) * file.size : 0);
            hooks.progress({ uploadedBytes: progress.value() });
          },
        }),
      reset: () => progress.report("whole", 0),
      // An expired policy or URL: creating the upload again hands out fresh ones.
      renew: async () => {
        ({ upload: this.upload } = await this.create(content, signal));
      },
      // The store checks a PUT against the hash its URL signs (known: not singlePass).
      badDigest: content.sha256
        ? () => confirmDigest(file, "The file", content.sha256, signal)
        : undefined,
    });
    progress.confirm("whole", file.size);
    hooks.progress({ uploadedBytes: progress.value() });
  }

  /** The request that sends the whole file, as the upload (maybe renewed) says. */
  wholeRequest() {
    const { upload, file } = this;
    if (upload.method === "put") {
      return { method: "PUT", url: upload.put.url, headers: upload.put.headers, body: file };
    }
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.post.fields)) form.append(name, value);
    form.append("file", file);
    return { method: "POST", url: upload.post.url, body: form };
  }

  /** Ask the server to record the stored bytes as a file of the library. */
  async complete(hooks) {
    hooks.stage("finishing");
    const { id, body } = this.pendingComplete;
    let data;
    try {
      ({ data } = await this.api.post(`/uploads/${id}/complete`, body));
    } catch (error) {
      // Every byte is stored: unless the app answered that it never will record them (a
      // mismatch, a cancelled upload), Retry only completes again. A proxy that gave up
      // waiting (502, 504) or a dropped connection (0) may have left the app finishing it.
      if (!(error instanceof ApiError && (error.status === 0 || isRetryableStatus(error.status)))) {
        this.pendingComplete = null;
      } else if (error.status === 502 || error.status === 504) {
        throw new ApiError(
          "The server took too long to answer: it may still be adding this file. " +
            "Retry in a moment to see it through.",
          error.status,
        );
      }
      throw error;
    }
    this.pendingComplete = null;
    this.upload = null;
    // Also when the answer is a duplicate: the file is in the library now, recorded by an
    // earlier try whose answer was lost (a proxy gave up waiting) or by another tab sending
    // the same bytes at once. "Nothing was uploaded" would be untrue, and the list may not
    // show it yet.
    return { stage: "done", file: data.file };
  }
}
