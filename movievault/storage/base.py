"""The storage interface every backend implements, and what backends share."""

from __future__ import annotations

import base64
import binascii
import inspect
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import wraps
from typing import Any, BinaryIO, Protocol, TypeVar, cast
from urllib.parse import quote

from movievault.errors import MovieVaultError

F = TypeVar("F", bound=Callable[..., Any])


class Readable(Protocol):
    """What bytes are copied from: a file, a request body, the file field of a form."""

    def read(self, size: int = -1, /) -> bytes:
        """Up to `size` bytes (b"" at the end)."""
        ...


#: The backends, as MOVIEVAULT_STORAGE names them.
KINDS = ("local", "s3", "embedded-s3")

# S3's limits for multipart uploads; the local backend keeps them so plans are the same.
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_PARTS = 10_000

#: Besides video/* and audio/*, the types a browser may show in place: the subtitle and
#: poster formats the app itself writes. None of them can carry script.
INLINE_TYPES = frozenset({"text/vtt", "image/webp", "image/jpeg", "image/png"})
#: What every other object is served as: bytes to save, never a page, script or style.
INERT_TYPE = "application/octet-stream"
#: The policy of an object opened on its own: no script, no plugin, no form, no fetch.
OBJECT_POLICY = "sandbox; default-src 'none'"
#: The same for audio and video shown in place. Chromium plays a media URL opened on its
#: own in a document holding `<video crossorigin=anonymous src=URL>`, which fetches the URL
#: again: from the opaque origin of a plain sandbox that is a CORS request the store does
#: not answer, so the document keeps its origin (allow-same-origin) and may load itself
#: (media-src 'self'). Scripts stay off: the sandbox has no allow-scripts.
MEDIA_POLICY = "sandbox allow-same-origin; default-src 'none'; media-src 'self'"
#: The header that carries a body's SHA-256 (base64, as S3 wants it); URLs sign it.
CHECKSUM_HEADER = "x-amz-checksum-sha256"
_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def storage_kind(config: Mapping[str, Any]) -> str:
    """Return the configured backend: explicit STORAGE, else s3 when a bucket or endpoint is set."""
    kind = (config.get("STORAGE") or "").strip().lower()
    if not kind:
        kind = "s3" if config.get("S3_BUCKET") or config.get("S3_ENDPOINT_URL") else "local"
    if kind not in KINDS:
        raise ValueError(f"MOVIEVAULT_STORAGE must be one of {', '.join(KINDS)}, not {kind!r}")
    return kind


@dataclass(frozen=True)
class PostForm:
    """A browser form upload: POST `fields` then the file (last) to `url`."""

    url: str
    fields: dict[str, str]


@dataclass(frozen=True)
class StoredPart:
    """A part of a multipart upload that the store already holds.

    `checksum` is the part's SHA-256 (base64) when the store keeps one: S3 does for uploads
    created with the SHA-256 checksum algorithm, and wants it back when completing.
    """

    part_number: int
    etag: str
    size: int
    checksum: str | None = None


def sha256_base64(sha256_hex: str) -> str:
    """A hex SHA-256 as the checksum header carries it (base64 of the 32 bytes)."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode("ascii")


def sha256_hex_of(header: str) -> str | None:
    """The hex SHA-256 a checksum header's base64 value holds; None when it holds none."""
    try:
        digest = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return digest.hex() if len(digest) == 32 else None


def checksum_headers(sha256_hex: str | None) -> dict[str, str]:
    """The headers that make the store check a body against its SHA-256 (none without one)."""
    return {CHECKSUM_HEADER: sha256_base64(sha256_hex)} if sha256_hex else {}


def put_headers(content_type: str, sha256_hex: str | None) -> dict[str, str]:
    """What a client sends with a single PUT upload: exactly the headers its URL signs.

    Content-Length is signed too, as the upload's size; every HTTP client sends it by
    itself (browsers may not even set it), so it is not listed.
    """
    return {"Content-Type": content_type, **checksum_headers(sha256_hex)}


@dataclass(frozen=True)
class StoredObject:
    """An object the store holds: its key, size and last change (UTC)."""

    key: str
    size: int
    modified: datetime


class Storage(ABC):
    """Where the bytes of movies live. The app only hands out URLs; browsers move the bytes."""

    #: Short name shown in logs and on the page ("s3", "local", ...).
    kind: str = ""

    @abstractmethod
    def describe(self) -> str:
        """Say where the movies are kept, for people ("S3 bucket movies", ...)."""

    def notice(self) -> str | None:
        """A warning every page shows while it holds (data kept in memory, a missing disk)."""
        return None

    def upload_method(self) -> str:
        """How files up to MULTIPART_THRESHOLD go up: "post" (a form) or "put" (one PUT)."""
        return "post"

    def sha256_checksums(self) -> bool:
        """Whether uploads carry their SHA-256 for the store to check: a single PUT when the
        file's hash is known, and every part of new multipart uploads."""
        return False

    @abstractmethod
    def post_form(self, *, key: str, size: int, content_type: str, expires: int) -> PostForm:
        """Return a form upload bound to `key`, exactly `size` bytes and `content_type`."""

    @abstractmethod
    def put_url(
        self, *, key: str, size: int, content_type: str, sha256: str | None, expires: int
    ) -> str:
        """Return a URL for one PUT of the whole object, signing `put_headers` and the size.

        With `sha256` (hex) the store refuses a body with another hash (400 BadDigest).
        """

    @abstractmethod
    def start_multipart(self, *, key: str, content_type: str, checksums: bool = False) -> str:
        """Begin a multipart upload for `key` and return its upload id.

        With `checksums`, every part must carry its SHA-256 (see `part_url`).
        """

    @abstractmethod
    def part_url(
        self, *, key: str, upload_id: str, part_number: int, size: int, expires: int,
        sha256: str | None = None,
    ) -> str:
        """Return a URL the browser PUTs one part to; the answer carries an `ETag` header.

        The URL signs the part's exact size and, given `sha256` (hex), the checksum header
        (`checksum_headers`), which the client then sends and the store checks.
        """

    @abstractmethod
    def list_parts(self, *, key: str, upload_id: str) -> list[StoredPart]:
        """Return every part already stored for the upload, in part-number order."""

    @abstractmethod
    def complete_multipart(
        self, *, key: str, upload_id: str, parts: list[tuple[int, str]],
        checksums: Mapping[int, str] | None = None,
    ) -> None:
        """Assemble the listed `(part_number, etag)` parts into the object at `key`.

        `checksums` are the parts' SHA-256 (base64) as `list_parts` reported them; S3 wants
        them back for uploads created with checksums.
        """

    @abstractmethod
    def abort_multipart(self, *, key: str, upload_id: str) -> None:
        """Abandon a multipart upload and free its parts; unknown uploads are ignored."""

    @abstractmethod
    def object_size(self, key: str) -> int | None:
        """Return the size of the object at `key`, or None when there is none."""

    def ping(self) -> None:
        """Raise StorageUnavailable when the store cannot be reached; refusals do not count.

        Signing URLs needs no network, so without this an upload could be planned (and a
        pending row written) while the store is down, and the browser would only see its
        transfer fail with no explanation.
        """
        return None  # backends without a remote service have nothing to reach

    def ping_recent(self) -> None:
        """`ping`, where an answer of the last few seconds may stand for a new one.

        For requests that plan transfers and record no file: part URLs, form uploads and
        resumes. Planned while the store has just gone down, their transfers fail in the
        client, which retries and meets a real check (a clear 503); what is left is at most
        a pending upload, which expires.
        """
        self.ping()

    def check_usable(self) -> None:
        """Raise a typed error, one sentence saying what to do, when the store cannot be used
        at all: no such bucket, access denied, a folder that refuses writes, nothing there.

        `movievault serve` asks this once at start, so a store that can never work stops
        the server with a clear message instead of failing every upload later.
        """
        self.ping()

    def object_sha256(self, key: str) -> str | None:
        """Return the object's SHA-256 when the store computed it, else None (S3 cannot)."""
        return None

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the object at `key`; a missing object is not an error."""

    @abstractmethod
    def download_url(
        self, *, key: str, filename: str, content_type: str, inline: bool, expires: int
    ) -> str:
        """Return a time-limited GET URL that honours Range and names the file.

        The object is served as `present` decides: `content_type` and `inline` are what
        the catalogue asks for, not necessarily what the browser gets.
        """

    @abstractmethod
    def origins(self) -> list[str]:
        """Return the origins browsers talk to for this store (for the page's CSP)."""

    @abstractmethod
    def setup(self, *, public_url: str, abort_after_days: int) -> list[str]:
        """Prepare the store (bucket, CORS, lifecycle) and return what was done, line by line."""

    @abstractmethod
    def list_objects(self) -> list[StoredObject]:
        """Every object the store holds.

        A list, not a generator: the whole listing happens inside the call, so its failures
        are translated (`translate_errors`) instead of escaping from the caller's loop.
        """

    def iter_objects(self) -> Iterator[StoredObject]:
        """Iterate over every object the store holds (listed in full first)."""
        return iter(self.list_objects())

    def iter_keys(self) -> Iterator[str]:
        """Yield every object key the store holds."""
        return (item.key for item in self.iter_objects())

    def sweep(self, *, abort_after_days: int) -> list[str]:
        """Remove the store's own leftovers (crashes, abandoned parts); say what went.

        Buckets do this themselves with the lifecycle rule `setup` applies.
        """
        return []

    def check_capacity(self, size: int) -> None:
        """Raise InsufficientStorage when `size` more bytes would not fit (a full disk).

        Buckets have no such limit to check; the local store keeps a free-space reserve.
        """
        return None

    @abstractmethod
    def open(self, key: str) -> BinaryIO:
        """Open the object at `key` for streaming reads."""

    @abstractmethod
    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Return `length` bytes of the object from `start`: fewer at its end, none past it.

        One request to the store (a ranged GET on S3), so reading a movie's header costs
        what it reads, never the whole file. NoSuchKey when the object is gone.
        """

    @abstractmethod
    def put(self, *, key: str, stream: Readable, size: int, content_type: str) -> None:
        """Store `size` bytes read from `stream` at `key` (server-side copies only)."""

    @abstractmethod
    def import_file(
        self, *, key: str, path: str, size: int, content_type: str, sha256: str,
        link: bool = False,
    ) -> None:
        """Store the file at `path` (`size` bytes, already hashed to `sha256`) at `key`, as
        `movievault import` does: all or nothing, even when interrupted.

        `link` asks for a hard link instead of a copy (the local store on the same
        filesystem only; otherwise ImportRefused says why).
        """


#: What a backend's own exceptions mean: the typed error to raise instead of `error` while
#: trying to `action`, or None for an exception the backend does not translate.
Meaning = Callable[[Exception, str], MovieVaultError | None]


def translate_errors(meaning: Meaning) -> Callable[[str], Callable[[F], F]]:
    """Make a backend's decorator that raises the typed errors `meaning` gives for its own.

    `@disk("read an object")` then turns, say, an OSError into StorageUnavailable: the
    callers (and the error handlers) see one vocabulary whichever backend is behind. Errors
    already typed pass through, so decorated methods may call each other.
    """

    def for_action(action: str) -> Callable[[F], F]:
        def decorate(func: F) -> F:
            if inspect.isgeneratorfunction(func):
                # Its body runs while the caller iterates, after the wrapper has returned.
                raise TypeError(f"{func.__qualname__} is a generator: return a list instead")

            @wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                try:
                    return func(*args, **kwargs)
                except Exception as error:
                    translated = meaning(error, action)
                    if translated is None:
                        raise
                    raise translated from error

            return cast(F, wrapper)

        return decorate

    return for_action


@dataclass(frozen=True)
class Presentation:
    """How the store serves an object: its Content-Type, Content-Disposition and CSP."""

    content_type: str
    disposition: str
    policy: str


def present(*, filename: str, content_type: str, inline: bool) -> Presentation:
    """Decide how an object is served; both backends ask this, whoever signed the URL.

    Only media and the app's own subtitle and poster types are shown in place (and only
    when `inline` is asked for). Everything else is an attachment of type
    application/octet-stream, so an upload can never become a page, a script or a style
    sheet, whatever type its uploader declared. The local store also sends the policy (and
    `X-Content-Type-Options: nosniff`); S3 cannot send them, and serves from its own origin.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    # A `+xml` type is a document to browsers whatever its family ("video/x+xml" too).
    media = kind.startswith(("video/", "audio/")) and not kind.endswith("+xml")
    if not (media or kind in INLINE_TYPES) or not _TYPE.fullmatch(kind):
        return Presentation(
            content_type=INERT_TYPE,
            disposition=content_disposition(filename, inline=False),
            policy=OBJECT_POLICY,
        )
    return Presentation(
        content_type=kind,
        disposition=content_disposition(filename, inline=inline),
        policy=MEDIA_POLICY if media and inline else OBJECT_POLICY,
    )


def content_disposition(filename: str, *, inline: bool) -> str:
    """Build an RFC 6266 Content-Disposition with an ASCII fallback and `filename*`."""
    disposition = "inline" if inline else "attachment"
    fallback = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\;%' else "_" for c in filename
    ).strip() or "download"
    encoded = quote(filename, safe="")
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"


def part_size_for(size: int, preferred: int) -> int:
    """Pick a part size of at least `preferred` (and 5 MiB) so no file needs > 10,000 parts."""
    mib = 1024 * 1024
    needed = -(-size // MAX_PARTS)  # ceiling division
    part = max(preferred, MIN_PART_SIZE, needed)
    return -(-part // mib) * mib
