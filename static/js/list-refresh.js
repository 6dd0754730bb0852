// The library list's refresh after an upload waits while a row is being renamed, or while
// a click on a row (Rename, Save, Delete) waits for its answer: swapping the list in would
// take the open form, and what was typed in it, away, or leave the answer no row to land
// in. The refresh owed is sent once the list is left alone (saved, cancelled, answered).
// A refresh already on its way when a row is clicked is cancelled, and owed the same way.

const BUSY = "#file-list .file-row.editing, #file-list button.htmx-request, #file-list form.htmx-request";
const ROW_ACTION = "#file-list button, #file-list form";

/** Hold the refreshes `wrapper` (the element with hx-trigger="files-changed") asks for. */
export function deferRefreshWhileRenaming(wrapper) {
  let owed = null;
  let clicking = false; // a row's request is starting, not yet marked as under way
  const busy = () => clicking || document.querySelector(BUSY) !== null;
  wrapper.addEventListener("htmx:confirm", (event) => {
    if (event.detail.elt !== wrapper || !busy()) return;
    event.preventDefault();
    owed = event.detail.issueRequest; // the latest one stands for all: it lists everything
  });
  document.body.addEventListener("htmx:beforeRequest", (event) => {
    if (!wrapper.classList.contains("htmx-request") || !event.detail.elt.matches(ROW_ACTION)) {
      return;
    }
    owed = () => document.body.dispatchEvent(new CustomEvent("files-changed"));
    // htmx aborts the request of the element an `htmx:abort` reaches the body from, and
    // at once sends a refresh queued behind it: held, as the click counts as under way.
    clicking = true;
    try {
      wrapper.dispatchEvent(new CustomEvent("htmx:abort", { bubbles: true, detail: {} }));
    } finally {
      clicking = false;
    }
  });
  const sendOwed = () => {
    if (owed === null || busy()) return;
    const refresh = owed;
    owed = null;
    refresh(true);
  };
  document.body.addEventListener("htmx:afterSettle", sendOwed);
  // A click whose request failed brings no swap to wait for. Looked at once htmx is done:
  // a click that cancels another (Rename twice) ends the first before it sends its own.
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (!event.detail.successful) setTimeout(sendOwed, 0);
  });
}
