"""Why FFmpeg could not open a file, in words a person understands.

FFmpeg answers "Invalid data found when processing input" for a photo, a cut-off upload
and random bytes alike. When it refuses a file, the first bytes say what kind of file it
is, and for MP4 and Matroska the sizes of the top-level boxes or elements say whether it
stops short: a truncated movie, not a strange one. Box headers are read 16 bytes at a
time (`read_at`), so the check costs a few tiny requests, not megabytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

#: Reads `length` bytes at `offset` of the file: (offset, length) -> bytes.
ReadAt = Callable[[int, int], bytes]

#: MP4/QuickTime top-level boxes a file starts with.
MP4_START = {b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot"}
EBML_MAGIC = b"\x1a\x45\xdf\xa3"
SEGMENT_ID = b"\x18\x53\x80\x67"
#: What other files start with, to name them in the refusal.
SIGNATURES = [
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"\x89PNG", "a PNG picture"),
    (b"GIF8", "a GIF picture"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"#EXTM3U", "a playlist"),
]


def diagnose(head: bytes, size: int, read_at: ReadAt) -> str:
    """Why FFmpeg refused a file that starts with `head`: truncated, damaged, not a movie."""
    if size == 0:
        return "the file is empty"
    if head[4:8] in MP4_START:
        return _mp4(size, read_at) or "the MP4 file is damaged: FFmpeg cannot read its index"
    if head.startswith(EBML_MAGIC):
        return _matroska(head, size) or (
            "the Matroska file is damaged: FFmpeg cannot read its header"
        )
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return f"not a video file: it is {kind}"
    if _is_text(head):
        return "not a video file: it is text"
    return "not a video file: its format is not one FFmpeg recognises"


def truncation(head: bytes, size: int, read_at: ReadAt) -> str | None:
    """Say so when an MP4 or Matroska file that FFmpeg opened stops short, else None.

    FFmpeg opens a Matroska file cut in half (its header is whole) and an MP4 whose index
    comes first but whose data is cut: both play until the cut, then stop.
    """
    if head[4:8] in MP4_START:
        return _mp4(size, read_at)
    if head.startswith(EBML_MAGIC):
        return _matroska(head, size)
    return None


def _mp4(size: int, read_at: ReadAt) -> str | None:
    """Walk the top-level boxes: one running past the end, or no index, means truncated."""
    offset = 0
    seen: set[bytes] = set()
    while offset + 8 <= size:
        header = read_at(offset, 16)
        if len(header) < 8:
            break
        box_size, kind = struct.unpack(">I4s", header[:8])
        if box_size == 1 and len(header) == 16:
            (box_size,) = struct.unpack(">Q", header[8:16])
        elif box_size == 0:  # "to the end of the file"
            box_size = size - offset
        if box_size < 8:
            return None  # not a box at all: damaged, not truncated
        seen.add(kind)
        if offset + box_size > size:
            kept = _percent(size - offset, box_size)
            return (
                f"the file is truncated: it ends {kept} of the way through its "
                f"'{kind.decode('latin-1')}' box (an interrupted upload or copy?)"
            )
        offset += box_size
    if b"moov" not in seen:
        return (
            "the file is incomplete: its index (the moov box) is missing, as when a "
            "recording or a copy was interrupted"
        )
    return None


def _matroska(head: bytes, size: int) -> str | None:
    """Compare the Segment's declared size (its header is in `head`) with the file's."""
    header_size = _vint(head, 4)
    if header_size is None:
        return None
    length, value = header_size
    segment = 4 + length + value
    data = head[segment:segment + 12]
    if data[:4] != SEGMENT_ID:
        return None
    declared = _vint(data, 4)
    if declared is None:
        return None
    length, value = declared
    unknown = value == (1 << (7 * length)) - 1  # all ones: "size unknown" (live streams)
    end = segment + 4 + length + value
    if not unknown and end > size:
        return (
            f"the file is truncated: it holds {_percent(size, end)} of the bytes its header "
            "announces (an interrupted upload or copy?)"
        )
    return None


def _percent(part: int, whole: int) -> str:
    """`part` of `whole` for people: "60%", or "under 1%"."""
    percent = part * 100 // whole
    return f"{percent}%" if percent >= 1 else "under 1%"


def _vint(data: bytes, offset: int) -> tuple[int, int] | None:
    """An EBML variable-size integer at `offset`: (its length in bytes, its value)."""
    if offset >= len(data) or data[offset] == 0:
        return None
    first = data[offset]
    length = 8 - first.bit_length() + 1
    if offset + length > len(data):
        return None
    value = first & ((1 << (8 - length)) - 1)
    for byte in data[offset + 1:offset + length]:
        value = (value << 8) | byte
    return length, value


def _is_text(head: bytes) -> bool:
    """Whether the first bytes read as text (subtitles, a playlist, a note)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # A multi-byte character cut at the end of the sample is still text.
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    return all(c.isprintable() or c in "\r\n\t\ufeff" for c in text)
