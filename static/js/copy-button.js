// Buttons that copy a field's text: <button data-copy="field-id" data-copy-report="status-id">
// copies <input id="field-id" readonly>; the optional element status-id (a live region)
// says whether it worked.

/**
 * Copy `text` to the clipboard; falls back to selecting `field` and the old copy command
 * where the Clipboard API is missing (plain-http LAN addresses are not secure contexts).
 * @param {string} text
 * @param {HTMLInputElement} field
 * @returns {Promise<boolean>} whether the text was copied
 */
export async function copyText(text, field) {
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Refused (no permission): try the fallback below.
    }
  }
  field.focus();
  field.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

/** Handle clicks on every copy button of the page. */
export function initCopyButtons() {
  document.addEventListener("click", async (event) => {
    const button = event.target.closest?.("button[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    if (!field) return;
    const copied = await copyText(field.value, field);
    const status = document.getElementById(button.dataset.copyReport ?? "");
    if (status) {
      status.textContent = copied ? "Copied." : "Select the text and copy it (Ctrl+C).";
    }
    if (!copied) field.select();
  });
}
