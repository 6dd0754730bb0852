"""The local store's own URLs: form POST or PUT, part PUT and ranged GET, checked by
signature.

Like presigned S3 URLs they need no session cookie (and set none) and are exempt from
CSRF: the signature in each URL is the credential. These views only read the request and
write the response; what the URLs do is `movievault.storage.local_requests`.

With STORAGE_ORIGIN they are reached on another host name or port (a reverse proxy maps
it to this app): that host serves nothing but them, and they answer CORS for PUBLIC_URL,
as a bucket does, so the page can send parts and forms there.
"""

from __future__ import annotations

from typing import IO, cast
from urllib.parse import urlsplit

from flask import Blueprint, Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound
from werkzeug.wsgi import wrap_file

from movievault.backends import get_storage
from movievault.config import settings
from movievault.errors import InvalidInput
from movievault.security import csrf
from movievault.storage import CHECKSUM_HEADER, local_requests
from movievault.storage.disk import CHUNK
from movievault.storage.local import LocalStorage

bp = Blueprint("local_storage", __name__, url_prefix="/storage")


def _store() -> LocalStorage:
    """The app's local store."""
    storage = get_storage()
    assert isinstance(storage, LocalStorage)
    return storage


@bp.before_request
def _only_for_the_local_store() -> None:
    """These URLs exist only when the app keeps objects on its own disk."""
    if settings().storage != "local":
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
    origin = settings().storage_origin
    if origin and request.blueprint != bp.name and request.host.lower() == _host_of(origin):
        raise NotFound()


@bp.after_request
def _cors(response: Response) -> Response:
    """Let pages of PUBLIC_URL (only) send parts and forms here and read the answers."""
    response.vary.add("Origin")
    response.headers.update(local_requests.cors_headers(
        origin=request.headers.get("Origin"),
        allowed=_origin_of(settings().public_url),
        preflight=request.method == "OPTIONS",
    ))
    return response


@bp.post("/upload")
def upload_form() -> ResponseReturnValue:
    """Receive a browser form upload (fields, then the file last); answer 204 like S3."""
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != "multipart/form-data" or not boundary:
        raise InvalidInput("PreconditionFailed: the body must be multipart/form-data.")
    local_requests.receive_form(
        _store(), stream=request.stream, boundary=boundary.encode("latin-1")
    )
    return "", 204


@bp.put("/upload")
def upload_put() -> ResponseReturnValue:
    """Receive one PUT of a whole file, with its signed headers; answer 200 like S3."""
    local_requests.receive_put(
        _store(),
        token=request.args.get("token"),
        stream=request.stream,
        length=request.content_length,
        content_type=request.headers.get("Content-Type"),
        checksum=request.headers.get(CHECKSUM_HEADER),
    )
    return "", 200


@bp.put("/parts/<upload_id>/<int:part_number>")
def upload_part(upload_id: str, part_number: int) -> ResponseReturnValue:
    """Receive one part of a multipart upload; its ETag goes back in the header."""
    etag = local_requests.receive_part(
        _store(),
        token=request.args.get("token"),
        upload_id=upload_id,
        part_number=part_number,
        stream=request.stream,
        length=request.content_length,
        checksum=request.headers.get(CHECKSUM_HEADER),
    )
    response = Response(status=200)
    response.headers["ETag"] = etag
    return response


@bp.get("/objects/<path:key>")
def get_object(key: str) -> ResponseReturnValue:
    """Send the object (or a range) under its signed name, as `present` decided to show it."""
    download = local_requests.resolve_download(_store(), key=key, token=request.args.get("token"))
    headers = local_requests.object_headers(download)
    span = local_requests.byte_range(download, wanted=request.range, if_range=request.if_range)
    if span == local_requests.UNSATISFIABLE:
        download.file.close()
        response = jsonify(error="InvalidRange: the requested range is not satisfiable.")
        response.status_code = 416
        response.headers["Content-Range"] = f"bytes */{download.size}"
        return response
    start, stop = span or (0, download.size)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{download.size}"
    window = local_requests.Window(download.file, start, stop - start)
    # wrap_file is typed for a whole IO[bytes]; it and the server's wsgi.file_wrapper only
    # call read, seekable, seek, tell and close, all of which Window has.
    response = Response(
        wrap_file(request.environ, cast(IO[bytes], window), CHUNK),
        status=206 if span is not None else 200,
        headers=headers,
        mimetype=None,
        content_type=download.presentation.content_type,
        direct_passthrough=True,
    )
    response.content_length = stop - start
    response.last_modified = download.last_modified
    return response


def init_app(app: Flask) -> None:
    """Serve the local store's URLs, with no CSRF check (the signature is the credential)."""
    csrf.exempt(bp)
    app.register_blueprint(bp)
    app.before_request(_only_the_store_on_its_origin)
