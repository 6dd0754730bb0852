// The movie page's player: decides up front whether this browser can play the movie, and
// says so in plain words instead of showing a blank player.
//
// Markup contract (templates/library/movie.html):
//   [data-player]                  data-playback-type: MIME type with codecs, absent when
//                                  the movie's streams are not known (not yet analysed, or
//                                  the analysis failed); data-playback-parts: JSON list of
//                                  {type, name}, the container and each codec alone
//     video                        the player (`<video src>` pointing at the stream route)
//     [data-cannot-play]           hidden box shown instead of the player
//       [data-cannot-play-reason]  filled with the reason
//     [data-player-tools]          hidden with the player (the frame picker lives there)

import { mediaErrorMessage, verdict } from "./playback.js";

/**
 * Wire the player in `root`.
 * @param {HTMLElement} root the [data-player] element
 * @returns {{plays: boolean|null, message: string}} the verdict (null: not known up front)
 */
export function initPlayer(root) {
  const video = root.querySelector("video");
  const type = root.dataset.playbackType;
  if (type) {
    const answer = verdict(type, parseParts(root.dataset.playbackParts));
    if (!answer.plays) {
      showCannotPlay(root, video, answer.message);
      return { plays: false, message: answer.message };
    }
  }
  // Known to play, or not known: keep the player, and should it fail, say so all the same.
  const failed = () => showCannotPlay(root, video, mediaErrorMessage(video.error));
  video.addEventListener("error", failed);
  if (video.error) failed(); // it failed before this module ran
  return { plays: type ? true : null, message: "" };
}

/** Swap the player for the explanation, the download and the stream URL. */
function showCannotPlay(root, video, message) {
  // Stop the element fetching a file it will not play.
  video.removeAttribute("src");
  video.load();
  video.hidden = true;
  const tools = root.querySelector("[data-player-tools]");
  if (tools) tools.hidden = true;
  const box = root.querySelector("[data-cannot-play]");
  box.querySelector("[data-cannot-play-reason]").textContent = message;
  box.hidden = false;
  root.dataset.plays = "no";
}

/** The parts the server listed, or none if the attribute is missing or malformed. */
function parseParts(json) {
  try {
    const parts = JSON.parse(json ?? "[]");
    return Array.isArray(parts) ? parts : [];
  } catch {
    return [];
  }
}
