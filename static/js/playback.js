// "Will this browser play it?" from the MIME type and RFC 6381 codecs the server derived
// from the movie's probed streams, e.g. `video/mp4; codecs="avc1.640028, mp4a.40.2"`.
//
// The player is a plain `<video src>`: progressive playback, for which
// `HTMLMediaElement.canPlayType` is the question. `MediaSource.isTypeSupported` answers for
// MSE players, a different one (it says no to Matroska, which `<video>` plays in Chromium),
// so it is not asked here.

/**
 * The codec strings listed in a type's `codecs` parameter.
 * @param {string} type e.g. `video/mp4; codecs="avc1.640028, mp4a.40.2"`
 * @returns {string[]} e.g. ["avc1.640028", "mp4a.40.2"]; [] when there is none
 */
export function codecsOf(type) {
  const match = /;\s*codecs\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(type);
  const list = match ? (match[1] ?? match[2] ?? "") : "";
  return list
    .split(",")
    .map((codec) => codec.trim())
    .filter(Boolean);
}

/**
 * The MIME type without parameters.
 * @param {string} type
 * @returns {string} e.g. "video/mp4"
 */
export function mimeOf(type) {
  return type.split(";")[0].trim().toLowerCase();
}

/**
 * Whether the browser says it can play `type` in a `<video>` ("probably" or "maybe").
 * @param {string} type
 * @param {{canPlayType: (type: string) => string}} [media] a media element to ask
 * @returns {boolean}
 */
export function canPlay(type, media = document.createElement("video")) {
  return media.canPlayType(type) !== "";
}

/**
 * Whether this browser plays a movie, and if not, why in people's words.
 *
 * `parts` are what the server listed the file needs, each with a type of its own: the
 * container (a type without codecs, e.g. "video/x-matroska", named "Matroska (MKV) files"),
 * the video codec and the first audio stream's codec (e.g. `video/mp4; codecs="ac-3"`,
 * named "AC-3 (Dolby Digital) audio"). When the whole type is refused, each part is asked
 * alone so the answer names the culprit: the container if it is refused (Firefox refuses
 * Matroska whatever it holds), else every codec that is.
 *
 * @param {string} type the MIME type with all its codecs
 * @param {{type: string, name: string}[]} [parts]
 * @param {{canPlayType: (type: string) => string}} [media] a media element to ask
 * @returns {{plays: boolean, culprits: string[], message: string}}
 */
export function verdict(type, parts = [], media = document.createElement("video")) {
  if (canPlay(type, media)) return { plays: true, culprits: [], message: "" };
  const refused = parts.filter((part) => !canPlay(part.type, media));
  const container = refused.find((part) => codecsOf(part.type).length === 0);
  if (container) {
    return {
      plays: false,
      culprits: [container.name],
      message: `This browser can't play ${container.name}.`,
    };
  }
  const culprits = refused.map((part) => part.name);
  if (culprits.length === 0) {
    return { plays: false, culprits, message: "This browser can't play this file." };
  }
  return { plays: false, culprits, message: `This browser can't decode ${joinWords(culprits)}.` };
}

/**
 * Words joined as a sentence lists them: "a", "a or b", "a, b or c".
 * @param {string[]} words
 * @returns {string}
 */
export function joinWords(words) {
  if (words.length <= 1) return words.join("");
  return `${words.slice(0, -1).join(", ")} or ${words[words.length - 1]}`;
}

/**
 * What to tell a person when the `<video>` itself failed (the metadata was unknown).
 * @param {MediaError|null} error
 * @returns {string}
 */
export function mediaErrorMessage(error) {
  switch (error?.code) {
    case 2: // MEDIA_ERR_NETWORK
      return "The movie stopped loading: the connection to the storage failed.";
    case 3: // MEDIA_ERR_DECODE
      return "This browser could not decode this movie.";
    default: // MEDIA_ERR_SRC_NOT_SUPPORTED, or an error without a code
      return "This browser can't play this file.";
  }
}
