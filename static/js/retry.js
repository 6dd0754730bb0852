// When sending bytes to the storage is tried again, as Uppy and tus do it: network errors
// and 5xx answers (also 409, 423, 429; not 501, a request the store does not implement)
// wait 0, 1, 3, then 5 s between tries; a 403 means the presigned URL or policy expired,
// so a fresh one is asked for; a 400 BadDigest means the bytes arrived other than they
// were hashed, so they are read and hashed again and, if they still match, sent again;
// any other 4xx will not get better by sending again and fails at once. Offline, it waits
// for the browser's `online` event without using up a try: a laptop closing its lid is
// not an error.

import { Cancelled, abortable, sleep } from "./cancel.js";
import { TransferError, storageErrorCode, storageErrorMessage } from "./transfer.js";

const RETRY_DELAYS_MS = [0, 1000, 3000, 5000];
// An URL that expires again right after renewal points to a clock or policy problem.
const URL_RENEWALS = 2;
// Bytes damaged on the way again and again point to a failing disk, memory or network.
const BAD_DIGEST_RESENDS = 3;

/**
 * Run send() until the storage accepts the bytes.
 * @param {AbortSignal} signal aborting stops at once with Cancelled
 * @param {object} steps
 * @param {() => Promise<XMLHttpRequest>} steps.send one try (see transfer.js sendXhr)
 * @param {() => void} steps.reset the try failed: forget the bytes it had sent
 * @param {() => Promise<void>} steps.renew the URL expired: get a new one for send()
 * @param {() => Promise<void>} [steps.badDigest] the store refused the bytes as not the
 *   ones hashed: read and hash them again, and throw if they differ now (else they are
 *   sent again). Without it a BadDigest fails at once.
 * @returns {Promise<XMLHttpRequest>} the storage's 2xx answer
 * @throws {TransferError} once retrying is over ("refused" for an error answer)
 */
export async function sendWithRetries(signal, { send, reset, renew, badDigest }) {
  let retries = 0;
  let renewals = 0;
  let resends = 0;
  for (;;) {
    if (signal.aborted) throw new Cancelled();
    let xhr;
    try {
      xhr = await send();
    } catch (error) {
      reset();
      if (!(error instanceof TransferError)) throw error; // Cancelled, or a bug
      if (!navigator.onLine) {
        await waitForOnline(signal);
        continue;
      }
      if (retries >= RETRY_DELAYS_MS.length) throw error;
      await sleep(RETRY_DELAYS_MS[retries++], signal);
      continue;
    }
    if (xhr.status >= 200 && xhr.status < 300) return xhr;
    reset();
    if (xhr.status === 403 && renewals < URL_RENEWALS) {
      renewals += 1;
      await renew();
    } else if (
      xhr.status === 400 &&
      badDigest &&
      resends < BAD_DIGEST_RESENDS &&
      storageErrorCode(xhr) === "BadDigest"
    ) {
      resends += 1;
      await badDigest();
    } else if (isRetryableStatus(xhr.status) && retries < RETRY_DELAYS_MS.length) {
      await sleep(RETRY_DELAYS_MS[retries++], signal);
    } else {
      throw new TransferError("refused", storageErrorMessage(xhr));
    }
  }
}

/** Answers that mean "not now" rather than "never". */
export function isRetryableStatus(status) {
  if (status === 501) return false; // Not Implemented: asking again changes nothing
  return status >= 500 || status === 409 || status === 423 || status === 429;
}

function waitForOnline(signal) {
  if (navigator.onLine) return Promise.resolve();
  return abortable(
    new Promise((resolve) => window.addEventListener("online", resolve, { once: true })),
    signal,
  );
}
