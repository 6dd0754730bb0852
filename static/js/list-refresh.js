// The library list's refresh after an upload waits while a row is being renamed, or while
// a click on a row (Rename, Save, Delete) waits for its answer: swapping the list in would
// take the open form, and what was typed in it, away, or leave the answer no row to land
// in. The refresh owed is sent once the list is left alone (saved, cancelled, answered).

const BUSY = "#file-list .file-row.editing, #file-list button.htmx-request, #file-list form.htmx-request";

/** Hold the refreshes `wrapper` (the element with hx-trigger="files-changed") asks for. */
export function deferRefreshWhileRenaming(wrapper) {
  let owed = null;
  wrapper.addEventListener("htmx:confirm", (event) => {
    if (event.detail.elt !== wrapper || !document.querySelector(BUSY)) return;
    event.preventDefault();
    owed = event.detail.issueRequest; // the latest one stands for all: it lists everything
  });
  const sendOwed = () => {
    if (owed === null || document.querySelector(BUSY)) return;
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
