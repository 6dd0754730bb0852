"""Shared fixtures: a real S3 endpoint (moto server mode), the app, a live WSGI server."""

from __future__ import annotations

import os
import re
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

# moto reads this once, when it is imported: set it first so that the bucket's own CORS
# rules are what clients see (the fixture below setting it again would be too late).
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
from moto.server import ThreadedMotoServer
from waitress.server import create_server

from movievault import create_app, db, users
from movievault.client import ApiClient

PASSWORD = "correct horse battery"
MIB = 1024 * 1024


def free_port() -> int:
    """Ask the OS for a free port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def _aws_environment() -> Iterator[None]:
    """Fake credentials before any client exists; let bucket CORS rules apply."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("MOVIEVAULT_") or name.startswith("AWS_"):
            del os.environ[name]
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        MOTO_DISABLE_GLOBAL_CORS="true",
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real HTTP S3 endpoint: moto's server on 127.0.0.1 and a free port."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(params=["s3", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend under test; tests using `app` run once per backend."""
    return request.param


@pytest.fixture
def server_port() -> int:
    """The port the live server will use; known early so CORS can name the origin."""
    return free_port()


@pytest.fixture
def app_config(
    backend: str, tmp_path: Path, server_port: int, request: pytest.FixtureRequest
) -> dict[str, Any]:
    """Settings for a fresh app: its own SQLite file and its own bucket or data folder."""
    config: dict[str, Any] = {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-at-least-32-bytes-long",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'movievault.db'}",
        "MULTIPART_THRESHOLD": 6 * MIB,
        "PART_SIZE": 5 * MIB,
        "PUBLIC_URL": f"http://127.0.0.1:{server_port}",
        "STORAGE": backend,
    }
    if backend == "s3":
        config["S3_ENDPOINT_URL"] = request.getfixturevalue("s3_endpoint")
        config["S3_BUCKET"] = f"mv-{uuid.uuid4().hex[:12]}"
    else:
        config["DATA_DIR"] = str(tmp_path / "objects")
    return config


@pytest.fixture
def app(app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app with its store prepared (bucket created, CORS and lifecycle applied)."""
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    application = create_app(app_config)
    from movievault.backends import get_storage

    get_storage(application).setup(public_url=app_config["PUBLIC_URL"], abort_after_days=7)
    return application


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client for view-level tests."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """A CLI runner for command tests."""
    return app.test_cli_runner()


def make_user(app: Flask, username: str, password: str = PASSWORD) -> int:
    """Create an account directly in the database and return its id."""
    with db.session_scope(app) as session:
        user = users.create_user(session=session, username=username, password=password)
        assert user.id is not None
        return user.id


def csrf_from(html: str) -> str:
    """Read the CSRF token from a page's <meta name="csrf-token">."""
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match, "page has no csrf-token meta tag"
    return match.group(1)


@dataclass
class LiveServer:
    """The app served by waitress on 127.0.0.1, as a browser or script would reach it."""

    app: Flask
    url: str

    def session_for(self, username: str, password: str = PASSWORD) -> requests.Session:
        """Sign in over HTTP and return a session that sends the CSRF header."""
        http = requests.Session()
        page = http.get(f"{self.url}/login")
        token = csrf_from(page.text)
        answer = http.post(
            f"{self.url}/login",
            data={"username": username, "password": password, "csrf_token": token},
            allow_redirects=False,
        )
        assert answer.status_code == 302, answer.text
        library = http.get(f"{self.url}/")
        http.headers["X-CSRFToken"] = csrf_from(library.text)
        return http

    def client_for(self, username: str, password: str = PASSWORD) -> ApiClient:
        """Sign in over HTTP and return an API client for that user."""
        return ApiClient(http=self.session_for(username, password), base=self.url)


@pytest.fixture
def live_server(app: Flask, server_port: int) -> Iterator[LiveServer]:
    """Serve the app with waitress (several threads) on a free loopback port."""
    url = f"http://127.0.0.1:{server_port}"
    server = create_server(app, host="127.0.0.1", port=server_port, threads=8)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield LiveServer(app=app, url=url)
    stop_waitress(server)
    thread.join(timeout=5)
    assert not thread.is_alive(), "waitress did not stop"


@contextmanager
def serving(app: Flask, *, threads: int = 8, port: int | None = None) -> Iterator[LiveServer]:
    """Serve `app` with waitress on a (free) loopback port until the block ends (restarts)."""
    port = port or free_port()
    server = create_server(app, host="127.0.0.1", port=port, threads=threads)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{port}")
    finally:
        stop_waitress(server)
        thread.join(timeout=5)
        assert not thread.is_alive(), "waitress did not stop"


@pytest.fixture
def alice(live_server: LiveServer) -> ApiClient:
    """A signed-in API client for the user alice."""
    make_user(live_server.app, "alice")
    return live_server.client_for("alice")


@pytest.fixture
def bob(live_server: LiveServer) -> ApiClient:
    """A signed-in API client for the user bob."""
    make_user(live_server.app, "bob")
    return live_server.client_for("bob")


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


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Sign-in helpers bound to the test client."""
    return AuthActions(client)
