"""Bringing a collection in: walking folders, picking movies and their subtitle files,
hashing them in threads with a cache, and the summary `import` and `upload` both print.

Standard library and tqdm only: `movievault upload` runs on machines without the server's
dependencies, and imports this module alone.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

#: Bytes read at a time while hashing: large blocks keep hashlib (which releases the GIL
#: for them) busy in every thread.
BLOCK = 4 * 1024 * 1024
#: How much lower than the rest of an import its hashing threads run (`nice` steps).
HASHING_NICENESS = 10

#: Video extensions and the type a file of each is recorded with.
VIDEO_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
    ".3gp": "video/3gpp", ".mkv": "video/x-matroska", ".webm": "video/webm",
    ".avi": "video/x-msvideo", ".wmv": "video/x-ms-wmv", ".asf": "video/x-ms-asf",
    ".flv": "video/x-flv", ".ts": "video/mp2t", ".m2ts": "video/mp2t", ".mts": "video/mp2t",
    ".mpg": "video/mpeg", ".mpeg": "video/mpeg", ".vob": "video/mpeg", ".ogv": "video/ogg",
}
#: Subtitle files that travel with a movie of the same name (see media/subtitle_files.py).
SUBTITLE_TYPES = {".srt": "application/x-subrip", ".vtt": "text/vtt", ".ass": "text/x-ssa",
                  ".ssa": "text/x-ssa"}
#: What the first bytes of each container family look like (see `sniff`).
_ISO_BOXES = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")


def sniff(head: bytes) -> str | None:
    """The container family the first bytes of a file announce, or None if not a video."""
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "iso"  # MP4, MOV, 3GP, M4V
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # MKV, WebM
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith(bytes.fromhex("3026b2758e66cf11")):
        return "asf"
    if head.startswith(b"FLV"):
        return "flv"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith((b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3")):
        return "mpeg"
    for offset, stride in ((0, 188), (4, 192)):  # MPEG-TS, and M2TS with its 4-byte stamps
        if len(head) > offset + 2 * stride and all(
            head[offset + n * stride] == 0x47 for n in range(3)
        ):
            return "ts"
    return None


@dataclass
class Candidate:
    """A file to bring in: its path, size, modification time and type, and later its hash."""

    path: Path
    size: int
    mtime_ns: int
    inode: int
    content_type: str
    sha256: str | None = None
    #: Subtitle files beside it with the same name (`Film.en.srt` for `Film.mkv`).
    subtitles: list[Candidate] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The file name the catalogue records."""
        return self.path.name


@dataclass
class Summary:
    """What a run did, file by file where it matters: the same for `import` and `upload`."""

    imported: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    subtitles: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    hashed: int = 0
    cached: int = 0
    #: Files skipped for their extension alone, counted by extension (not listed one by one).
    ignored: Counter[str] = field(default_factory=Counter)

    def lines(self, *, dry_run: bool = False, verb: str = "imported") -> list[str]:
        """The summary as printed, the totals first, then one line per skip and failure."""
        verb = f"would be {verb}" if dry_run else verb
        ignored = sum(self.ignored.values())
        shown = ", ".join(f"{n} {ext or '(none)'}" for ext, n in self.ignored.most_common(6))
        lines = [
            f"{len(self.imported)} {verb}, {len(self.duplicates)} already in the library, "
            f"{len(self.skipped) + ignored} skipped, {len(self.failed)} failed; "
            f"{len(self.subtitles)} subtitle file(s) attached.",
            f"Hashed {self.hashed} file(s); {self.cached} known from the hash cache.",
        ]
        if ignored:
            lines.append(f"Skipped {ignored} file(s) that are not videos by name ({shown}).")
        lines += [f"Skipped {path}: {reason}" for path, reason in self.skipped]
        lines += [f"Failed {path}: {reason}" for path, reason in self.failed]
        return lines

    @property
    def exit_code(self) -> int:
        """1 when any file failed, else 0 (skipped files are not failures)."""
        return 1 if self.failed else 0


def _read_head(path: Path) -> bytes:
    """The first bytes of a file, opened without following into a FIFO or device."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        return os.read(fd, 1024)
    finally:
        os.close(fd)


def _examine(path: Path, summary: Summary) -> Candidate | None:
    """The file as a candidate movie or subtitle, or None (recorded in `summary` as skipped)."""
    suffix = path.suffix.lower()
    if suffix not in VIDEO_TYPES and suffix not in SUBTITLE_TYPES:
        summary.ignored[suffix] += 1
        return None
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            info = path.stat()  # a link to a movie elsewhere is taken; a broken one is not
        if not stat.S_ISREG(info.st_mode):
            summary.skipped.append((str(path), "not a regular file (a FIFO, device or socket)"))
            return None
        head = _read_head(path) if suffix in VIDEO_TYPES else b""
    except OSError as error:
        summary.failed.append((str(path), f"cannot be read ({error.strerror or error})"))
        return None
    if suffix in VIDEO_TYPES and sniff(head) is None:
        summary.skipped.append((str(path), "named like a video, but its bytes are not one"))
        return None
    content_type = VIDEO_TYPES.get(suffix) or SUBTITLE_TYPES[suffix]
    return Candidate(path=path, size=info.st_size, mtime_ns=info.st_mtime_ns,
                     inode=info.st_ino, content_type=content_type)


def _movie_stem(subtitle: Path) -> list[str]:
    """The names a movie beside this subtitle file may have, without extension:
    `Film.en.forced.srt` goes with `Film`, `Film.en` or `Film.en.forced`."""
    parts = subtitle.name.split(".")[:-1]
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def walk(paths: Iterable[Path], summary: Summary) -> list[Candidate]:
    """Every movie under `paths` (files or folders, walked recursively, in name order),
    each with its subtitle files; a subtitle file without a movie is skipped."""
    movies: list[Candidate] = []
    for root in paths:
        if not root.exists() and not root.is_symlink():
            summary.failed.append((str(root), "no such file or folder"))
            continue
        if root.is_dir():
            found: list[Path] = []
            def unreadable(error: OSError) -> None:
                summary.skipped.append((str(error.filename), "a folder that cannot be read "
                                        f"({error.strerror or error})"))

            for folder, dirs, files in os.walk(root, onerror=unreadable):
                dirs.sort()
                found += [Path(folder) / name for name in sorted(files)]
        else:
            found = [root]
        by_folder: dict[Path, list[Candidate]] = {}
        for path in found:
            candidate = _examine(path, summary)
            if candidate is not None:
                by_folder.setdefault(path.parent, []).append(candidate)
        for items in by_folder.values():
            videos = {c.path.stem: c for c in items if c.path.suffix.lower() in VIDEO_TYPES}
            for item in items:
                if item.path.suffix.lower() in VIDEO_TYPES:
                    movies.append(item)
                    continue
                movie = next((videos[s] for s in _movie_stem(item.path) if s in videos), None)
                if movie is None:
                    summary.skipped.append((str(item.path), "a subtitle file without a movie "
                                            "of the same name beside it"))
                else:
                    movie.subtitles.append(item)
    return movies


def cache_path() -> Path:
    """Where the hash cache lives: $XDG_CACHE_HOME/movievault (else ~/.cache/movievault)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative: the spec says to ignore it
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "movievault" / "hashes.sqlite3"


class HashCache:
    """SHA-256s of files already hashed, known by path, size, inode and modification time.

    An SQLite file: the standard library has it, several runs (an import and an upload)
    may share it safely, and losing it costs only hashing again. A file that changed in
    any of those is hashed again.
    """

    def __init__(self, path: Path | None) -> None:
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
        # A cache: a commit need not wait for the disk (an entry lost to a power cut is
        # hashed again), and with a write-ahead log a second run reads while this one writes.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, size INTEGER, "
            "mtime_ns INTEGER, inode INTEGER, sha256 TEXT)"
        )
        self._db.commit()

    def get(self, item: Candidate) -> str | None:
        """The cached SHA-256 of the file as it is now, else None."""
        if self._db is None:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT sha256 FROM hashes WHERE path = ? AND size = ? AND mtime_ns = ? "
                "AND inode = ?", (str(item.path.absolute()), item.size, item.mtime_ns, item.inode)
            ).fetchone()
        return row[0] if row else None

    def put(self, item: Candidate) -> None:
        """Remember the file's hash."""
        if self._db is None:
            return
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
                (str(item.path.absolute()), item.size, item.mtime_ns, item.inode, item.sha256),
            )
            self._db.commit()

    def close(self) -> None:
        """Close the file."""
        if self._db is not None:
            self._db.close()


def hash_file(path: Path, progress: Callable[[int], object] = lambda _: None) -> str:
    """The file's SHA-256, read in large blocks; `progress` hears of every block."""
    digest = hashlib.sha256()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while count := handle.readinto(buffer):
            digest.update(view[:count])
            progress(count)
    return digest.hexdigest()


def hash_all(
    items: list[Candidate], *, jobs: int, cache: HashCache, summary: Summary,
    progress: Callable[[int], object] = lambda _: None,
) -> list[Candidate]:
    """Hash the files (and their subtitles) not in the cache, `jobs` at a time; return
    those that could be read. The others are failures in `summary`."""
    return list(hash_in_order(items, jobs=jobs, cache=cache, summary=summary,
                              progress=progress))


def hash_in_order(
    items: list[Candidate], *, jobs: int, cache: HashCache, summary: Summary,
    progress: Callable[[int], object] = lambda _: None,
) -> Generator[Candidate, None, None]:
    """Yield each file that could be read, in order, as soon as it and its subtitles are
    hashed: the caller stores one file while the threads hash the next ones."""
    pool = ThreadPoolExecutor(max_workers=max(1, jobs), initializer=_yield_to_transfers)
    try:
        pending: dict[int, Future[str]] = {}
        for item in items:
            for each in (item, *item.subtitles):
                each.sha256 = cache.get(each)
                if each.sha256 is not None:
                    summary.cached += 1
                    if each is item:
                        progress(each.size)
                    continue
                # Subtitles are not in the byte totals of the progress bar.
                counted = progress if each is item else _ignore
                pending[id(each)] = pool.submit(hash_file, each.path, counted)
        for item in items:
            readable = [each for each in (item, *item.subtitles) if _collect(
                each, pending.pop(id(each), None), cache=cache, summary=summary
            )]
            if readable and readable[0] is item:
                item.subtitles = readable[1:]
                yield item
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _yield_to_transfers() -> None:
    """Run this hashing thread at a lower CPU priority (Linux sets it per thread): on a
    busy machine the file being stored goes first, and the hashes of the next ones, which
    are needed only later, use the time left over."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HASHING_NICENESS)
    except (AttributeError, OSError):  # no per-thread priorities here: hash as it comes
        pass


def _collect(
    each: Candidate, future: Future[str] | None, *, cache: HashCache, summary: Summary
) -> bool:
    """Take a file's hash from its future (none: it came from the cache); False when the
    file could not be read (a failure in `summary`)."""
    if future is None:
        return True
    try:
        each.sha256 = future.result()
    except OSError as error:
        summary.failed.append((str(each.path), f"could not be read ({error.strerror or error})"))
        return False
    summary.hashed += 1
    cache.put(each)
    return True


def _ignore(_: int) -> None:
    """A progress callback that counts nothing (subtitles are not in the byte totals)."""
