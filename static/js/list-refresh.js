// The library list's refresh after an upload waits while a row is being renamed: swapping
// the list in would take the open form, and what was typed in it, away. The refresh owed
// is sent once no row is being edited any more (saved, cancelled).

const EDITING = "#file-list .file-row.editing";

/** Hold the refreshes `wrapper` (the element with hx-trigger="files-changed") asks for. */
export function deferRefreshWhileRenaming(wrapper) {
  let owed = null;
  wrapper.addEventListener("htmx:confirm", (event) => {
    if (event.detail.elt !== wrapper || !document.querySelector(EDITING)) return;
    event.preventDefault();
    owed = event.detail.issueRequest; // the latest one stands for all: it lists everything
  });
  document.body.addEventListener("htmx:afterSettle", () => {
    if (owed === null || document.querySelector(EDITING)) return;
    const refresh = owed;
    owed = null;
    refresh(true);
  });
}
