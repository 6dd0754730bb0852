"""A poster for a movie: one frame, scaled to at most 640 px wide, as WebP.

`make_poster` looks at a few keyframes (10 %, 25 % and 40 % into the film, or 10, 25 and
40 s when its length is unknown) and keeps the most detailed, so a fade from black or a
title card on black does not become the picture of the film. Seeking to a keyframe and
decoding it alone reads about one keyframe of the file per try. `frame_poster` takes the
exact frame a person chose in the player.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING, BinaryIO

from movievault.errors import ProbeFailed
from movievault.media.probe import open_media, pick_video

if TYPE_CHECKING:  # PyAV is imported where it is used (see media/probe.py)
    import av
    from av.container import InputContainer
    from av.video.stream import VideoStream

#: Where to look, as fractions of the duration (Jellyfin takes 10 %).
FRACTIONS = (0.10, 0.25, 0.40)
#: Where to look when the duration is unknown, in seconds.
SECONDS = (10.0, 25.0, 40.0)
#: Packets to read after a seek before giving up on a frame (decoders hold a few back).
MAX_PACKETS = 48
#: Frames are judged on a small grey copy: detail at this size is what a poster shows.
JUDGE_WIDTH = 160
#: Luma standard deviation (0-255) under which a frame is near-uniform (black, a fade).
UNIFORM = 12.0
#: libwebp's quality (0-100): about 50 KB for a detailed 640×360 frame.
WEBP_QUALITY = 80


def make_poster(
    source: BinaryIO, *, duration: float | None, max_width: int = 640
) -> bytes | None:
    """The WebP poster of the movie in `source`; None when it has no video stream."""
    with open_media(source) as container:
        stream = pick_video(container)
        if stream is None:
            return None
        best: tuple[float, av.VideoFrame] | None = None
        for at in _moments(duration):
            frame = _keyframe_near(container, stream, at)
            if frame is None:
                continue
            score = detail(frame)
            if best is None or score > best[0]:
                best = (score, frame)
        if best is None:  # a film shorter than its keyframe spacing: its first picture
            frame = _keyframe_near(container, stream, 0.0)
            if frame is None:
                raise ProbeFailed("the file is damaged: no picture in it can be decoded")
            best = (detail(frame), frame)
        return encode_webp(best[1], max_width=max_width, aspect=_pixel_aspect(stream))


def frame_poster(source: BinaryIO, *, at: float, max_width: int = 640) -> bytes:
    """The WebP of the frame shown at `at` seconds (a person's choice in the player)."""
    with open_media(source) as container:
        stream = pick_video(container)
        if stream is None:
            raise ProbeFailed("the file has no video to take a picture from")
        _seek(container, stream, at)
        chosen: av.VideoFrame | None = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.time is not None and frame.time + _frame_duration(stream) / 2 >= at:
                break
        # Past the end, the seek lands on the last keyframe and the frames run out early.
        if chosen is None or (chosen.time is not None and at - chosen.time > 1.0):
            raise ProbeFailed(f"there is no picture at {at:.1f} s in the file")
        return encode_webp(chosen, max_width=max_width, aspect=_pixel_aspect(stream))


def _moments(duration: float | None) -> list[float]:
    """The times worth a look, in seconds."""
    if duration and duration > 0:
        return [duration * fraction for fraction in FRACTIONS]
    return list(SECONDS)


def _seek(container: InputContainer, stream: VideoStream, at: float) -> None:
    """Seek the stream to the keyframe at or before `at` seconds."""
    time_base = stream.time_base or Fraction(1, 1000)
    start = stream.start_time or 0
    container.seek(start + int(at / time_base), stream=stream, backward=True)


def _keyframe_near(
    container: InputContainer, stream: VideoStream, at: float
) -> av.VideoFrame | None:
    """Decode only the keyframe the seek to `at` lands on; None past the end."""
    _seek(container, stream, at)
    context = stream.codec_context
    context.skip_frame = "NONKEY"  # decode keyframes only: the seek lands on one
    try:
        for count, packet in enumerate(container.demux(stream)):
            # The last, empty packet drains the decoder (the seek before the next try
            # resets it); Matroska leaves the first packets' dts unset, so it is no mark.
            frames = context.decode(packet)
            if frames:
                return frames[0]
            if count >= MAX_PACKETS:
                return None
        return None
    finally:
        context.skip_frame = "DEFAULT"


def _frame_duration(stream: VideoStream) -> float:
    """Seconds per frame (1/25 s when the rate is unknown)."""
    rate = stream.average_rate or stream.guessed_rate
    return 1 / float(rate) if rate else 0.04


def detail(frame: av.VideoFrame) -> float:
    """How much the picture varies: the standard deviation of its brightness (0-255)."""
    height = max(2, round(frame.height * JUDGE_WIDTH / max(frame.width, 1)))
    grey = frame.reformat(width=JUDGE_WIDTH, height=height, format="gray")
    plane = grey.planes[0]
    data = bytes(plane)
    pixels = b"".join(
        data[row * plane.line_size:row * plane.line_size + JUDGE_WIDTH] for row in range(height)
    )
    counts = [pixels.count(value) for value in range(256)]  # a histogram, at C speed
    total = len(pixels)
    mean = sum(value * n for value, n in enumerate(counts)) / total
    variance = sum(n * (value - mean) ** 2 for value, n in enumerate(counts)) / total
    return math.sqrt(variance)


def is_uniform(frame: av.VideoFrame) -> bool:
    """Whether the frame is near-uniform: black, white or one flat colour."""
    return detail(frame) < UNIFORM


def encode_webp(
    frame: av.VideoFrame, *, max_width: int = 640, aspect: Fraction | None = None
) -> bytes:
    """The frame upright, at its display shape, at most `max_width` wide, as WebP.

    `aspect` is the pixels' width ÷ height: anamorphic pixels (DVDs, some rips) are not
    square, and the poster shows the picture as a player would.
    """
    width = frame.width * float(aspect) if aspect and aspect > 0 else float(frame.width)
    height = float(frame.height)
    rotation = round(frame.rotation or 0) % 360
    frame = _upright(frame, rotation)
    if rotation in (90, 270):
        width, height = height, width
    if width > max_width:
        height = height * max_width / width
        width = max_width
    out_width, out_height = max(2, round(width / 2) * 2), max(2, round(height / 2) * 2)
    picture = frame.reformat(width=out_width, height=out_height, format="yuv420p")
    import av

    encoder = av.CodecContext.create("libwebp", "w")
    encoder.width, encoder.height = out_width, out_height
    encoder.pix_fmt = "yuv420p"
    encoder.time_base = Fraction(1, 1)
    encoder.options = {"quality": str(WEBP_QUALITY)}
    picture.pts = 0
    packets = encoder.encode(picture) + encoder.encode(None)
    data = b"".join(bytes(packet) for packet in packets)
    if not data.startswith(b"RIFF"):
        raise ProbeFailed("the poster could not be encoded")
    return data


def _pixel_aspect(stream: VideoStream) -> Fraction | None:
    """The stream's sample (pixel) aspect ratio, when it says one."""
    ratio = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(ratio) if ratio else None


def _upright(frame: av.VideoFrame, rotation: int) -> av.VideoFrame:
    """The frame turned by `rotation` degrees counterclockwise, as its display matrix says
    (phones film sideways)."""
    if rotation == 0:
        return frame
    steps = {90: ["transpose=cclock"], 180: ["hflip", "vflip"], 270: ["transpose=clock"]}
    filters = steps.get(rotation)
    if filters is None:
        return frame
    import av
    import av.filter

    graph = av.filter.Graph()
    source = graph.add_buffer(template=None, width=frame.width, height=frame.height,
                              format=frame.format, time_base=Fraction(1, 1))
    chain = [source]
    for description in filters:
        name, _, argument = description.partition("=")
        chain.append(graph.add(name, argument or None))
    chain.append(graph.add("buffersink"))
    for first, second in zip(chain, chain[1:], strict=False):
        first.link_to(second)
    graph.configure()
    frame.pts = 0
    frame.time_base = Fraction(1, 1)
    graph.push(frame)
    turned = graph.pull()
    assert isinstance(turned, av.VideoFrame)
    return turned
