"""A large movie for the bytes-read tests and the benchmark (P8), made in seconds.

Real encoding of gigabytes would take hours on two cores; instead a short clip is encoded
once, its packets repeated for the whole length (so the index is a real movie's), and the
file grown to its size with a sparse hole (see `make_large_mp4`).
"""

from __future__ import annotations

import os
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream

from tests.media import FPS, SAMPLE_RATE, audio_frames, audio_stream, video_stream


def make_large_mp4(
    path: str | os.PathLike[str],
    *,
    size: int,
    seconds: float = 300.0,
    frame: tuple[int, int] = (1280, 720),
    fps: int = FPS,
    gop_seconds: int = 10,
    motion: bool = True,
) -> Path:
    """A movie of `seconds` and exactly `size` bytes whose index (moov) is at the end.

    A 10 s clip at `frame` is encoded once: a detailed still picture (a keyframe of about
    250 KB at 1280×720, like a real film's) with a small moving bar, a keyframe every
    `gop_seconds` (x264's default keyint is 250 frames); without `motion` the bar stays
    still and the frames between keyframes are nearly empty. Its packets are repeated to fill
    `seconds`, beside a silent AAC track, so every sample has a real entry in the index and
    the index is as large as a real movie's of that length (about 3 MB for two hours). The
    mdat box is then grown to make the file `size` bytes: the growth is a hole (a sparse
    file on disk) after the samples, and mdat may hold unreferenced bytes, so readers see a
    valid file of that size. Where the bytes lie does not change what a reader fetches: it
    follows the index.
    """
    path = Path(path)
    clip = path.with_name(path.stem + "-clip.mp4")
    plain = path.with_name(path.stem + "-plain.mp4")
    try:
        _detailed_clip(clip, seconds=min(10.0, seconds), frame=frame, fps=fps,
                       gop=gop_seconds * fps, motion=motion)
        _repeat_clip(clip, plain, seconds=seconds, fps=fps)
        _grow_mdat(plain, path, size)
    finally:
        clip.unlink(missing_ok=True)
        plain.unlink(missing_ok=True)
    return path


def _detailed_clip(
    path: Path, *, seconds: float, frame: tuple[int, int], fps: int, gop: int, motion: bool
) -> None:
    """A still, finely textured picture with a bar (moving, with `motion`), in H.264."""
    width, height = frame
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], -1)
    grain = np.random.default_rng(0).integers(0, 24, (height, width, 1))
    still = (base + grain).clip(0, 255).astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as out:
        video = video_stream(
            out, "libx264", size=frame, fps=fps,
            options={"preset": "ultrafast", "g": str(gop), "keyint_min": str(gop),
                     "x264-params": "log-level=error:scenecut=0"},
        )
        bar = max(8, height // 18)
        for index in range(round(seconds * fps)):
            image = still.copy()
            left = index * 5 % max(1, width - 80) if motion else width // 3
            image[height // 2:height // 2 + bar, left:left + 80] = 255
            picture_frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            picture_frame.pts = index
            picture_frame.time_base = Fraction(1, fps)
            out.mux(video.encode(picture_frame))
        out.mux(video.encode(None))


def _repeat_clip(clip: Path, path: Path, *, seconds: float, fps: int) -> None:
    """Mux `clip`'s video packets over and over for `seconds`, with silent AAC beside them."""
    with av.open(str(clip)) as inp, av.open(str(path), "w", format="mp4") as out:
        source = inp.streams.video[0]
        video = out.add_stream_from_template(source)
        video.time_base = Fraction(1, fps * 512)
        packets = [
            (bytes(p), p.is_keyframe, p.pts, p.dts, p.duration)
            for p in inp.demux(source) if p.size
        ]
        audio = audio_stream(out, "aac", language="eng", bit_rate=64_000)
        silence = [bytes(p) for p in _silent_aac(audio)]  # the encoder's first packet differs
        tick = source.time_base
        clip_ticks = len(packets) * round(1 / (fps * tick))
        audio_per_clip = 0
        repeats = max(1, round(seconds * fps / len(packets)))
        for repeat in range(repeats):
            for data, key, pts, dts, duration in packets:
                packet = av.Packet(data)
                packet.stream = video
                packet.time_base = tick
                packet.pts = pts + repeat * clip_ticks
                packet.dts = dts + repeat * clip_ticks
                packet.duration = duration
                packet.is_keyframe = key
                out.mux(packet)
            # The audio of this clip's span, in 1024-sample AAC frames.
            clip_end = (repeat + 1) * clip_ticks * float(tick)
            while audio_per_clip * 1024 / SAMPLE_RATE < clip_end:
                packet = av.Packet(silence[min(audio_per_clip, len(silence) - 1)])
                packet.stream = audio
                packet.time_base = Fraction(1, SAMPLE_RATE)
                packet.pts = packet.dts = audio_per_clip * 1024
                packet.duration = 1024
                out.mux(packet)
                audio_per_clip += 1


def _silent_aac(stream: AudioStream) -> list[av.Packet]:
    """A few AAC packets of silence from the stream's own encoder."""
    packets: list[av.Packet] = []
    for frame in audio_frames(stream, seconds=0.2, silent=True):
        packets += stream.encode(frame)
    return packets + stream.encode(None)


def _grow_mdat(source: Path, path: Path, size: int) -> None:
    """Copy `source` into `path` with its mdat box grown (sparsely) to make `size` bytes."""
    data = source.read_bytes()
    boxes: list[tuple[bytes, int, int]] = []  # (type, start, end)
    offset = 0
    while offset < len(data):
        box_size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if box_size == 1:
            (box_size,) = struct.unpack(">Q", data[offset + 8:offset + 16])
        boxes.append((kind, offset, offset + box_size))
        offset += box_size
    kinds = [kind for kind, _, _ in boxes]
    if kinds[-3:] != [b"free", b"mdat", b"moov"] or len(data) > size:
        raise ValueError(f"expected …free, mdat, moov (index at the end) under {size} bytes")
    (_, free_start, _), (_, mdat_start, mdat_end), (_, moov_start, _) = boxes[-3:]
    samples = data[mdat_start + 8:mdat_end]  # chunk offsets point here: they must not move
    moov = data[moov_start:]
    grown = size - len(moov) - free_start  # the new mdat, 16-byte header included
    with open(path, "wb") as out:
        out.write(data[:free_start])
        # The 8-byte free box the muxer left before mdat makes room for a 64-bit size.
        out.write(struct.pack(">I4sQ", 1, b"mdat", grown))
        out.write(samples)
        out.seek(size - len(moov))  # the hole
        out.write(moov)
    if path.stat().st_size != size:
        raise AssertionError("the grown file has the wrong size")
