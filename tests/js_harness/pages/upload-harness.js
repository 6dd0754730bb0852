// Records what the upload panel reports, for the Playwright checks.
const panel = document.querySelector("[data-upload-panel]");
const log = (window.uploadLog = { events: [], filesChanged: 0, backwards: [] });
const last = new Map();

for (const type of ["file-added", "file-stage", "file-progress", "file-removed"]) {
  panel.addEventListener(type, (event) => {
    const s = event.detail;
    log.events.push({
      type,
      id: s.id,
      name: s.name,
      stage: s.stage,
      up: s.uploadedBytes,
      hashed: s.hashedBytes,
    });
    const prev = last.get(s.id);
    if (
      prev &&
      (s.uploadedBytes < prev.up || s.hashedBytes < prev.hashed) &&
      s.stage === prev.stage
    ) {
      log.backwards.push({ id: s.id, from: prev, to: s.uploadedBytes });
    }
    last.set(s.id, { up: s.uploadedBytes, hashed: s.hashedBytes, stage: s.stage });
  });
}
document.body.addEventListener("files-changed", () => (log.filesChanged += 1));

/** Stage of each row, by file name. */
window.rowStages = () =>
  Object.fromEntries(
    [...document.querySelectorAll(".upload-row")].map((row) => [
      row.querySelector(".upload-name").textContent,
      row.dataset.stage,
    ]),
  );
window.harnessReady = true;
