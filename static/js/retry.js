// When sending bytes to the storage is tried again, as Uppy and tus do it: network errors
// and 5xx answers (also 409, 423, 429) wait 0, 1, 3, then 5 s between tries; a 403 means
// the presigned URL or policy expired, so a fresh one is asked for; any other 4xx will not
// get better by sending again and fails at once. Offline, it waits for the browser's
// `online` event without using up a try: a laptop closing its lid is not an error.

import { Cancelled, abortable, sleep } from "./cancel.js";
import { TransferError, storageErrorMessage } from "./transfer.js";

const RETRY_DELAYS_MS = [0, 1000, 3000, 5000];
// An URL that expires again right after renewal points to a clock or policy problem.
const URL_RENEWALS = 2;

/**
 * Run send() until the storage accepts the bytes.
 * @param {AbortSignal} signal aborting stops at once with Cancelled
 * @param {object} steps
 * @param {() => Promise<XMLHttpRequest>} steps.send one try (see transfer.js sendXhr)
 * @param {() => void} steps.reset the try failed: forget the bytes it had sent
 * @param {() => Promise<void>} steps.renew the URL expired: get a new one for send()
 * @returns {Promise<XMLHttpRequest>} the storage's 2xx answer
 * @throws {TransferError} once retrying is over ("refused" for an error answer)
 */
export async function sendWithRetries(signal, { send, reset, renew }) {
  let retries = 0;
  let renewals = 0;
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
    } else if (isRetryableStatus(xhr.status) && retries < RETRY_DELAYS_MS.length) {
      await sleep(RETRY_DELAYS_MS[retries++], signal);
    } else {
      throw new TransferError("refused", storageErrorMessage(xhr));
    }
  }
}

/** Answers that mean "not now" rather than "never". */
function isRetryableStatus(status) {
  return status >= 500 || status === 409 || status === 423 || status === 429;
}

function waitForOnline(signal) {
  if (navigator.onLine) return Promise.resolve();
  return abortable(
    new Promise((resolve) => window.addEventListener("online", resolve, { once: true })),
    signal,
  );
}
