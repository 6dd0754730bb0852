// Experimental: reads slices and transfers them to whoever asked (through a port).
self.onmessage = (e) => {
  const { file, sliceSize, readAhead, port } = e.data;
  let next = 0;
  let inFlight = 0;
  let credits = e.data.window ?? 4;
  const pump = () => {
    while (inFlight < readAhead && credits > 0 && next < file.size) {
      const off = next;
      next += sliceSize;
      inFlight += 1;
      credits -= 1;
      file.slice(off, off + sliceSize).arrayBuffer().then((buf) => {
        inFlight -= 1;
        port.postMessage({ off, buf }, [buf]);
        pump();
      });
    }
  };
  port.onmessage = () => { credits += 1; pump(); };
  pump();
};
