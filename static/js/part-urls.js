// Presigned URLs for the parts of one multipart upload, asked for ahead of need. One API
// call signs up to 100 parts: a 10 GiB file in 5 MiB parts would otherwise cost 2,000
// round trips to the app before its bytes could flow.

// The most the server signs in one call (MAX_PART_URLS in uploads.py).
const PART_URL_BATCH = 100;

export class PartUrls {
  /**
   * @param {{post: Function}} api the JSON API client (api.js)
   * @param {string} uploadId
   * @param {number[]} partNumbers the parts to be sent, in the order they will be asked for
   */
  constructor(api, uploadId, partNumbers) {
    this.api = api;
    this.uploadId = uploadId;
    this.order = partNumbers;
    this.urls = new Map();
    // part number → the request that will bring its URL
    this.pending = new Map();
  }

  /**
   * The URL for one part; on a miss, this part's and the next unasked ones are signed.
   * @param {number} partNumber
   * @param {AbortSignal} signal
   * @returns {Promise<string>}
   */
  async get(partNumber, signal) {
    if (this.urls.has(partNumber)) return this.urls.get(partNumber);
    if (!this.pending.has(partNumber)) {
      const start = this.order.indexOf(partNumber);
      const batch = this.order
        .slice(start)
        .filter((n) => !this.urls.has(n) && !this.pending.has(n))
        .slice(0, PART_URL_BATCH);
      this.request(batch.length ? batch : [partNumber], signal);
    }
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  /**
   * A fresh URL for one part whose URL expired (the storage answered 403).
   * @param {number} partNumber
   * @param {AbortSignal} signal
   * @returns {Promise<string>}
   */
  async refresh(partNumber, signal) {
    this.urls.delete(partNumber);
    this.request([partNumber], signal);
    await this.pending.get(partNumber);
    return this.urls.get(partNumber);
  }

  request(partNumbers, signal) {
    const request = this.api
      .post(`/uploads/${this.uploadId}/parts`, { part_numbers: partNumbers }, { signal })
      .then(({ data }) => {
        for (const { part_number: n, url } of data.parts) this.urls.set(n, url);
      })
      .finally(() => {
        for (const n of partNumbers) this.pending.delete(n);
      });
    for (const n of partNumbers) this.pending.set(n, request);
    request.catch(() => {}); // the failure reaches whoever awaits the URL
  }
}
