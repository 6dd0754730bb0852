"""A stand-in for the app's JSON upload API and a storage endpoint, for the JS harness.

It follows the API of the core issue (section 8) closely enough to drive uploader.js, keeps
everything in memory, counts requests, and injects faults. The storage runs on a second
port (another origin, as S3 is) with CORS rules; its ETag header is exposed or not.
It checks more than S3 does: at complete, the stored bytes must hash to the declared sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from harness import serve

MiB = 1024 * 1024
CSRF_TOKEN = "harness-csrf-token"
UPLOAD_ID = re.compile(r"/up\d+")


@dataclass
class Upload:
    id: str
    name: str
    size: int
    sha256: str
    content_type: str
    method: str
    part_size: int = 0
    part_count: int = 0
    parts: dict[int, tuple[str, bytes]] = field(default_factory=dict)  # n -> (etag, data)
    body: bytes | None = None  # what a form POST stored
    url_generation: dict[int, int] = field(default_factory=dict)  # n -> newest URL issued

    def public(self, storage: str) -> dict:
        data = {"id": self.id, "method": self.method, "expires_at": "2099-01-01T00:00:00Z"}
        if self.method == "post":
            data["post"] = {
                "url": f"{storage}/post/{self.id}",
                "fields": {
                    "key": f"objects/{self.id}",
                    "Content-Type": self.content_type,
                    "policy": "eyJ4IjoxfQ==",
                    "x-amz-signature": "abc",
                },
            }
        else:
            data["part_size"] = self.part_size
            data["part_count"] = self.part_count
        return data


@dataclass
class MockState:
    """Everything the two servers share; tests read and tweak it."""

    multipart_threshold: int = 12 * MiB
    part_size: int = 5 * MiB
    expose_etag: bool = True
    # Seconds to sleep per MiB received by the storage, to make uploads observable.
    storage_delay_per_mib: float = 0.0
    storage_origin: str = ""
    files: dict[str, dict] = field(default_factory=dict)  # sha256 -> file object
    uploads: dict[str, Upload] = field(default_factory=dict)
    requests: Counter = field(default_factory=Counter)
    put_parts: list[tuple[str, int]] = field(default_factory=list)
    # Faults consumed one per matching request: "500", "403", "drop", "503".
    part_faults: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    post_faults: list[str] = field(default_factory=list)
    api_faults: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    csrf_failures: int = 0
    # Part numbers each status call answered, in order.
    status_answers: list[list[int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def new_id(self) -> str:
        with self.lock:
            self.next_id += 1
            return f"up{self.next_id}"


# ---- the JSON API, as routes of the harness server --------------------------------------


def api_route(state: MockState):
    """A harness route answering /api/... like the app would."""

    def route(handler: BaseHTTPRequestHandler, method: str, path: str) -> bool:
        if not path.startswith("/api/"):
            return False
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        key = f"{method} {UPLOAD_ID.sub('/<id>', path)}"
        state.requests[key] += 1
        if handler.headers.get("X-CSRFToken") != CSRF_TOKEN or (
            "application/json" not in (handler.headers.get("Content-Type") or "")
        ):
            state.csrf_failures += 1
            return reply(handler, 400, {"error": "The CSRF token is missing."})
        faults = state.api_faults.get(key)
        if faults:
            fault = faults.pop(0)
            return reply(
                handler, int(fault), {"error": f"Injected failure {fault}: storage unavailable."}
            )
        body = json.loads(raw) if raw else {}
        status, data = dispatch(state, method, path, body)
        return reply(handler, status, data)

    return route


def dispatch(state: MockState, method: str, path: str, body: dict) -> tuple[int, dict | None]:
    """Answer one API call (status, JSON body)."""
    if method == "POST" and path == "/api/files/check":
        files = body["files"]
        assert len(files) <= 1000
        return 200, {
            "results": [
                {
                    "sha256": f["sha256"],
                    "duplicate": f["sha256"] in state.files,
                    "file": state.files.get(f["sha256"]),
                }
                for f in files
            ]
        }
    if method == "POST" and path == "/api/uploads":
        return create_upload(state, body)
    match = re.fullmatch(r"/api/uploads/(up\d+)(/parts|/complete)?", path)
    if not match or match.group(1) not in state.uploads:
        return 404, {"error": "No such upload."}
    upload = state.uploads[match.group(1)]
    action = match.group(2)
    if method == "GET" and action is None:
        parts = [
            {"part_number": n, "etag": etag, "size": len(data)}
            for n, (etag, data) in sorted(upload.parts.items())
        ]
        state.status_answers.append([p["part_number"] for p in parts])
        return 200, {"upload": upload.public(state.storage_origin), "uploaded_parts": parts}
    if method == "DELETE" and action is None:
        del state.uploads[upload.id]
        return 204, None
    if method == "POST" and action == "/parts":
        numbers = body["part_numbers"]
        assert 1 <= len(numbers) <= 100, numbers
        urls = []
        for n in numbers:
            upload.url_generation[n] = upload.url_generation.get(n, 0) + 1
            gen = upload.url_generation[n]
            urls.append(
                {"part_number": n, "url": f"{state.storage_origin}/part/{upload.id}/{n}?gen={gen}"}
            )
        return 200, {"parts": urls}
    if method == "POST" and action == "/complete":
        return complete_upload(state, upload, body)
    return 405, {"error": "Method not allowed."}


def create_upload(state: MockState, body: dict) -> tuple[int, dict]:
    sha, size = body["sha256"], body["size"]
    if not re.fullmatch(r"[0-9a-f]{64}", sha) or not isinstance(size, int) or size < 1:
        return 400, {"error": "Invalid sha256 or size."}
    if sha in state.files:
        return 200, {"duplicate": True, "file": state.files[sha]}
    for upload in state.uploads.values():
        if upload.sha256 == sha:
            return 200, {"upload": upload.public(state.storage_origin)}
    multipart = size > state.multipart_threshold
    upload = Upload(
        id=state.new_id(),
        name=body["name"],
        size=size,
        sha256=sha,
        content_type=body["content_type"],
        method="multipart" if multipart else "post",
    )
    if multipart:
        upload.part_size = state.part_size
        upload.part_count = -(-size // state.part_size)
    state.uploads[upload.id] = upload
    return 201, {"upload": upload.public(state.storage_origin)}


def complete_upload(state: MockState, upload: Upload, body: dict) -> tuple[int, dict]:
    if upload.method == "post":
        data = upload.body
        if data is None:
            return 422, {"error": "Nothing was uploaded."}
    else:
        listed = body.get("parts", [])
        numbers = [p["part_number"] for p in listed]
        if numbers != list(range(1, upload.part_count + 1)):
            return 422, {"error": f"Parts missing or out of order: {numbers}"}
        for p in listed:
            stored = upload.parts.get(p["part_number"])
            if not stored or stored[0] != p["etag"]:
                return 422, {"error": f"InvalidPart {p['part_number']}"}
        data = b"".join(upload.parts[n][1] for n in numbers)
    if len(data) != upload.size or hashlib.sha256(data).hexdigest() != upload.sha256:
        del state.uploads[upload.id]
        return 422, {"error": "The stored object does not match the declared size or hash."}
    file = {
        "id": len(state.files) + 1,
        "name": upload.name,
        "size": upload.size,
        "sha256": upload.sha256,
        "content_type": upload.content_type,
        "created_at": "2025-01-01T00:00:00Z",
    }
    state.files[upload.sha256] = file
    del state.uploads[upload.id]
    return 201, {"file": file}


def reply(handler: BaseHTTPRequestHandler, status: int, data: dict | None) -> bool:
    body = b"" if data is None else json.dumps(data).encode()
    handler.send_response(status)
    if data is not None:
        handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return True


# ---- the storage ---------------------------------------------------------------------------


def storage_handler(state: MockState) -> type[BaseHTTPRequestHandler]:
    """Form POST and part PUT endpoints with S3-like CORS and errors."""

    class Storage(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

        def handle(self) -> None:
            try:
                super().handle()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the browser aborted the request (cancel, closed tab)

        def cors(self) -> None:
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin") or "*")
            self.send_header("Access-Control-Allow-Methods", "GET, PUT, POST, HEAD")
            self.send_header("Access-Control-Allow-Headers", "*")
            self.send_header("Access-Control-Max-Age", "600")
            if state.expose_etag:
                self.send_header("Access-Control-Expose-Headers", "ETag")

        def do_OPTIONS(self) -> None:  # noqa: N802
            self.send_response(200)
            self.cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def answer(self, status: int, etag: str | None = None, error: str | None = None) -> None:
            body = b""
            if error:
                body = (
                    f"<?xml version='1.0'?><Error><Code>{error}</Code>"
                    f"<Message>Injected {error}</Message></Error>"
                ).encode()
            self.send_response(status)
            self.cors()
            if etag:
                self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def read_body(self) -> bytes:
            left = int(self.headers.get("Content-Length") or 0)
            chunks = []
            while left:
                chunk = self.rfile.read(min(left, MiB))
                if not chunk:
                    raise ConnectionResetError  # cut off: store nothing, as S3 does
                chunks.append(chunk)
                left -= len(chunk)
                if state.storage_delay_per_mib:
                    time.sleep(state.storage_delay_per_mib * len(chunk) / MiB)
            return b"".join(chunks)

        def fault(self, faults: list[str]) -> bool:
            """Apply the next injected fault, if any; True when the request was answered."""
            if not faults:
                return False
            kind = faults.pop(0)
            if kind == "drop":
                self.close_connection = True
                self.connection.shutdown(2)
            elif kind == "403":
                self.answer(403, error="AccessDenied")
            else:
                self.answer(int(kind), error="InternalError")
            return True

        def do_PUT(self) -> None:  # noqa: N802
            url = urlsplit(self.path)
            match = re.fullmatch(r"/part/(up\d+)/(\d+)", url.path)
            if match:  # counted when it starts, so a test can tell page sessions apart
                state.put_parts.append((match.group(1), int(match.group(2))))
            data = self.read_body()
            if not match:
                self.answer(404, error="NoSuchKey")
                return
            upload_id, n = match.group(1), int(match.group(2))
            if self.fault(state.part_faults[n]):
                return
            upload = state.uploads.get(upload_id)
            if upload is None:
                self.answer(404, error="NoSuchUpload")
                return
            gen = int(parse_qs(url.query).get("gen", ["0"])[0])
            if gen != upload.url_generation.get(n):
                self.answer(403, error="AccessDenied")  # an older URL: "expired"
                return
            etag = f'"{hashlib.md5(data).hexdigest()}"'
            upload.parts[n] = (etag, data)
            self.answer(200, etag=etag)

        def do_POST(self) -> None:  # noqa: N802
            match = re.fullmatch(r"/post/(up\d+)", self.path)
            data = self.read_body()
            if not match or match.group(1) not in state.uploads:
                self.answer(404, error="NoSuchKey")
                return
            if self.fault(state.post_faults):
                return
            upload = state.uploads[match.group(1)]
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + data
            )
            names = [
                part.get_param("name", header="content-disposition")
                for part in message.iter_parts()
            ]
            if names[-1] != "file" or f"objects/{upload.id}" != _field(message, "key"):
                self.answer(400, error="InvalidArgument")
                return
            upload.body = list(message.iter_parts())[-1].get_payload(decode=True)
            self.answer(204)

    return Storage


def _field(message, name: str) -> str | None:
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            return part.get_content()
    return None


@contextlib.contextmanager
def mock_servers(state: MockState) -> Iterator[int]:
    """The harness server (pages, static, API) and the storage; yields the app's port."""
    storage = ThreadingHTTPServer(("127.0.0.1", 0), storage_handler(state))
    storage.daemon_threads = True
    thread = threading.Thread(target=storage.serve_forever, daemon=True)
    thread.start()
    state.storage_origin = f"http://127.0.0.1:{storage.server_address[1]}"
    try:
        with serve(routes=[api_route(state)]) as port:
            yield port
    finally:
        storage.shutdown()
        storage.server_close()
