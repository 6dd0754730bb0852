// Human-readable sizes, speeds and durations. Sizes are 1,000-based with one decimal, as
// file managers show them and as the server's `filesize` template filter writes them.

const UNITS = ["KB", "MB", "GB", "TB"];

/**
 * @param {number} bytes
 * @returns {string} e.g. "1.4 GB", "820.0 MB", "12 bytes", "1 byte"
 */
export function formatBytes(bytes) {
  if (bytes < 1000) return `${Math.round(bytes)} ${bytes === 1 ? "byte" : "bytes"}`;
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/**
 * @param {number} bytesPerSecond
 * @returns {string} e.g. "38.2 MB/s", or "" when unknown
 */
export function formatSpeed(bytesPerSecond) {
  return bytesPerSecond > 0 ? `${formatBytes(bytesPerSecond)}/s` : "";
}

/**
 * @param {number|null} seconds
 * @returns {string} e.g. "less than 5 s", "45 s", "3 min", "1 h 05 min", or "" when unknown
 */
export function formatDuration(seconds) {
  if (seconds == null || !Number.isFinite(seconds)) return "";
  if (seconds < 5) return "less than 5 s";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/**
 * @param {number} done
 * @param {number} total
 * @returns {number} whole percent, 0–100 (100 for an empty total)
 */
export function percent(done, total) {
  if (total <= 0) return 100;
  return Math.min(100, Math.floor((done / total) * 100));
}
