"""Shared fixtures: a real S3 endpoint (moto server mode), the app, a live WSGI server.

The helpers they use, and that tests import, are in tests/support.py.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

# moto reads this once, when it is imported: set it first so that the bucket's own CORS
# rules are what clients see (the fixture below setting it again would be too late).
os.environ["MOTO_DISABLE_GLOBAL_CORS"] = "true"
from moto.server import ThreadedMotoServer

from movievault import create_app
from movievault.client import ApiClient
from movievault.storage.base import Storage
from movievault.storage.local import LocalStorage
from movievault.storage.s3 import S3Storage
from tests import media

# Failed asserts inside the helpers report their values, as in the tests themselves.
pytest.register_assert_rewrite("tests.support")
from tests import localstack, postgres  # noqa: E402
from tests.support import (  # noqa: E402
    MIB,
    SECRET_KEY,
    AuthActions,
    LiveServer,
    free_port,
    make_user,
    serving,
)

# Property tests check results, not speed: on two busy cores one example can take more
# than hypothesis's default deadline of 200 ms without anything being wrong.
hypothesis.settings.register_profile("movievault", deadline=None)
hypothesis.settings.load_profile("movievault")


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


@pytest.fixture(scope="session")
def localstack_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """LocalStack's S3 checking signatures, one for the whole strict S3 lane; in CI a
    missing LocalStack fails the run (scripts/install-localstack), elsewhere it skips."""
    reason = localstack.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with localstack.running(tmp_path_factory.mktemp("localstack")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[postgres.PostgresServer]:
    """A PostgreSQL server for this worker's tests, stopped at the end; in CI a missing
    server fails the run (scripts/install-postgresql), elsewhere it skips."""
    reason = postgres.missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    with postgres.running() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: postgres.PostgresServer) -> Iterator[str]:
    """The URL of a fresh empty PostgreSQL database (`postgresql+psycopg://...`), dropped
    after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_catalogue_url(postgres_server: postgres.PostgresServer) -> Iterator[str]:
    """The URL of a fresh PostgreSQL database holding an empty catalogue at the newest
    revision (copied from a template: apps start on it without migrating), dropped after."""
    name = postgres_server.create_catalogue()
    yield postgres_server.url(name)
    postgres_server.drop_database(name)


@pytest.fixture
def database() -> str:
    """The catalogue's database: SQLite, unless a test runs on both
    (`postgres.parametrize_databases`, or its own parameter)."""
    return "sqlite"


@pytest.fixture(params=["s3", "local"])
def backend(request: pytest.FixtureRequest) -> str:
    """The storage backend under test; tests using `app` run once per backend."""
    return request.param


@pytest.fixture
def server_port() -> int:
    """The port the live server will use; known early so CORS can name the origin."""
    return free_port()


@pytest.fixture
def storage_port() -> int:
    """A second free port, for the local store on an origin of its own (STORAGE_ORIGIN)."""
    return free_port()


@pytest.fixture
def upload_method() -> str:
    """S3_UPLOAD_METHOD of the app under test (a test module or parameter may change it)."""
    return "auto"


@pytest.fixture
def checksums() -> str:
    """S3_CHECKSUMS of the app under test (a test module or parameter may change it)."""
    return "on"


@pytest.fixture
def app_config(
    backend: str, tmp_path: Path, server_port: int, request: pytest.FixtureRequest,
    upload_method: str, checksums: str, database: str,
) -> dict[str, Any]:
    """Settings for a fresh app: its own catalogue (a SQLite file, or an empty PostgreSQL
    database when `database` is "postgres") and its own bucket or data folder."""
    config: dict[str, Any] = {
        "S3_UPLOAD_METHOD": upload_method,
        "S3_CHECKSUMS": checksums,
        "TESTING": True,
        "SECRET_KEY": SECRET_KEY,
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
    if database == "postgres":
        config["DATABASE_URL"] = request.getfixturevalue("postgres_catalogue_url")
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


@pytest.fixture
def live_server(app: Flask, server_port: int) -> Iterator[LiveServer]:
    """Serve the app with waitress (several threads) on a free loopback port."""
    with serving(app, port=server_port) as server:
        yield server


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


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    """Sign-in helpers bound to the test client."""
    return AuthActions(client)


@pytest.fixture
def bare_store(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    """A prepared store of the backend under test, without an app: a folder or a bucket."""
    if backend == "s3":
        store: Storage = S3Storage(
            bucket=f"mv-{uuid.uuid4().hex[:12]}",
            endpoint_url=request.getfixturevalue("s3_endpoint"),
        )
    else:
        store = LocalStorage(root=tmp_path / "objects", secret=SECRET_KEY)
    store.setup(public_url="http://127.0.0.1", abort_after_days=7)
    return store


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The test movies of tests/media.py, made once per run (about 4 s on two cores)."""
    folder = tmp_path_factory.mktemp("media")
    makers = {
        # One second of black, then pictures: the poster must not be black.
        "h264.mp4": lambda path: media.make_h264_mp4(path, seconds=3.0, black=1.0),
        "h264.mkv": lambda path: media.make_h264_mkv(path, seconds=3.0, black=1.0),
        "hevc.mkv": media.make_hevc_mkv,
        "vp9.webm": media.make_vp9_webm,
        "av1.mp4": media.make_av1_mp4,
        "hdr10.mkv": media.make_hdr10_mkv,
        "hlg.mp4": media.make_hlg_mp4,
        "song.m4a": lambda path: media.make_audio_only(path, cover=True),
        "song.mp3": media.make_audio_only,
        "random.mkv": media.make_random_bytes,
        "truncated.mp4": media.make_truncated_mp4,
        "cover.mp4": media.make_mp4_with_cover,
        "rotated.mp4": lambda path: media.make_h264_mp4(path, seconds=1.0, rotation=90),
        "subtitles.srt": media.write_srt,
    }
    return {name: make(folder / name) for name, make in makers.items()}


@pytest.fixture(scope="session")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Real media, made once for the run: four H.264/AAC MP4s (index at the end) that
    differ in length (`clip0`..`clip3`, 2 to 3.5 s), and random bytes named .mkv."""
    folder = tmp_path_factory.mktemp("media")
    made = {
        f"clip{n}": media.make_h264_mp4(folder / f"clip{n}.mp4", seconds=2.0 + n / 2).read_bytes()
        for n in range(4)
    }
    made["random"] = media.make_random_bytes(folder / "random.mkv").read_bytes()
    return made
