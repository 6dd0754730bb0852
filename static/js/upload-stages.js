// The stages of a file in the upload queue and the moves allowed between them. The queue
// refuses any move this table does not list, so the table is the whole life of a file:
// read it to know what can happen next. The upload panel asks it too (which buttons to
// show), rather than keeping its own lists.
//
//   queued     waiting for a hash worker, a duplicate check or an upload slot
//   hashing    its SHA-256 (or only its fingerprint) is being computed
//   checking   the server is asked whether it is new, or the upload is being created
//   uploading  bytes are going to the storage (big files are hashed alongside)
//   finishing  the server is recording it; too late to cancel
//   done, duplicate, failed, cancelled   final: the queue does nothing more on its own

/** For each stage, the stages it may move to. */
export const TRANSITIONS = Object.freeze({
  queued: ["hashing", "checking", "uploading", "finishing", "failed", "cancelled"],
  hashing: ["queued", "failed", "cancelled"],
  // → hashing: a file hashed while uploading is hashed in full first when its
  // fingerprint's twin arrived meanwhile; → queued: it waits for a full hash or a slot.
  checking: ["queued", "hashing", "uploading", "duplicate", "failed", "cancelled"],
  // → duplicate: an expired form policy was renewed and the content had arrived meanwhile.
  uploading: ["finishing", "duplicate", "failed", "cancelled"],
  // → checking: Retry of a complete the server answered 404 (it forgot the upload): the
  // file is sent again.
  finishing: ["checking", "done", "duplicate", "failed"],
  done: [],
  duplicate: [],
  // → queued: Retry.
  failed: ["queued"],
  cancelled: ["queued"],
});

/** Every stage, in the order of a normal life. */
export const STAGES = Object.keys(TRANSITIONS);

/** Stages the queue leaves alone: a file in one can be dismissed from the list. */
export const FINAL_STAGES = new Set(["done", "duplicate", "failed", "cancelled"]);

/**
 * @param {string} from
 * @param {string} to
 * @returns {boolean} whether the table allows the move
 */
export function canMove(from, to) {
  return TRANSITIONS[from]?.includes(to) ?? false;
}

/**
 * @param {string} stage
 * @returns {boolean} whether the file can be cancelled in this stage
 */
export function canCancel(stage) {
  return canMove(stage, "cancelled");
}

/**
 * @param {string} stage
 * @returns {boolean} whether Retry applies (the file may still refuse: an empty file, say)
 */
export function canRetry(stage) {
  return FINAL_STAGES.has(stage) && canMove(stage, "queued");
}
