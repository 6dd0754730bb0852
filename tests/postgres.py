"""A PostgreSQL server of the tests' own: Debian's binaries, a temporary folder, a loopback port.

scripts/install-postgresql installs the package; the package's own cluster is not used. Each
pytest worker starts one server (tests/conftest.py, `postgres_server`) in a folder of its own,
listening on 127.0.0.1 and a free port, with its socket in that folder too, and stops it at
the end. Each test gets a fresh empty database on it (`postgres_url`): CREATE DATABASE copies
an empty template in a few milliseconds.

PostgreSQL refuses to run as root, and the suite runs as root in CI: then the server runs as
the `postgres` system user (the package creates it), in a folder that user owns.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from tests.support import free_port

#: The superuser the tests connect as (trusted on loopback: the server is the tests' own).
ROLE = "movievault"
#: Where Debian keeps each major version's programs (not on PATH there).
DEBIAN_BINARIES = Path("/usr/lib/postgresql")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
#: The server's settings: durability off (a test database is thrown away), enough
#: connections for several apps with their pools at once, and a zone 5:45 from UTC as its
#: default, so that a time stored in the server's zone instead of UTC shows.
SERVER_OPTIONS = {
    "timezone": "Asia/Kathmandu",
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "shared_buffers": "32MB",
}


#: Every engine that has connected during the run: a test's database ends with the test,
#: and so must the connections its apps' pools hold (psycopg warns of one left open).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()


@event.listens_for(Engine, "engine_connect")
def _remember(connection: Connection) -> None:
    """Note the engine of each new connection."""
    _ENGINES.add(connection.engine)


def close_connections(database: str) -> None:
    """Close the pooled connections of every engine on `database`."""
    for engine in list(_ENGINES):
        if engine.dialect.name == "postgresql" and engine.url.database == database:
            engine.dispose()


def _binaries() -> Path | None:
    """The folder holding initdb and postgres: the newest Debian version's, or PATH's."""
    found = sorted(
        DEBIAN_BINARIES.glob("*/bin/initdb"), key=lambda path: int(path.parts[-3])
        if path.parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1].parent
    on_path = shutil.which("initdb")
    return Path(on_path).resolve().parent if on_path else None


def _server_user() -> pwd.struct_passwd | None:
    """The system user to run the server as: `postgres` when running as root, else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def missing() -> str | None:
    """Why a PostgreSQL server cannot run here, or None when it can."""
    if _binaries() is None:
        return ("PostgreSQL is not installed (initdb not found): scripts/install-postgresql "
                "installs Debian's 'postgresql' package")
    if os.geteuid() == 0 and _server_user() is None:
        return ("PostgreSQL refuses to run as root, and there is no 'postgres' system user to "
                "run it as: scripts/install-postgresql installs the package that creates it")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed: pip install -e '.[test]' installs it"
    return None


@dataclass
class PostgresServer:
    """A running server: where it listens, and how to make databases on it."""

    port: int
    folder: Path
    #: A database at the newest revision, made once, that new catalogues are copied from.
    _catalogue_template: str | None = None

    def pid(self) -> int:
        """The server's process id (its backends are its children)."""
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> list[tuple[object, ...]]:
        """Run one statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=ROLE, dbname=database, autocommit=True
        ) as connection:
            cursor = connection.execute(sql.encode())
            return cursor.fetchall() if cursor.description else []

    def create_database(self, template: str = "template0") -> str:
        """A new database, empty or a copy of `template`; its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        self.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def create_catalogue(self) -> str:
        """A new database holding an empty catalogue at the newest revision; its name.

        Copying a migrated template takes milliseconds, where running the migrations takes
        a second or more: apps under test start on these.
        """
        if self._catalogue_template is None:
            from movievault import db, migrations

            template = self.create_database()
            engine = db.make_engine(self.url(template))
            try:
                migrations.upgrade(engine)
            finally:
                engine.dispose()  # a template must have no connection when it is copied
            self._catalogue_template = template
        return self.create_database(self._catalogue_template)

    def drop_database(self, name: str) -> None:
        """Drop `name`, closing the connections the tests' engines hold to it first, and
        ending any other (a worker process's)."""
        close_connections(name)
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_server_user(command: list[str]) -> list[str]:
    """`command` run as the `postgres` system user when this process is root."""
    user = _server_user()
    if user is None:
        return command
    # setpriv replaces itself with the command (its pid is the server's), unlike runuser.
    return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
            "--", *command]


def _environment() -> dict[str, str]:
    """The server's environment: a plain one, nothing of the tests' own."""
    kept = {name: os.environ[name] for name in ("PATH", "TZ") if name in os.environ}
    return {**kept, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def _ready(port: int) -> bool:
    """Whether the server accepts a connection to its `postgres` database."""
    import psycopg

    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=ROLE, dbname="postgres",
                             connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server: a fast shutdown (SIGINT), or a kill if it does not end in time."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


def _start(folder: Path, binaries: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """Start the server on a free port (another if that one was taken meanwhile)."""
    for _ in range(3):
        port = free_port()
        options = [arg for name, value in SERVER_OPTIONS.items()
                   for arg in ("-c", f"{name}={value}")]
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                _as_server_user([str(binaries / "postgres"), "-D", str(folder / "data"),
                                 "-p", str(port), "-k", str(folder), *options]),
                env=_environment(), cwd=folder, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(port):
            if process.poll() is not None:
                break
            if time.monotonic() > deadline:
                _stop(process)
                raise RuntimeError(f"PostgreSQL is not ready after {START_TIMEOUT} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.05)
        else:
            return process, port
        if "could not bind" not in log_path.read_text():
            break
    raise RuntimeError(f"PostgreSQL exited early:\n{log_path.read_text()[-3000:]}")


@contextmanager
def running() -> Iterator[PostgresServer]:
    """Run a PostgreSQL server until the block ends, then remove its folder."""
    binaries = _binaries()
    assert binaries is not None, missing()
    # Not pytest's temporary folder: the server's user must be able to reach this one.
    folder = Path(tempfile.mkdtemp(prefix="movievault-pg-"))
    try:
        user = _server_user()
        if user is not None:
            os.chown(folder, user.pw_uid, user.pw_gid)
        log_path = folder / "server.log"
        done = subprocess.run(
            _as_server_user([str(binaries / "initdb"), "-D", str(folder / "data"), "-U", ROLE,
                             "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8",
                             "--no-sync"]),
            env=_environment(), cwd=folder, capture_output=True, text=True, timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{done.stdout}\n{done.stderr}")
        process, port = _start(folder, binaries, log_path)
        try:
            yield PostgresServer(port=port, folder=folder)
        finally:
            _stop(process)
    finally:
        with suppress(OSError):
            shutil.rmtree(folder)


# --- which tests run on it ---------------------------------------------------------------------


def _parametrized(metafunc: pytest.Metafunc) -> set[str]:
    """The names a test's own parametrize markers give values to."""
    names: set[str] = set()
    for marker in metafunc.definition.iter_markers("parametrize"):
        given = marker.args[0]
        names.update(given.split(",") if isinstance(given, str) else given)
    return {name.strip() for name in names}


def parametrize_databases(metafunc: pytest.Metafunc) -> None:
    """Run a test that uses the app on SQLite with each store, and on PostgreSQL with S3.

    S3 is the store of the deployments PostgreSQL is for (several processes or hosts);
    the local store on PostgreSQL adds nothing the database would see differently, and
    would double the lane's time. A test that names its own backend or database keeps them.
    """
    if "database" not in metafunc.fixturenames:
        return
    own = _parametrized(metafunc)
    if "database" in own:
        return
    if "backend" in own or "backend" not in metafunc.fixturenames:
        metafunc.parametrize("database", ["sqlite", "postgres"])
        return
    metafunc.parametrize(
        ("backend", "database"), [("s3", "sqlite"), ("local", "sqlite"), ("s3", "postgres")],
        ids=["s3-sqlite", "local-sqlite", "s3-postgres"],
    )
