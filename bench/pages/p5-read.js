// P5 diagnosis: read the chosen file by 8 MiB slices in a worker, as read-worker.js does
// (a fresh ArrayBuffer per slice), or with a BYOB stream reader into recycled buffers.
const worker = new Worker("/bench/p5-read-worker.js", { type: "module" });

window.readAll = (mode) =>
  new Promise((resolve, reject) => {
    worker.onmessage = ({ data }) => (data.error ? reject(new Error(data.error)) : resolve(data));
    worker.postMessage({ mode, file: document.getElementById("file").files[0] });
  });

document.getElementById("status").textContent = "ready";
