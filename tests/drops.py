"""Drops made in the page: a file, and folders, as the drop listener receives them.

Each is the source of a JavaScript function, shared by the Chromium suite (Playwright's
`page.evaluate(source, arg)`) and the cross-engine lanes (`tests.engines.support.call`),
so every engine is handed the very same drop.
"""

from __future__ import annotations

# Drags a 300 KiB file made in the page over <main> and drops it; whether the overlay
# showed while dragging, and the file's bytes.
DROP_FILE = """() => {
  const bytes = new Uint8Array(300 * 1024).map((_, i) => (i * 7919) % 251);
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], "dropped clip.mp4", { type: "video/mp4" }));
  const fire = (type) => document.querySelector("main").dispatchEvent(
    new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
  fire("dragenter");
  fire("dragover");
  const overlay = !document.querySelector(".drop-overlay").hidden;
  fire("drop");
  return { overlay, bytes: Array.from(bytes) };
}"""

# Drops a tree of folders ({name: subtree or kind}) on <main>; whether the page took the
# drop. Entries as Chromium hands them to a drop listener (FileSystemDirectoryEntry's
# reader answers in batches until an empty one), built from File objects: a page cannot
# make real entries, so these stand in for them with the same interface. A leaf's kind:
# "video", "srt", any other word (a small file of that name), "unreadable file" or
# "unreadable folder".
DROP_FOLDERS = """(tree) => {
  const BATCH = 2;  // Chromium answers 100 at a time; 2 makes every folder need several
  const fileEntry = (path, file) => ({
    isFile: true, isDirectory: false, name: file.name, fullPath: path,
    file: (resolve) => setTimeout(() => resolve(file), 0),
  });
  const dirEntry = (path, children) => ({
    isFile: false, isDirectory: true, name: path.split("/").pop(), fullPath: path,
    createReader() {
      let next = 0;
      return { readEntries: (resolve) => setTimeout(() => {
        resolve(children.slice(next, next + BATCH));
        next += BATCH;
      }, 0) };
    },
  });
  const build = (path, node) => {
    const failing = (resolve, reject) => setTimeout(() => reject(new DOMException("gone")), 0);
    if (node === "unreadable file") {
      return { ...fileEntry(path, new File([], path.split("/").pop())), file: failing };
    }
    if (node === "unreadable folder") {
      return { ...dirEntry(path, []), createReader: () => ({ readEntries: failing }) };
    }
    if (typeof node === "string") {
      const name = path.split("/").pop();
      const cue = `1\\n00:00:01,000 --> 00:00:02,000\\n${name}\\n`;  // each its own bytes
      const bytes = new Uint8Array(150000).map((_, i) => (i * 31 + name.length) % 251);
      const type = name.endsWith(".mp4") ? "video/mp4" : "";
      return fileEntry(path, new File([node === "srt" ? cue : bytes], name, { type }));
    }
    const children = Object.entries(node).map(([name, child]) => build(`${path}/${name}`, child));
    return dirEntry(path, children);
  };
  const roots = Object.entries(tree).map(([name, node]) => build(`/${name}`, node));
  const transfer = {
    types: ["Files"], files: [],
    items: roots.map((entry) => ({ kind: "file", webkitGetAsEntry: () => entry })),
  };
  const drop = new Event("drop", { bubbles: true, cancelable: true });
  Object.defineProperty(drop, "dataTransfer", { value: transfer });
  document.querySelector("main").dispatchEvent(drop);
  return drop.defaultPrevented;
}"""
