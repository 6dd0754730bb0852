"""The local store's own URLs: form POST, part PUT and ranged GET, checked by signature.

Like presigned S3 URLs they need no session cookie (and set none) and are exempt from
CSRF: the signature in each URL is the credential. The work happens in `local.py`.

With STORAGE_ORIGIN they are reached on another host name or port (a reverse proxy maps
it to this app): that host serves nothing but them, and they answer CORS for PUBLIC_URL,
as a bucket does, so the page can send parts and forms there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import NotFound
from werkzeug.wsgi import wrap_file

from movievault.errors import InvalidInput
from movievault.security import csrf
from movievault.storage import get_storage, storage_kind
from movievault.storage.local import CHUNK, Download, LocalStorage

bp = Blueprint("local_storage", __name__, url_prefix="/storage")


def _store() -> LocalStorage:
    """The app's local store."""
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    return storage


@bp.before_request
def _only_for_the_local_store() -> None:
    """These URLs exist only when the app keeps objects on its own disk."""
    if storage_kind(current_app.config) != "local":
        raise NotFound()


def _origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _host_of(origin: str) -> str:
    """The Host header requests to `origin` carry (default ports are left out)."""
    parts = urlsplit(origin)
    default = {"http": 80, "https": 443}[parts.scheme]
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def _only_the_store_on_its_origin() -> None:
    """On STORAGE_ORIGIN's host, serve the store's URLs and nothing else (404)."""
    origin = current_app.config["STORAGE_ORIGIN"]
    if origin and request.blueprint != bp.name and request.host.lower() == _host_of(origin):
        raise NotFound()


@bp.after_request
def _cors(response: Response) -> Response:
    """Let pages of PUBLIC_URL (only) send parts and forms here and read the answers.

    The requests carry no cookie (the signature is the credential), so no credentials are
    allowed; the ETag of a part must be exposed, or the page could not read it.
    """
    response.vary.add("Origin")
    if request.headers.get("Origin", "").lower() != _origin_of(current_app.config["PUBLIC_URL"]):
        return response
    response.headers["Access-Control-Allow-Origin"] = request.headers["Origin"]
    response.headers["Access-Control-Expose-Headers"] = "ETag"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, PUT, POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "3600"
    return response


@bp.post("/upload")
def upload_form() -> tuple[str, int]:
    """Receive a browser form upload (fields, then the file last); answer 204 like S3."""
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != "multipart/form-data" or not boundary:
        raise InvalidInput("PreconditionFailed: the body must be multipart/form-data.")
    _store().receive_form(stream=request.stream, boundary=boundary.encode("latin-1"))
    return "", 204


@bp.put("/parts/<upload_id>/<int:part_number>")
def upload_part(upload_id: str, part_number: int) -> Response:
    """Receive one part of a multipart upload; its ETag goes back in the header."""
    etag = _store().receive_part(
        token=request.args.get("token"),
        upload_id=upload_id,
        part_number=part_number,
        stream=request.stream,
        length=request.content_length,
    )
    response = Response(status=200)
    response.headers["ETag"] = etag
    return response


class _Window:
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


def _range_for(download: Download) -> tuple[int, int] | None:
    """The requested (start, stop) span, None to send everything; 416 when unsatisfiable."""
    wanted = request.range
    if wanted is None or wanted.units != "bytes" or len(wanted.ranges) != 1:
        return None  # absent, unreadable or multi-range: RFC 9110 lets us send it all
    if_range = request.if_range
    if if_range.etag is not None and f'"{if_range.etag}"' != download.etag:
        return None  # the client's copy is of another version: send the whole new one
    if if_range.date is not None and if_range.date < _last_modified(download):
        return None
    start, stop = wanted.ranges[0]
    if start < 0:  # a suffix: the last -start bytes
        start, stop = max(0, download.size + start), download.size
    stop = download.size if stop is None else min(stop, download.size)
    if start >= download.size or start >= stop:
        return (-1, -1)
    return start, stop


def _last_modified(download: Download) -> datetime:
    """The object's modification time, whole seconds (as HTTP dates carry them)."""
    return datetime.fromtimestamp(int(download.mtime), tz=UTC)


@bp.get("/objects/<path:key>")
def get_object(key: str) -> Response:
    """Send the object (or a range) under its signed name, as `present` decided to show it."""
    download = _store().resolve_download(key=key, token=request.args.get("token"))
    shown = download.presentation
    headers: dict[str, Any] = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": shown.disposition,
        "Content-Security-Policy": shown.policy,
        "X-Content-Type-Options": "nosniff",
        "ETag": download.etag,
        "Cache-Control": "private, max-age=0",
    }
    span = _range_for(download)
    if span == (-1, -1):
        download.file.close()
        response = jsonify(error="InvalidRange: the requested range is not satisfiable.")
        response.status_code = 416
        response.headers["Content-Range"] = f"bytes */{download.size}"
        return response
    start, stop = span or (0, download.size)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{download.size}"
    body = wrap_file(request.environ, _Window(download.file, start, stop - start), CHUNK)
    response = Response(
        body,
        status=206 if span is not None else 200,
        headers=headers,
        mimetype=None,
        content_type=shown.content_type,
        direct_passthrough=True,
    )
    response.content_length = stop - start
    response.last_modified = _last_modified(download)
    return response


def init_app(app: Flask) -> None:
    """Serve the local store's URLs, with no CSRF check (the signature is the credential)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.before_request(_only_the_store_on_its_origin)
