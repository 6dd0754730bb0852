"""What the tests share: the app served on free loopback ports, signing in, reading the
catalogue and the store, and the API's download redirect.

Plain functions and classes; the fixtures that use them are in tests/conftest.py. The
benchmarks (bench/common.py) import the port, process and sign-in helpers from here too.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlmodel import Session, SQLModel, select
from waitress.server import create_server
from werkzeug.test import TestResponse

from movievault import background, db, probing, users
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.config import DEFAULTS, settings
from movievault.errors import StorageRejected
from movievault.jobs import ProbeSettings
from movievault.models import PendingUpload, ProbeJob, StoredFile, User, utcnow
from movievault.serving import create_server as create_movievault_server
from movievault.serving import serve_options
from movievault.settings import Settings
from movievault.storage import Storage
from movievault.uploads import UploadSettings
from movievault.worker import ProbeWorker

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"
#: A secret key long enough for the app to start with (it refuses shorter ones).
SECRET_KEY = "test-secret-key-at-least-32-bytes-long"
MIB = 1024 * 1024
#: How `movievault` runs in a process of its own: exactly what the console script runs.
MOVIEVAULT = [sys.executable, "-c", "from movievault.cli import cli; cli()"]


# --- ports and processes --------------------------------------------------------------------


def _first_ephemeral_port() -> int:
    """Where the range the kernel takes outgoing connections' source ports from starts."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A port on 127.0.0.1 that nothing uses now, below the ephemeral range.

    Servers here are told their port before they bind it (the live server's is in the
    app's settings, so that CORS can name the origin). A port from binding to port 0 lies
    in the ephemeral range, where any outgoing connection of this machine (this test's
    own to the S3 endpoint, another suite's) may take it as its source port meanwhile;
    ports below that range are never handed out that way.
    """
    below = _first_ephemeral_port()
    for _ in range(200):
        port = 10_000 + secrets.randbelow(below - 10_000)  # not `random`: tests may seed it
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use: try another
            return port
    raise RuntimeError(f"no free port found between 10000 and {below}")


def environment(**settings: Any) -> dict[str, str]:
    """This environment for a `movievault` process: no MOVIEVAULT_* of its own, this
    checkout first on the import path, and `settings` as MOVIEVAULT_<NAME> variables."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("MOVIEVAULT_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({f"MOVIEVAULT_{name}": str(value) for name, value in settings.items()})
    return env


def run_without(blocked: tuple[str, ...], script: str, cwd: Path) -> str:
    """Run `script` in a fresh interpreter where the `blocked` modules (and theirs) cannot
    be imported, and return what it printed; fail with its error output if it failed.

    The movievault package is loaded first: it is the app factory, so importing any of its
    modules runs it, and it imports only Flask. Whatever needs a blocked module then fails.
    """
    prelude = (
        "import sys\n"
        "import movievault  # noqa: F401\n"
        f"BLOCKED = {blocked!r}\n"
        "for _name in [*sys.modules, *BLOCKED]:\n"
        "    if _name.split('.')[0] in BLOCKED or _name in BLOCKED:\n"
        "        sys.modules[_name] = None\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", prelude + script], env=environment(), cwd=cwd,
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    """Wait until something accepts connections on 127.0.0.1:`port`, or fail with its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited early:\n{log.read_text()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s:\n"
                       f"{log.read_text()[-3000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """Stop one process started here (by its own handle, never by name)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


# --- the app served in this process ---------------------------------------------------------


def stop_waitress(server: Any) -> None:
    """Stop a waitress server run in a thread: its loop ends once no channel is left."""

    def close_all() -> None:
        """Close the listener, the trigger and keep-alive connections of test clients."""
        for channel in list(server._map.values()):
            channel.close()

    # Run the closing inside the server's own loop: closing its sockets from this thread
    # races the loop's select(), which then fails with EBADF in the server thread. Queue it
    # and pull while holding the trigger's lock: otherwise a worker's own pull can wake the
    # loop in between, close_all closes the trigger, and this pull writes to a closed fd.
    trigger = server.trigger
    with trigger.lock:
        trigger.thunks.append(close_all)
        trigger._physical_pull()
    server.task_dispatcher.shutdown()


@contextmanager
def running(server: Any) -> Iterator[None]:
    """Run a waitress server in a thread until the block ends, then stop it."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop_waitress(server)
        thread.join(timeout=5)
        assert not thread.is_alive(), "waitress did not stop"


@dataclass
class LiveServer:
    """The app served by waitress on 127.0.0.1, as a browser or script would reach it."""

    app: Flask
    url: str

    def session_for(self, username: str, password: str = PASSWORD) -> requests.Session:
        """Sign in over HTTP and return a session that sends the CSRF header."""
        return sign_in_over_http(self.url, username, password)

    def client_for(self, username: str, password: str = PASSWORD) -> ApiClient:
        """Sign in over HTTP and return an API client for that user."""
        return ApiClient(http=self.session_for(username, password), base=self.url)


@contextmanager
def serving(app: Flask, *, threads: int = 8, port: int | None = None) -> Iterator[LiveServer]:
    """Serve `app` with waitress on a (free) loopback port until the block ends (restarts)."""
    port = port or free_port()
    with running(create_server(app, host="127.0.0.1", port=port, threads=threads)):
        yield LiveServer(app=app, url=f"http://127.0.0.1:{port}")


@contextmanager
def served(app: Flask, **overrides: Any) -> Iterator[LiveServer]:
    """Serve `app` as `movievault serve` does (its options, body limits per route)."""
    options = serve_options(settings(app), host="127.0.0.1", port=free_port(), threads=4,
                            **overrides)
    with running(create_movievault_server(app, options)):
        yield LiveServer(app=app, url=f"http://127.0.0.1:{options.adjustments['port']}")


# --- accounts and signing in ----------------------------------------------------------------


def make_user(app: Flask, username: str, password: str = PASSWORD) -> int:
    """Create an account directly in the database and return its id."""
    with db.session_scope(app) as session:
        user = users.create_user(session=session, username=username, password=password)
        assert user.id is not None
        return user.id


def user_id(app: Flask, username: str) -> int:
    """The id of the account called `username`."""
    with db.session_scope(app) as session:
        found = session.exec(select(User).where(User.username == username)).one().id
        assert found is not None
        return found


def csrf_from(html: str) -> str:
    """Read the CSRF token from a page's <meta name="csrf-token">."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


def sign_in_over_http(
    url: str, username: str, password: str = PASSWORD, *, http: requests.Session | None = None
) -> requests.Session:
    """Sign in through the real form at `url` (with `http`, if it needs an adapter or
    headers of its own); the session then sends the CSRF header, as the page does."""
    http = http or requests.Session()
    token = csrf_from(http.get(f"{url}/login", timeout=30).text)
    answer = http.post(
        f"{url}/login",
        data={"username": username, "password": password, "csrf_token": token},
        allow_redirects=False, timeout=30,
    )
    assert answer.status_code == 302, f"sign-in failed: {answer.status_code} {answer.text}"
    http.headers["X-CSRFToken"] = csrf_from(http.get(f"{url}/", timeout=30).text)
    return http


class AuthActions:
    """Sign in and out through the real forms with the Flask test client."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        """A CSRF token from a page's meta tag."""
        return csrf_from(self.client.get(path).get_data(as_text=True))

    def login(self, username: str = "alice", password: str = PASSWORD) -> Any:
        """Post the sign-in form and return the response."""
        return self.client.post(
            "/login",
            data={"username": username, "password": password, "csrf_token": self.csrf()},
        )

    def headers(self) -> dict[str, str]:
        """Headers for API calls: the CSRF token of the signed-in session."""
        return {"X-CSRFToken": self.csrf("/")}

    def logout(self) -> Any:
        """Post the sign-out form."""
        return self.client.post("/logout", data={"csrf_token": self.csrf("/")})


@dataclass
class Browser:
    """A signed-in test client and its session's CSRF token."""

    client: FlaskClient
    token: str

    def headers(self, **extra: str) -> dict[str, str]:
        """Headers for a state-changing request: the CSRF token (and `extra`)."""
        return {"X-CSRFToken": self.token, **extra}


def sign_in(app: Flask, username: str, password: str = PASSWORD) -> Browser:
    """Sign in through the login form with a new test client."""
    auth = AuthActions(app.test_client())
    answer = auth.login(username, password)
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return Browser(client=auth.client, token=auth.csrf("/"))


def attempt(app: Flask, username: str, password: str, address: str,
            headers: dict[str, str] | None = None) -> TestResponse:
    """One sign-in attempt from `address`, with a fresh browser."""
    client = app.test_client()
    environ = {"REMOTE_ADDR": address}
    token = csrf_from(client.get("/login", environ_base=environ).get_data(as_text=True))
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token},
        environ_base=environ, headers=headers or {},
    )


# --- the catalogue and the store ------------------------------------------------------------


def rows(app: Flask, model: type[SQLModel]) -> list[Any]:
    """Every row of `model` in the app's database."""
    with db.session_scope(app) as session:
        return list(session.exec(select(model)).all())


def pending(app: Flask, upload_id: str) -> PendingUpload | None:
    """The pending upload `upload_id`, read fresh from the database."""
    with db.session_scope(app) as session:
        return session.get(PendingUpload, upload_id)


def expire_in(app: Flask, upload_id: str, delta: timedelta) -> None:
    """Move an upload's expiry to `delta` from now (negative: it has expired)."""
    with db.session_scope(app) as session:
        row = session.get(PendingUpload, upload_id)
        assert row is not None
        row.expires_at = utcnow() + delta
        session.add(row)
        session.commit()


def keys(storage: Storage) -> set[str]:
    """Every object key the store holds."""
    return set(storage.iter_keys())


def open_multipart_uploads(storage: Storage) -> list[str]:
    """Keys of the multipart uploads the store still holds open, sorted."""
    if storage.kind == "s3":
        listing = storage.client.list_multipart_uploads(Bucket=storage.bucket)  # type: ignore[attr-defined]
        return sorted(u["Key"] for u in listing.get("Uploads", []))
    folder: Path = storage.uploads  # type: ignore[attr-defined]
    if not folder.is_dir():
        return []
    return sorted(
        storage._upload_key(entry.name)  # type: ignore[attr-defined]
        for entry in folder.iterdir()
    )


def add_file(
    app: Flask, owner_id: int, name: str, data: bytes = b"movie bytes",
    content_type: str = "video/mp4", file_id: int | None = None,
) -> int:
    """Store an object server-side and record it as the owner's file (with any content
    type, as releases before the allowlist could; under `file_id` if given); its id."""
    key = f"movies/{owner_id}/{secrets.token_hex(8)}"
    get_storage(app).put(key=key, stream=io.BytesIO(data), size=len(data),
                         content_type=content_type)
    with db.session_scope(app) as session:
        stored = StoredFile(
            owner_id=owner_id, name=name, size=len(data), sha256=sha256_of(data),
            content_type=content_type, key=key, id=file_id,
        )
        session.add(stored)
        session.commit()
        assert stored.id is not None
        return stored.id


def multipart_gone(storage: Storage, *, key: str, upload_id: str) -> bool:
    """Whether the store has really forgotten the multipart upload (not just the app)."""
    if storage.kind == "s3":
        listing = storage.client.list_multipart_uploads(Bucket=storage.bucket)  # type: ignore[attr-defined]
        return upload_id not in {u["UploadId"] for u in listing.get("Uploads", [])}
    try:
        storage.list_parts(key=key, upload_id=upload_id)
    except StorageRejected:
        return True
    return False


# --- probing ---------------------------------------------------------------------------------


def new_probe_worker(
    app: Flask, *, workers: int = 1, poll: float = 600.0, timeout: float = 30.0,
    storage: Storage | None = None,
) -> ProbeWorker:
    """A probe worker on `app`'s catalogue, not started (`run_once` drives it by hand).

    Its poll is long on purpose: a started worker that finds a job within seconds was woken.
    """
    return ProbeWorker(
        session_factory=lambda: Session(db.engine_of(app), expire_on_commit=False),
        storage=storage or get_storage(app),
        settings=ProbeSettings(timeout=timeout, workers=workers),
        poll=poll,
    )


@contextmanager
def probe_worker(app: Flask, **options: Any) -> Iterator[ProbeWorker]:
    """A started worker registered as the app's own (so `complete` wakes it), stopped after."""
    worker = new_probe_worker(app, **options)
    app.extensions[background.EXTENSION] = worker
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()
        app.extensions.pop(background.EXTENSION, None)
        assert not worker.running, "the probe worker did not stop"


def probe_due(app: Flask, storage: Storage | None = None) -> list[probing.Outcome]:
    """Run every due probe job in this thread, as the worker would; their outcomes."""
    worker = new_probe_worker(app, storage=storage)
    outcomes = []
    while (outcome := worker.run_once()) is not None:
        outcomes.append(outcome)
    return outcomes


def probe_job(app: Flask, file_id: int) -> ProbeJob | None:
    """The file's probe job, read fresh."""
    with db.session_scope(app) as session:
        return session.exec(select(ProbeJob).where(ProbeJob.file_id == file_id)).first()


def make_job_due(app: Flask, file_id: int) -> None:
    """Let the file's probe job run now, as if its backoff had passed."""
    with db.session_scope(app) as session:
        job = probe_job_row(session, file_id)
        job.due_at = utcnow() - timedelta(seconds=1)
        session.add(job)
        session.commit()


def probe_job_row(session: Session, file_id: int) -> ProbeJob:
    """The file's probe job in `session` (there must be one)."""
    job = session.exec(select(ProbeJob).where(ProbeJob.file_id == file_id)).first()
    assert job is not None, f"file {file_id} has no probe job"
    return job


def wait_for_media(client: ApiClient, file_id: int, timeout: float = 30) -> dict[str, Any]:
    """Poll the API until the file's probe has ended; the file as the API shows it then."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.api("GET", f"/files/{file_id}")
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()["file"]
        if shown["media"]["status"] != "pending":
            return shown
        assert time.monotonic() < deadline, f"file {file_id} still pending after {timeout} s"
        time.sleep(0.05)


# --- the API over HTTP ----------------------------------------------------------------------


def send_bytes(client: ApiClient, upload: dict[str, Any], data: bytes) -> dict[int, str] | None:
    """Send all of `data` the way the upload asks; return part ETags (None when sent whole)."""
    if upload["method"] in ("post", "put"):
        client.send_whole(upload, data).raise_for_status()
        return None
    return client.put_parts(upload, data, list(range(1, upload["part_count"] + 1)))


def post_form_of_another_size(
    client: ApiClient, extra: int, declared: int = 20_000
) -> tuple[dict[str, Any], int, requests.Response]:
    """Start a form upload of `declared` bytes, then post `extra` bytes more (fewer when
    negative): the upload, the size sent, and the store's answer to the form."""
    data = os.urandom(declared)
    sent = data[:extra] if extra < 0 else data + os.urandom(extra)
    upload = client.create(name="liar.mp4", data=data).json()["upload"]
    return upload, len(sent), client.post_form(upload, sent)


def download(client: ApiClient, file_id: int, route: str = "download") -> requests.Response:
    """Follow the app's redirect (`download` or `stream`) to the store, as a browser
    would, and return the store's answer."""
    redirect = client.http.get(f"{client.base}/files/{file_id}/{route}", allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    return requests.get(urljoin(client.base, redirect.headers["Location"]), timeout=60)


def at_once(*calls: Callable[[], requests.Response]) -> list[tuple[int, str]]:
    """Send the requests from threads released by one barrier; each one's (status, body).

    A request that raised is reported as (0, the error), never left waiting at the barrier.
    """
    barrier = threading.Barrier(len(calls), timeout=30)
    answers: list[tuple[int, str]] = [(0, "not run")] * len(calls)

    def run(index: int) -> None:
        """Wait for the other threads, then send request `index`."""
        try:
            barrier.wait()
            answer = calls[index]()
            answers[index] = (answer.status_code, answer.text)
        except BaseException as error:  # reported by the caller's assertions
            answers[index] = (0, repr(error))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


# --- response headers -----------------------------------------------------------------------


def csp(answer: TestResponse | requests.Response) -> dict[str, set[str]]:
    """The Content-Security-Policy as {directive: sources}."""
    directives: dict[str, set[str]] = {}
    for part in answer.headers["Content-Security-Policy"].split(";"):
        name, *sources = part.split()
        directives[name] = set(sources)
    return directives


def cookie_attributes(answer: TestResponse, name: str) -> dict[str, str]:
    """The attributes of the Set-Cookie header for `name`, lower-cased."""
    for header in answer.headers.getlist("Set-Cookie"):
        first, *rest = [part.strip() for part in header.split(";")]
        if first.startswith(f"{name}="):
            attributes = {}
            for part in rest:
                key, _, value = part.partition("=")
                attributes[key.lower()] = value.lower()
            return attributes
    raise AssertionError(f"no {name} cookie in {answer.headers.getlist('Set-Cookie')}")


def override_settings(app: Flask, **changes: Any) -> None:
    """Replace settings of a running `app` (lower-case names, e.g. url_expires=2) from now on,
    as if it had been started with them."""
    app.extensions["movievault.settings"] = replace(settings(app), **changes)


def upload_settings(**changes: Any) -> UploadSettings:
    """The upload protocol's settings as the defaults make them, with `changes`."""
    defaults = Settings.from_config(DEFAULTS, storage="local").uploads
    return replace(defaults, **changes)


def read_answer(sock: socket.socket, timeout: float = 5) -> bytes:
    """Everything the server sends until it closes the connection (or `timeout` passes)."""
    sock.settimeout(timeout)
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except TimeoutError:
        pass
    return answer
