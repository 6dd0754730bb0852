// The app's JSON API: same-origin fetch with the CSRF token, errors as ApiError, an
// aborted call as Cancelled.

import { Cancelled } from "./cancel.js";

/** An API call that failed; `message` is the server's `{"error": ...}` text when it sent one. */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

/** The CSRF token the server put in `<meta name="csrf-token">` (read on every call). */
export function csrfTokenFromMeta() {
  return document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") ?? "";
}

/**
 * A client for the JSON API under `base`.
 * @param {object} [options]
 * @param {string} [options.base="/api"] URL prefix of the API
 * @param {() => string} [options.csrfToken] returns the token sent as X-CSRFToken
 * @returns {{request: Function, get: Function, post: Function, del: Function}}
 */
export function createApi({ base = "/api", csrfToken = csrfTokenFromMeta } = {}) {
  const prefix = base.replace(/\/+$/, "");

  /**
   * One API call.
   * @param {string} method
   * @param {string} path starting with "/", relative to the API base
   * @param {object} [body] sent as JSON
   * @param {{signal?: AbortSignal}} [options] aborting rejects with Cancelled
   * @returns {Promise<{status: number, data: any}>}
   */
  async function request(method, path, body, { signal } = {}) {
    let response;
    try {
      response = await fetch(prefix + path, {
        method,
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error?.name === "AbortError") throw new Cancelled();
      throw new ApiError("The server could not be reached. Check the connection and retry.", 0);
    }
    // The signal also covers reading the body.
    const data = await readJson(response).catch((error) => {
      throw error?.name === "AbortError" ? new Cancelled() : error;
    });
    if (!response.ok) {
      throw new ApiError(
        data?.error || `The server answered ${response.status} ${response.statusText}.`,
        response.status,
      );
    }
    return { status: response.status, data };
  }

  return {
    request,
    get: (path, options) => request("GET", path, undefined, options),
    post: (path, body, options) => request("POST", path, body ?? {}, options),
    del: (path, options) => request("DELETE", path, undefined, options),
  };
}

/** The JSON body, or null for an empty or non-JSON one (a proxy's HTML error page). */
async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
