"""Storage.read_range on both backends, and the ranged reader FFmpeg reads through."""

from __future__ import annotations

import io
import os

import pytest

from movievault.errors import InvalidInput, NoSuchKey, ProbeTimeout
from movievault.media.reader import (
    BUFFER_SIZE,
    CACHE_SIZE,
    READ_AHEAD,
    RangedReader,
    open_ranged,
)
from movievault.storage.base import Storage

DATA = os.urandom(300_000)


def put(store: Storage, key: str, data: bytes) -> None:
    """Store `data` at `key` through the interface."""
    store.put(key=key, stream=io.BytesIO(data), size=len(data), content_type="video/mp4")


class CountingStore:
    """A store wrapper that records every read_range call (offset, length)."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.calls: list[tuple[int, int]] = []

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Record, then read."""
        self.calls.append((start, length))
        return self.store.read_range(key, start, length)


def test_read_range_returns_the_asked_bytes_and_fewer_at_the_end(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA)
    assert bare_store.read_range("movies/1/clip", 0, 10) == DATA[:10]
    assert bare_store.read_range("movies/1/clip", 123_456, 70_000) == DATA[123_456:193_456]
    assert bare_store.read_range("movies/1/clip", len(DATA) - 5, 100) == DATA[-5:]
    assert bare_store.read_range("movies/1/clip", len(DATA), 100) == b""
    assert bare_store.read_range("movies/1/clip", len(DATA) + 10_000, 100) == b""
    assert bare_store.read_range("movies/1/clip", 50, 0) == b""


def test_read_range_of_a_missing_object_is_no_such_key(bare_store: Storage) -> None:
    with pytest.raises(NoSuchKey):
        bare_store.read_range("movies/1/gone", 0, 10)


def test_read_range_refuses_negative_ranges(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA)
    with pytest.raises(InvalidInput):
        bare_store.read_range("movies/1/clip", -1, 10)
    with pytest.raises(InvalidInput):
        bare_store.read_range("movies/1/clip", 0, -10)


def test_the_reader_is_a_seekable_file_of_ranged_reads(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA)
    reader = open_ranged(bare_store, "movies/1/clip", len(DATA))
    assert reader.read(5) == DATA[:5]
    assert reader.seek(-100, io.SEEK_END) == len(DATA) - 100
    assert reader.read() == DATA[-100:]
    assert reader.read(10) == b""
    reader.seek(200_000)
    assert reader.read(50_000) == DATA[200_000:250_000]
    raw = reader.raw
    assert isinstance(raw, RangedReader)
    # Each read outside the buffer is one request of at most BUFFER_SIZE bytes.
    assert raw.requests == 3
    assert raw.bytes_read == BUFFER_SIZE + 100 + (len(DATA) - 200_000)


def test_what_was_read_is_not_fetched_again(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA)
    counting = CountingStore(bare_store)
    raw = RangedReader(counting, "movies/1/clip", len(DATA))  # type: ignore[arg-type]
    assert raw.read_at(1000, 5000) == DATA[1000:6000]
    assert raw.read_at(2000, 100) == DATA[2000:2100]  # inside the first read: cached
    assert raw.read_at(5000, 2000) == DATA[5000:7000]  # runs past it: fetched
    assert counting.calls == [(1000, 5000), (5000, 2000)]
    assert raw.bytes_read == 7000


def test_the_cache_keeps_the_latest_reads_up_to_its_size(bare_store: Storage) -> None:
    size = CACHE_SIZE + 4 * BUFFER_SIZE
    put(bare_store, "movies/1/big", bytes(size))
    counting = CountingStore(bare_store)
    raw = RangedReader(counting, "movies/1/big", size)  # type: ignore[arg-type]
    for offset in range(0, size, BUFFER_SIZE):
        raw.read_at(offset, BUFFER_SIZE)
    assert raw.cached <= CACHE_SIZE
    raw.read_at(size - BUFFER_SIZE, 10)  # the latest: still there
    raw.read_at(0, 10)  # the oldest: gone
    assert counting.calls[-1] == (0, 10)
    assert len(counting.calls) == size // BUFFER_SIZE + 1


def test_a_read_after_the_deadline_raises_probe_timeout(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA)
    now = [100.0]
    raw = RangedReader(bare_store, "movies/1/clip", len(DATA), deadline=101.0, clock=lambda: now[0])
    assert raw.read_at(0, 10) == DATA[:10]
    now[0] = 101.5
    with pytest.raises(ProbeTimeout, match="too long"):
        raw.read_at(10, 10)
    # FFmpeg retries failed reads: later reads end quietly, without asking the store again.
    assert raw.readinto(bytearray(10)) == 0
    assert raw.requests == 1


def test_store_errors_pass_through_the_reader(bare_store: Storage) -> None:
    raw = RangedReader(bare_store, "movies/1/never-stored", 1000)
    with pytest.raises(NoSuchKey):
        raw.read_at(0, 10)
    assert isinstance(raw.error, NoSuchKey)
    with pytest.raises(NoSuchKey):
        raw.check()


def test_a_reader_whose_object_shrank_sees_its_end(bare_store: Storage) -> None:
    put(bare_store, "movies/1/clip", DATA[:1000])
    reader = open_ranged(bare_store, "movies/1/clip", len(DATA))  # the size it had
    assert reader.read() == DATA[:1000]


def test_reading_straight_on_asks_for_more_each_time(bare_store: Storage) -> None:
    size = 6 * 1024 * 1024
    data = os.urandom(size)
    put(bare_store, "movies/1/long", data)
    counting = CountingStore(bare_store)
    raw = RangedReader(counting, "movies/1/long", size)  # type: ignore[arg-type]
    reader = io.BufferedReader(raw, BUFFER_SIZE)
    reader.seek(1000)
    # FFmpeg reads 32 KiB at a time.
    read = b"".join(reader.read(32 * 1024) for _ in range(96))
    assert read == data[1000:1000 + 3 * 1024 * 1024]
    # As much as was read in a row, up to READ_AHEAD: 3 MiB in 5 requests, not 12.
    lengths = [length for _, length in counting.calls]
    assert lengths[0] == BUFFER_SIZE
    assert len(lengths) <= 5 and max(lengths) <= READ_AHEAD
    # A seek starts small again: a keyframe costs one buffer, not megabytes.
    counting.calls.clear()
    reader.seek(5 * 1024 * 1024)
    assert reader.read(1000) == data[5 * 1024 * 1024:5 * 1024 * 1024 + 1000]
    assert counting.calls == [(5 * 1024 * 1024, BUFFER_SIZE)]
    assert raw.bytes_read <= 3 * 1024 * 1024 + READ_AHEAD + BUFFER_SIZE
