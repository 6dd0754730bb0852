"""What the local store's URLs do, as S3 would: the request handling, without Flask.

Each call checks the URL's token (`tokens.py`) against what the request asks for, then
lets the store (`local.py`) write or open the bytes. The views in
`movievault/storage_http.py` only read the request and send back what these return.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from werkzeug.datastructures import IfRange, Range
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

from movievault.errors import AccessDenied, InvalidInput
from movievault.storage.base import (
    CHECKSUM_HEADER,
    MAX_PARTS,
    Presentation,
    Readable,
    present,
    sha256_base64,
    sha256_hex_of,
)
from movievault.storage.disk import CHUNK, disk_errors
from movievault.storage.local import LocalStorage

#: Form fields before the file (key, Content-Type, token) are tiny; cap what is buffered.
MAX_FIELD_BYTES = 64 * 1024
MAX_FORM_PARTS = 32
#: What `byte_range` answers for a range past the end of the object (416).
UNSATISFIABLE = (-1, -1)


@dataclass(frozen=True)
class Download:
    """A checked GET: the opened file (the caller closes it), and how to present it."""

    file: BinaryIO
    size: int
    mtime: float
    etag: str
    presentation: Presentation

    @property
    def last_modified(self) -> datetime:
        """The object's modification time, whole seconds (as HTTP dates carry them)."""
        return datetime.fromtimestamp(int(self.mtime), tz=UTC)


class _FormFile:
    """A multipart/form-data body read as S3 reads it: the fields, then the file as a stream.

    The file is the last field S3 reads; whatever follows it is ignored.
    """

    def __init__(self, stream: Readable, boundary: bytes) -> None:
        self._stream = stream
        self._decoder = MultipartDecoder(
            boundary, max_form_memory_size=CHUNK + MAX_FIELD_BYTES, max_parts=MAX_FORM_PARTS
        )
        self._done = False

    def _next_event(self) -> Any:
        """The decoder's next event, reading more of the body when it needs it."""
        try:
            while (event := self._decoder.next_event()) is NEED_DATA:
                self._decoder.receive_data(self._stream.read(CHUNK) or None)
        except (ValueError, RequestEntityTooLarge) as error:
            raise InvalidInput(f"MalformedPOSTRequest: {error}") from None
        return event

    def fields(self) -> dict[str, str]:
        """Read the fields up to the start of the file (none: InvalidInput)."""
        fields: dict[str, bytearray] = {}
        current: bytearray | None = None
        while not isinstance(event := self._next_event(), File):
            if isinstance(event, Field):
                current = fields.setdefault(event.name, bytearray())
                current.clear()
            elif isinstance(event, Data) and current is not None:
                current.extend(event.data)
                if sum(len(value) for value in fields.values()) > MAX_FIELD_BYTES:
                    raise InvalidInput("MalformedPOSTRequest: the fields are too large.")
            elif isinstance(event, Epilogue):
                raise InvalidInput(
                    "MalformedPOSTRequest: the form has no file field (it must come last)."
                )
        return {name: bytes(value).decode("utf-8", "replace") for name, value in fields.items()}

    def read(self, size: int = -1) -> bytes:
        """The file's next bytes (as they arrive, whatever `size`); b"" at its end."""
        while not self._done:
            event = self._next_event()
            if isinstance(event, Data):
                self._done = not event.more_data
                if event.data:
                    return bytes(event.data)
            elif isinstance(event, Epilogue):
                self._done = True
        return b""


@disk_errors("receive a form upload")
def receive_form(store: LocalStorage, *, stream: Readable, boundary: bytes) -> str:
    """Read a multipart/form-data body, file field last, into the signed object.

    The fields before the file are checked (signature, key, Content-Type) before a single
    byte of the file is written; the file is then streamed to .tmp/ in chunks and refused
    as soon as it passes the signed size. Fields after the file are ignored, as S3 does.
    Returns the key stored.
    """
    store.check_ready()
    form = _FormFile(stream, boundary)
    fields = form.fields()
    claims = store.tokens.verify(fields.get("token"), "post")
    if fields.get("key") != claims["key"]:
        raise AccessDenied("AccessDenied: the key field is not the one signed for.")
    if fields.get("Content-Type") != claims["type"]:
        raise AccessDenied("AccessDenied: the Content-Type field is not the one signed for.")
    key = str(claims["key"])
    store.check_writable(key)  # refused before a byte of the file is read
    store.write_upload(key=key, size=int(claims["size"]), stream=form)
    return key


def _checked_length(length: int | None, size: int) -> None:
    """Refuse a Content-Length other than the signed size (S3 signs it too)."""
    if length is not None and length != size:
        raise InvalidInput(
            f"IncompleteBody: Content-Length is {length}; exactly {size} bytes were signed for."
        )


def _expected_sha256(claims: dict[str, Any], header: str | None) -> str | None:
    """The SHA-256 (hex) the body must have: the signed one, whose header must then come
    with the request unchanged, or else the one a checksum header gives of its own accord
    (S3 checks any checksum header it receives); None when there is neither."""
    signed = claims.get("sha256")
    if signed is not None:
        if header is None or header.strip() != sha256_base64(str(signed)):
            raise AccessDenied(
                f"SignatureDoesNotMatch: send the {CHECKSUM_HEADER} header this URL was "
                "signed with."
            )
        return str(signed)
    if header is None:
        return None
    given = sha256_hex_of(header)
    if given is None:
        raise InvalidInput(
            f"InvalidRequest: the {CHECKSUM_HEADER} header must be the base64 of a SHA-256."
        )
    return given


@disk_errors("receive an upload")
def receive_put(
    store: LocalStorage,
    *,
    token: str | None,
    stream: Readable,
    length: int | None,
    content_type: str | None,
    checksum: str | None,
) -> str:
    """Check a PUT upload's signature, type, length and checksum header, then store its
    body once (refused with BadDigest if its SHA-256 differs); return the key stored."""
    store.check_ready()
    claims = store.tokens.verify(token, "put")
    if content_type != claims["type"]:
        raise AccessDenied(
            "SignatureDoesNotMatch: send the Content-Type header this URL was signed with."
        )
    size = int(claims["size"])
    _checked_length(length, size)
    sha256 = _expected_sha256(claims, checksum)
    key = str(claims["key"])
    store.check_writable(key)  # refused before a byte of the body is read
    store.write_upload(key=key, size=size, stream=stream, sha256=sha256)
    return key


@disk_errors("receive a part")
def receive_part(
    store: LocalStorage,
    *,
    token: str | None,
    upload_id: str,
    part_number: int,
    stream: Readable,
    length: int | None,
    checksum: str | None = None,
) -> str:
    """Check a part PUT's signature, length and checksum header, then store the part
    (refused with BadDigest if its SHA-256 differs); return its ETag."""
    store.check_ready()
    claims = store.tokens.verify(token, "part")
    if not 1 <= part_number <= MAX_PARTS:
        raise InvalidInput(f"InvalidArgument: part numbers run from 1 to {MAX_PARTS}.")
    if (claims["upload"], claims["part"]) != (upload_id, part_number):
        raise AccessDenied("AccessDenied: this signature is for another part.")
    size = int(claims["size"])
    _checked_length(length, size)
    return store.write_part(
        key=claims["key"], upload_id=upload_id, part_number=part_number, size=size,
        stream=stream, sha256=_expected_sha256(claims, checksum),
    )


@disk_errors("read an object")
def resolve_download(store: LocalStorage, *, key: str, token: str | None) -> Download:
    """Check a GET's signature and return the file and how to present it."""
    store.check_ready()
    claims = store.tokens.verify(token, "get")
    if claims["key"] != key:
        raise AccessDenied("AccessDenied: this signature is for another object.")
    opened = store.open_object(key)
    # Decided now rather than when signing, so URLs signed by older releases obey too.
    presentation = present(
        filename=str(claims["name"]), content_type=str(claims["type"]),
        inline=bool(claims["inline"]),
    )
    return Download(
        file=opened.file, size=opened.size, mtime=opened.mtime, etag=opened.etag,
        presentation=presentation,
    )


def byte_range(
    download: Download, *, wanted: Range | None, if_range: IfRange
) -> tuple[int, int] | None:
    """The requested (start, stop) span, None to send everything, UNSATISFIABLE for a 416."""
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None  # absent, unreadable or multi-range: RFC 9110 lets us send it all
    if if_range.etag is not None and f'"{if_range.etag}"' != download.etag:
        return None  # the client's copy is of another version: send the whole new one
    if if_range.date is not None and if_range.date < download.last_modified:
        return None
    start, stop = wanted.ranges[0]
    if start < 0:  # a suffix: the last -start bytes
        start, stop = max(0, download.size + start), download.size
    stop = download.size if stop is None else min(stop, download.size)
    if start >= download.size or start >= stop:
        return UNSATISFIABLE
    return start, stop


def object_headers(download: Download) -> dict[str, str]:
    """The headers of every answer with the object: as `present` decided, never sniffed."""
    shown = download.presentation
    return {
        "Accept-Ranges": "bytes",
        "Content-Disposition": shown.disposition,
        "Content-Security-Policy": shown.policy,
        "X-Content-Type-Options": "nosniff",
        "ETag": download.etag,
        "Cache-Control": "private, max-age=0",
    }


def cors_headers(*, origin: str | None, allowed: str, preflight: bool) -> dict[str, str]:
    """What lets a page of the `allowed` origin (only) send parts and forms, and read answers.

    The requests carry no cookie (the signature is the credential), so no credentials are
    allowed; the ETag of a part must be exposed, or the page could not read it.
    """
    if not origin or origin.lower() != allowed:
        return {}
    headers = {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": "ETag"}
    if preflight:
        headers["Access-Control-Allow-Methods"] = "GET, HEAD, PUT, POST"
        headers["Access-Control-Allow-Headers"] = f"Content-Type, {CHECKSUM_HEADER}"
        headers["Access-Control-Max-Age"] = "3600"
    return headers


class Window:
    """A byte range of an open file that reads, seeks and tells as if it were the file.

    Handing this to the server's `wsgi.file_wrapper` lets waitress send a ranged answer
    from its own I/O loop, as it does for whole files, instead of keeping a worker thread
    busy for as long as a slow player takes to read it.
    """

    def __init__(self, file: BinaryIO, start: int, length: int) -> None:
        self.file = file
        self.start = start
        self.length = length
        self.position = 0
        file.seek(start)

    def read(self, size: int | None = -1) -> bytes:
        """Read up to `size` bytes, never past the end of the range."""
        remaining = self.length - self.position
        if size is None or size < 0 or size > remaining:
            size = remaining
        if size <= 0:
            return b""
        data = self.file.read(size)
        self.position += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        """Move within the range (positions are relative to its start)."""
        base = (0, self.position, self.length)[whence]
        self.position = min(max(0, base + offset), self.length)
        self.file.seek(self.start + self.position)
        return self.position

    def tell(self) -> int:
        """Position within the range."""
        return self.position

    def seekable(self) -> bool:
        """Always: it is a window on a regular file."""
        return True

    def close(self) -> None:
        """Close the file."""
        self.file.close()
