// Small DOM helpers shared by the upload panel and the drop zone.

/**
 * Create an element, append it to `parent` and return it.
 * @param {Element} parent
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text] set as textContent (never parsed as HTML)
 * @returns {HTMLElement}
 */
export function appendNew(parent, tag, className, text) {
  const element = document.createElement(tag);
  if (className) element.className = className;
  if (text !== undefined) element.textContent = text;
  parent.append(element);
  return element;
}
