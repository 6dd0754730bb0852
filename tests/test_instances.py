"""Two app instances behind one "load balancer": nothing is lost at the seams.

Instance A is `movievault serve --workers 2` (gunicorn), instance B `movievault serve`
(waitress); each has an instance folder of its own, like two hosts, and they share the
catalogue in PostgreSQL, one bucket of moto's S3 server and MOVIEVAULT_SECRET_KEY, with
MOVIEVAULT_INSTANCES=many. The client plays the balancer: a request that finds its instance
gone (refused, cut, or 502/503) is sent to the other one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import requests
from flask import Flask

from movievault import create_app
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.models import PendingUpload, StoredFile
from tests.postgres import PostgresServer
from tests.support import (
    MIB,
    MOVIEVAULT,
    ROOT,
    SECRET_KEY,
    at_once,
    environment,
    free_port,
    keys,
    make_user,
    open_multipart_uploads,
    read_answer,
    rows,
    sign_in_over_http,
    stop_process,
    wait_for_port,
)

T = TypeVar("T")

#: How long the balancer keeps trying while instances restart.
FAILOVER_SECONDS = 90
SMALL = 40_000  # one form POST
BIG = 6 * MIB + 1000  # two parts of 5 MiB and ~1 MiB


@dataclass
class Instance:
    """One `movievault serve` process, with an instance folder of its own."""

    name: str
    port: int
    env: dict[str, str]
    args: list[str]
    logs: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        """Where it answers."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        """The output of its latest start."""
        return self.logs / f"{self.name}-{self.starts}.log"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.starts += 1
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(self.port),
                 "--threads", "4", *self.args],
                env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
            )
        wait_for_port(self.port, self.process, self.log)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 15 s) if it runs."""
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Pair:
    """Instances A and B, and an app on the same catalogue and bucket to inspect them."""

    a: Instance
    b: Instance
    inspector: Flask


@pytest.fixture(scope="module")
def pair(
    s3_endpoint: str, postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    """A and B started on one prepared catalogue and bucket; stopped afterwards."""
    work = tmp_path_factory.mktemp("instances")
    database = postgres_server.create_database()
    port_a, port_b = free_port(), free_port()
    shared: dict[str, Any] = {
        "SECRET_KEY": SECRET_KEY,
        "INSTANCES": "many",
        "DATABASE_URL": postgres_server.url(database),
        "STORAGE": "s3",
        "S3_ENDPOINT_URL": s3_endpoint,
        "S3_BUCKET": f"mv-{uuid.uuid4().hex[:12]}",
        "MULTIPART_THRESHOLD": 6 * MIB,
        "PART_SIZE": 5 * MIB,
        # The balancer's address: the same for every instance.
        "PUBLIC_URL": f"http://127.0.0.1:{port_a}",
    }
    inspector = create_app({**shared, "TESTING": True})
    get_storage(inspector).setup(public_url=shared["PUBLIC_URL"], abort_after_days=7)
    make_user(inspector, "alice")
    logs = work / "logs"
    logs.mkdir()
    a = Instance("a", port_a, environment(**shared, INSTANCE_PATH=work / "host-a"),
                 ["--workers", "2"], logs)
    b = Instance("b", port_b, environment(**shared, INSTANCE_PATH=work / "host-b"), [], logs)
    try:
        a.start()
        b.start()
        yield Pair(a=a, b=b, inspector=inspector)
    finally:
        a.stop()
        b.stop()
        inspector.extensions["movievault.engine"].dispose()
        postgres_server.drop_database(database)
    for log in sorted(logs.iterdir()):
        output = log.read_text(errors="replace")
        assert "Traceback" not in output, output[-3000:]


@dataclass
class Balancer:
    """Sends each call to the first instance that answers, as a load balancer would."""

    clients: list[ApiClient]
    failovers: Counter[str] = field(default_factory=Counter)

    def call(self, work: Callable[[ApiClient], T]) -> T:
        """Run `work` against A first, then B, ... until one answers (not 502/503)."""
        deadline = time.monotonic() + FAILOVER_SECONDS
        while True:
            for client in self.clients:
                try:
                    result = work(client)
                    if isinstance(result, requests.Response) and result.status_code in (502, 503):
                        raise requests.HTTPError(response=result)
                    return result
                except (requests.ConnectionError, requests.HTTPError) as error:
                    response = getattr(error, "response", None)
                    if response is not None and response.status_code not in (502, 503):
                        raise
                    self.failovers[client.base] += 1
                    if time.monotonic() > deadline:
                        raise


def balancer(pair: Pair) -> Balancer:
    """Alice signed in once (through B), her cookie sent to either instance, A first."""
    http = sign_in_over_http(pair.b.url, "alice")
    return Balancer([ApiClient(http=http, base=pair.a.url), ApiClient(http=http, base=pair.b.url)])


def assert_recorded_once(app: Flask, uploaded: list[bytes]) -> None:
    """Each file is in the catalogue once, and the catalogue and the bucket agree."""
    files = rows(app, StoredFile)
    counts = Counter(f.sha256 for f in files)
    assert all(counts[sha256_of(data)] == 1 for data in uploaded), counts
    assert rows(app, PendingUpload) == []
    storage = get_storage(app)
    assert keys(storage) == {f.key for f in files}
    assert open_multipart_uploads(storage) == []
    by_sha = {f.sha256: f for f in files}
    for data in uploaded:
        assert storage.object_size(by_sha[sha256_of(data)].key) == len(data)


def test_a_rolling_restart_in_the_middle_of_uploads_loses_none(pair: Pair) -> None:
    lb = balancer(pair)
    files = [os.urandom(BIG) for _ in range(2)] + [os.urandom(SMALL) for _ in range(3)]
    created = threading.Barrier(len(files) + 1, timeout=120)
    stopping = threading.Barrier(len(files) + 1, timeout=120)
    restarted = threading.Barrier(len(files) + 1, timeout=240)
    answers: dict[int, Any] = {}
    done = threading.Event()

    def upload(index: int, data: bytes) -> None:
        """Create and send the first part while both run; the rest while A stops; complete
        once A is back, A first."""
        try:
            upload = lb.call(lambda c: c.create(name=f"roll {index}.mkv", data=data)).json()[
                "upload"
            ]
            etags: dict[int, str] = {}
            if upload["method"] == "multipart":
                etags = lb.call(lambda c: c.put_parts(upload, data, [1]))
            created.wait()
            stopping.wait()
            lb.call(lambda c: c.status(upload["id"]))
            if upload["method"] == "multipart":
                etags |= lb.call(lambda c: c.put_parts(upload, data, [2]))
            else:
                ApiClient(http=requests.Session(), base=pair.b.url).post_form(
                    upload, data
                ).raise_for_status()
            restarted.wait()
            final = lb.call(lambda c: c.complete(upload["id"], etags or None))
            answers[index] = (final.status_code, final.json())
        except BaseException as error:  # reported by the assertions below
            answers[index] = (0, repr(error))
            for barrier in (created, stopping, restarted):
                barrier.abort()

    def keep_checking() -> None:
        """Duplicate checks all along, so that requests are under way when A stops."""
        while not done.is_set():
            lb.call(lambda c: c.check([(sha256_of(files[0]), len(files[0]))]))

    threads = [threading.Thread(target=upload, args=(i, d)) for i, d in enumerate(files)]
    checker = threading.Thread(target=keep_checking)
    for thread in [*threads, checker]:
        thread.start()
    try:
        created.wait()
        assert pair.a.process is not None
        pair.a.process.terminate()  # SIGTERM: gunicorn finishes what it has begun
        stopping.wait()
        assert pair.a.process.wait(timeout=60) == 0, pair.a.log.read_text()[-3000:]
        pair.a.start()
        restarted.wait()
    finally:
        done.set()
        for thread in [*threads, checker]:
            thread.join(timeout=180)
    assert not any(t.is_alive() for t in [*threads, checker])
    statuses = sorted(status for status, _ in answers.values())
    assert statuses == [201] * len(files), answers
    # The uploads' requests met A stopping or gone, and went on through B.
    assert lb.failovers[pair.a.url] > 0
    assert_recorded_once(pair.inspector, files)
    # A, started again, serves new uploads.
    again = os.urandom(SMALL)
    assert lb.clients[0].upload(name="after.mp4", data=again)["file"]["sha256"] == sha256_of(again)


def test_two_instances_completing_one_upload_at_once_record_it_once(pair: Pair) -> None:
    lb = balancer(pair)
    on_a, on_b = lb.clients
    uploaded = []
    for round_, size in enumerate([SMALL, BIG, SMALL]):
        data = os.urandom(size)
        upload = on_b.create(name=f"twice {round_}.mkv", data=data).json()["upload"]
        etags = None
        if upload["method"] == "multipart":
            etags = on_a.put_parts(upload, data, [1, 2])
        else:
            on_a.post_form(upload, data).raise_for_status()
        answers = at_once(*[
            (lambda tab=tab, upload=upload, etags=etags: tab.complete(upload["id"], etags))
            for tab in (on_a, on_b)
        ])
        assert sorted(status for status, _ in answers) == [200, 201], answers
        uploaded.append(data)
    assert_recorded_once(pair.inspector, uploaded)


def test_gunicorn_workers_racing_on_create_and_complete_keep_one_upload_and_one_file(
    pair: Pair,
) -> None:
    signed_in = sign_in_over_http(pair.a.url, "alice")
    tabs = []
    for _ in range(8):  # a connection each, so the two workers share them out
        http = requests.Session()
        http.cookies.update(signed_in.cookies)
        http.headers.update(signed_in.headers)
        tabs.append(ApiClient(http=http, base=pair.a.url))
    data = os.urandom(BIG)
    created = at_once(*[
        (lambda tab=tab: tab.create(name="race.mkv", data=data)) for tab in tabs
    ])
    assert sorted(status for status, _ in created) == [200] * 7 + [201], created
    upload = tabs[0].create(name="race.mkv", data=data).json()["upload"]
    assert len([u for u in rows(pair.inspector, PendingUpload) if u.size == BIG]) == 1
    etags = tabs[0].put_parts(upload, data, [1, 2])
    completed = at_once(*[
        (lambda tab=tab: tab.complete(upload["id"], etags)) for tab in tabs
    ])
    assert sorted(status for status, _ in completed) == [200] * 7 + [201], completed
    assert_recorded_once(pair.inspector, [data])


def raw_answer(url: str, request: bytes) -> bytes:
    """Send `request` on a new connection; what comes back before it closes (5 s at most)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        return read_answer(sock)


def test_gunicorn_refuses_bodies_and_headers_past_the_limits(pair: Pair) -> None:
    declared = raw_answer(pair.a.url, b"POST /api/files/check HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Length: %d\r\n\r\n" % (200 * MIB) + b"x" * 65536)
    assert declared.startswith(b"HTTP/1.1 413 "), declared[:300]
    assert b"larger than this address accepts" in declared
    # Chunked: refused once the chunks read pass the limit (the API reads the JSON whole).
    http = sign_in_over_http(pair.a.url, "alice")
    cookie = "; ".join(f"{c.name}={c.value}" for c in http.cookies).encode()
    chunk = b" " * (512 * 1024)
    chunked = raw_answer(pair.a.url, b"POST /api/files/check HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nCookie: " + cookie + b"\r\n"
                         b"X-CSRFToken: " + http.headers["X-CSRFToken"].encode() + b"\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         + (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * 4 + b"0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 413 "), chunked[:300]
    long_line = raw_answer(pair.a.url, b"GET /?" + b"q" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert long_line.startswith(b"HTTP/1.1 414 "), long_line[:300]
    many = b"".join(b"X-Header-%d: 1\r\n" % n for n in range(200))
    headers = raw_answer(pair.a.url, b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert headers.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), headers[:300]
