// Presigned URLs for the parts of one multipart upload, asked for ahead of need. One API
// call signs up to 100 parts: a 10 GiB file in 5 MiB parts would otherwise cost 2,000
// round trips to the app before its bytes could flow.
//
// When the upload's parts carry their SHA-256 (`checksum: "sha256"`), a part's URL signs
// its hash, so it is asked for once that hash is known (PartDigests, filled by the hash
// worker as it reads the file); parts hashed by then go in the same request.

import { abortable } from "./cancel.js";

// The most the server signs in one call (MAX_PART_URLS in uploads.py).
const PART_URL_BATCH = 100;

/** The SHA-256 (hex) of each part, as the hash worker reports them; waited for by number. */
export class PartDigests {
  constructor() {
    this.known = new Map();
    this.waiting = new Map(); // part number → {resolve, reject} of the ones waiting for it
    this.failure = null;
  }

  /** Part `n` has been hashed. */
  resolve(n, sha256) {
    this.known.set(n, sha256);
    for (const waiter of this.waiting.get(n) ?? []) waiter.resolve(sha256);
    this.waiting.delete(n);
  }

  /** Hashing stopped: everyone waiting learns why. */
  fail(error) {
    this.failure = error;
    for (const waiters of this.waiting.values()) for (const waiter of waiters) waiter.reject(error);
    this.waiting.clear();
  }

  has(n) {
    return this.known.has(n);
  }

  /**
   * @param {number} n
   * @param {AbortSignal} [signal]
   * @returns {Promise<string>} part n's SHA-256, once it is known
   */
  get(n, signal) {
    if (this.known.has(n)) return Promise.resolve(this.known.get(n));
    if (this.failure) return Promise.reject(this.failure);
    const known = new Promise((resolve, reject) => {
      if (!this.waiting.has(n)) this.waiting.set(n, []);
      this.waiting.get(n).push({ resolve, reject });
    });
    return signal ? abortable(known, signal) : known;
  }
}

export class PartUrls {
  /**
   * @param {{post: Function}} api the JSON API client (api.js)
   * @param {string} uploadId
   * @param {number[]} partNumbers the parts to be sent, in the order they will be asked for
   * @param {PartDigests|null} [digests] each part's SHA-256, for uploads with checksums
   */
  constructor(api, uploadId, partNumbers, digests = null) {
    this.api = api;
    this.uploadId = uploadId;
    this.order = partNumbers;
    this.digests = digests;
    this.urls = new Map(); // part number → {url, headers}
    // part number → the request that will bring its URL
    this.pending = new Map();
  }

  /**
   * The URL for one part and the headers to send with it; on a miss, this part's and the
   * next unasked ones (whose hashes are known, with checksums) are signed.
   * @param {number} partNumber
   * @param {AbortSignal} signal
   * @returns {Promise<{url: string, headers: Object<string, string>}>}
   */
  async get(partNumber, signal) {
    if (this.urls.has(partNumber)) return this.urls.get(partNumber);
    if (!this.pending.has(partNumber) && this.digests) await this.digests.get(partNumber, signal);
    if (!this.urls.has(partNumber) && !this.pending.has(partNumber)) {
      const ready = (n) => !this.urls.has(n) && !this.pending.has(n) && this.signable(n);
      const start = this.order.indexOf(partNumber);
      const batch = this.order.slice(start).filter(ready).slice(0, PART_URL_BATCH);
      this.request(batch.length ? batch : [partNumber], signal);
    }
    if (this.pending.has(partNumber)) await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  /**
   * A fresh URL for one part whose URL expired (the storage answered 403).
   * @param {number} partNumber
   * @param {AbortSignal} signal
   * @returns {Promise<{url: string, headers: Object<string, string>}>}
   */
  async refresh(partNumber, signal) {
    this.urls.delete(partNumber);
    this.request([partNumber], signal);
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  /** Whether part n's URL can be asked for now (its hash is known, when one is needed). */
  signable(n) {
    return !this.digests || this.digests.has(n);
  }

  request(partNumbers, signal) {
    const body = this.digests
      ? { parts: partNumbers.map((n) => ({ number: n, sha256: this.digests.known.get(n) })) }
      : { part_numbers: partNumbers };
    const request = this.api
      .post(`/uploads/${this.uploadId}/parts`, body, { signal })
      .then(({ data }) => {
        for (const { part_number: n, url, headers } of data.parts) {
          this.urls.set(n, { url, headers: headers ?? {} });
        }
      })
      .finally(() => {
        for (const n of partNumbers) this.pending.delete(n);
      });
    for (const n of partNumbers) this.pending.set(n, request);
    request.catch(() => {}); // the failure reaches whoever awaits the URL
  }
}
