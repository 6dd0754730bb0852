// What the server is told to decide whether files are new: their SHA-256, or for files to
// be hashed while they upload a fingerprint (the hash of the first and last MiB), each
// with its size; and the bulk check that answers for a whole batch at once, as Immich's
// bulk-upload-check does, instead of one request per file.

const MiB = 1024 * 1024;
// Files per request: the most the server accepts (MAX_CHECK in library.py).
const CHECK_BATCH = 1000;

/**
 * The bytes a fingerprint is the hash of: the file's first MiB followed by its last MiB
 * (all of it up to 2 MiB). The server compares it with the files of the same size.
 * @param {Blob} file
 * @returns {Blob}
 */
export function fingerprintOf(file) {
  return new Blob([file.slice(0, MiB), file.slice(Math.max(MiB, file.size - MiB))]);
}

/**
 * Ask which files are already in the user's library.
 * @param {{post: Function}} api the JSON API client (api.js)
 * @param {{sha256: string|null, fingerprint: string|null, size: number}[]} files known by
 *   their SHA-256 when they have one, else by their fingerprint
 * @returns {Promise<{duplicate: boolean, file?: object, needs_sha256?: boolean}[]>} in the
 *   order of `files`; needs_sha256: a file of the same size might match the fingerprint
 */
export async function checkFiles(api, files) {
  const query = files.map(({ sha256, fingerprint, size }) =>
    sha256 ? { sha256, size } : { fingerprint, size },
  );
  const results = [];
  for (let i = 0; i < query.length; i += CHECK_BATCH) {
    const { data } = await api.post("/files/check", { files: query.slice(i, i + CHECK_BATCH) });
    results.push(...data.results);
  }
  return results;
}
