// The upload panel's list of files that folders held but that were not queued, each with
// the reason ("Trip/notes.txt: not a video"), folded under a count. The markup (created
// before the upload rows when the page has none):
//   <details class="upload-skipped" data-upload-skipped hidden><summary></summary><ul></ul></details>

import { appendNew } from "./dom.js";

export class SkippedList {
  /**
   * @param {HTMLDetailsElement|null} details the page's [data-upload-skipped], if any
   * @param {HTMLElement} before the element to put a created list before (the upload rows)
   */
  constructor(details, before) {
    if (!details) {
      details = document.createElement("details");
      details.className = "upload-skipped";
      details.dataset.uploadSkipped = "";
      details.hidden = true;
      appendNew(details, "summary");
      appendNew(details, "ul");
      before.before(details);
    }
    this.details = details;
    this.items = details.querySelector("ul");
    this.summary = details.querySelector("summary");
  }

  /** @param {{path: string, reason: string}[]} skipped lines to add */
  add(skipped) {
    for (const { path, reason } of skipped) appendNew(this.items, "li", "", `${path}: ${reason}`);
    this.update();
  }

  /** Empty the list (with "Clear finished"). */
  clear() {
    this.items.replaceChildren();
    this.update();
  }

  update() {
    const count = this.items.childElementCount;
    this.summary.textContent = `Skipped in folders: ${count}`;
    this.details.hidden = count === 0;
  }
}
