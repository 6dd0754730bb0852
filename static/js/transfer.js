// Byte transfers to the storage's URLs (S3 or the app's local store) with XMLHttpRequest,
// which, unlike fetch, reports upload progress. Whether and when to try again is retry.js's.

import { Cancelled } from "./cancel.js";

/**
 * A transfer that failed. kind "network" or "stall": no HTTP answer came; "refused": the
 * storage answered with an error (retry.js raises it once retrying is over).
 */
export class TransferError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = "TransferError";
    this.kind = kind;
  }
}

/**
 * Send one request; resolves with the XHR once any HTTP answer arrived (check `status`).
 * @param {object} options
 * @param {string} options.method
 * @param {string} options.url
 * @param {Blob|FormData} options.body streamed by the browser, never read into memory here
 * @param {Object<string, string>} [options.headers] sent as they are: the ones the URL was
 *   signed with (Content-Type, x-amz-checksum-sha256). The browser sets Content-Length
 *   itself, to the body's exact size, which is the size the URL signs.
 * @param {AbortSignal} [options.signal] aborting stops the request and rejects with Cancelled
 * @param {(loaded: number, total: number) => void} [options.onProgress] bytes of the body sent
 * @param {number} [options.stallMs=60000] give up when no byte moved for this long
 * @returns {Promise<XMLHttpRequest>}
 */
export function sendXhr({ method, url, body, headers, signal, onProgress, stallMs = 60_000 }) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new Cancelled());
      return;
    }
    const xhr = new XMLHttpRequest();
    let stallTimer = null;
    const armStall = () => {
      clearTimeout(stallTimer);
      stallTimer = setTimeout(() => settle(() => reject(stalled(url)), true), stallMs);
    };
    const onAbort = () => settle(() => reject(new Cancelled()), true);
    const settle = (outcome, abort = false) => {
      clearTimeout(stallTimer);
      signal?.removeEventListener("abort", onAbort);
      if (abort) xhr.abort();
      outcome();
    };

    xhr.open(method, url);
    for (const [name, value] of Object.entries(headers ?? {})) {
      // Forbidden to scripts (the browser refuses it with a console error): it sends its own.
      if (name.toLowerCase() !== "content-length") xhr.setRequestHeader(name, value);
    }
    xhr.upload.addEventListener("progress", (event) => {
      armStall();
      onProgress?.(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => settle(() => resolve(xhr)));
    xhr.addEventListener("error", () => settle(() => reject(unreachable(url))));
    xhr.addEventListener("timeout", () => settle(() => reject(stalled(url))));
    signal?.addEventListener("abort", onAbort, { once: true });
    armStall();
    xhr.send(body);
  });
}

/**
 * The S3 error code of a storage error answer ("BadDigest", "AccessDenied"...), or "".
 * S3 answers XML (`<Error><Code>..</Code>..</Error>`); the app's local store answers JSON
 * whose message starts with the code it stands for.
 * @param {XMLHttpRequest} xhr
 * @returns {string}
 */
export function storageErrorCode(xhr) {
  const text = xhr.responseText || "";
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  if (code) return code;
  return /^(\w+):/.exec(jsonError(text) ?? "")?.[1] ?? "";
}

/**
 * A readable message for a storage error answer (XML from S3, JSON from the local store).
 * @param {XMLHttpRequest} xhr
 * @returns {string}
 */
export function storageErrorMessage(xhr) {
  const text = xhr.responseText || "";
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  const message = /<Message>([^<]*)<\/Message>/.exec(text)?.[1];
  // 501: the store lacks this kind of request (Cloudflare R2 and Backblaze B2 have no form
  // uploads); only the server's settings can change that.
  const hint =
    xhr.status === 501
      ? " This storage does not support this kind of upload: the server's administrator can set MOVIEVAULT_S3_UPLOAD_METHOD=put."
      : "";
  if (code || message)
    return `The storage refused the upload (${xhr.status} ${code ?? ""}): ${sentence(message)}${hint}`.trim();
  const error = jsonError(text);
  if (error) return `The storage refused the upload (${xhr.status}): ${sentence(error)}${hint}`;
  return `The storage refused the upload (${xhr.status} ${xhr.statusText}).${hint}`;
}

/** `text` ending as a sentence does ("" stays ""). */
function sentence(text) {
  const trimmed = (text ?? "").trim();
  return !trimmed || /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** The `error` of a JSON answer, or null. */
function jsonError(text) {
  try {
    return JSON.parse(text)?.error || null;
  } catch {
    return null; // not JSON either
  }
}

function unreachable(url) {
  // A CORS refusal looks exactly like a network failure from here.
  return new TransferError(
    "network",
    `The storage at ${originOf(url)} could not be reached. If this persists, check the connection, the bucket's CORS rules and the page's connect-src policy.`,
  );
}

function stalled(url) {
  return new TransferError("stall", `The upload to ${originOf(url)} stalled.`);
}

function originOf(url) {
  try {
    return new URL(url, location.href).origin;
  } catch {
    return url;
  }
}
