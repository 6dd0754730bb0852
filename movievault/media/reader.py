"""A stored object as a seekable file whose every read is one ranged read of the store.

FFmpeg (through PyAV) reads a movie as a file: a header here, the index at the end, a
keyframe in the middle. `RangedReader` answers each of its reads with
`Storage.read_range`, so the app fetches what FFmpeg asks for and nothing else; wrapped in
a buffer (`open_ranged`) the many small reads FFmpeg makes become a few larger requests.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from movievault.errors import ProbeTimeout
from movievault.storage.base import Storage

#: Each request to the store fetches at least this much (FFmpeg asks for 32 KiB at a
#: time): big enough that a header costs a handful of requests, small enough that a seek
#: to a keyframe does not drag megabytes of the film behind it.
BUFFER_SIZE = 256 * 1024

#: The most one request asks for while reading straight on (see `readinto`).
READ_AHEAD = 2 * 1024 * 1024
#: Bytes of earlier reads kept for reading again (a two-hour MP4's index is 4-5 MB).
CACHE_SIZE = 16 * 1024 * 1024


class RangedReader(io.RawIOBase):
    """Read-only, seekable access to `size` bytes of the object at `key`.

    Counts the `bytes_read` and the `requests` made to the store; what was read is kept
    (up to CACHE_SIZE) and served again without a request. After `deadline` (a
    `time.monotonic()` instant) every read raises ProbeTimeout, so a stuck store or a file
    that sends the demuxer round in circles ends the work instead of holding a worker.
    """

    def __init__(
        self,
        storage: Storage,
        key: str,
        size: int,
        *,
        deadline: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.storage = storage
        self.key = key
        self.size = size
        self.deadline = deadline
        self.clock = clock
        self.position = 0
        self.bytes_read = 0
        self.requests = 0
        #: The first read that failed (a timeout, the store's error): FFmpeg may take a
        #: failed read for the end of the file, so callers check this after it answers.
        self.error: Exception | None = None
        # (offset, bytes) of earlier reads: the poster opens the file again after the
        # probe, and FFmpeg then reads the same header and index at the same offsets.
        self.cache: list[tuple[int, bytes]] = []
        self.cached = 0
        self.last_end = -1
        self.in_a_row = 0

    def check(self) -> None:
        """Raise the error of a read that failed, if one did."""
        if self.error is not None:
            raise self.error

    def readable(self) -> bool:
        """Always: reading is the point."""
        return True

    def seekable(self) -> bool:
        """Always: ranged reads can start anywhere."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the position (no request is made until the next read)."""
        if whence == io.SEEK_SET:
            position = offset
        elif whence == io.SEEK_CUR:
            position = self.position + offset
        elif whence == io.SEEK_END:
            position = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if position < 0:
            raise OSError(f"cannot seek to {position}, before the start of the object")
        self.position = position
        return position

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        """Fill `buffer` from the current position with one ranged read; 0 at the end."""
        if self.error is not None:
            # FFmpeg retries a read that failed; PyAV keeps the first error and raises it
            # once FFmpeg gives up, so later reads end quietly instead of asking again.
            return 0
        # Reading on from where the last read ended (an index, a run of packets): ask for
        # as much as has been read in a row so far, up to READ_AHEAD, and keep the rest
        # for the next reads. A two-hour MP4's index then costs 5 requests, not 14.
        in_a_row = self.in_a_row if self.position == self.last_end else 0
        ahead = min(READ_AHEAD, in_a_row)
        data = self.read_at(self.position, len(buffer), ahead=ahead)[: len(buffer)]
        count = len(data)
        memoryview(buffer).cast("B")[:count] = data
        self.in_a_row = in_a_row + count
        self.position += count
        self.last_end = self.position
        return count

    def read_at(self, offset: int, length: int, *, ahead: int = 0) -> bytes:
        """Up to `length` bytes at `offset`, from the cache or in one ranged read of at
        least `ahead` bytes (the rest is cached); the position stays put."""
        if self.deadline is not None and self.clock() > self.deadline:
            self.error = ProbeTimeout(
                "reading the file took too long (the store is slow or stuck)"
            )
            raise self.error
        wanted = min(length, self.size - offset)
        if wanted <= 0:
            return b""
        for start, data in self.cache:
            if start <= offset and offset + wanted <= start + len(data):
                return data[offset - start:offset - start + wanted]
        try:
            data = self.storage.read_range(
                self.key, offset, min(max(wanted, ahead), self.size - offset)
            )
        except Exception as error:
            self.error = error
            raise
        self.requests += 1
        self.bytes_read += len(data)
        self._remember(offset, data)
        return data[:wanted]

    def _remember(self, offset: int, data: bytes) -> None:
        """Keep what was read, the oldest going first past CACHE_SIZE bytes."""
        self.cache.append((offset, data))
        self.cached += len(data)
        while self.cached > CACHE_SIZE and len(self.cache) > 1:
            _, dropped = self.cache.pop(0)
            self.cached -= len(dropped)


def open_ranged(
    storage: Storage,
    key: str,
    size: int,
    *,
    deadline: float | None = None,
    buffer_size: int = BUFFER_SIZE,
) -> io.BufferedReader:
    """A buffered RangedReader (its counters are on `.raw`); the caller closes it."""
    return io.BufferedReader(RangedReader(storage, key, size, deadline=deadline), buffer_size)
