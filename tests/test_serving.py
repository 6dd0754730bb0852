"""waitress as `movievault serve` runs it: body limits per route, idle connections closed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from waitress.buffers import TempfileBasedBuffer

from movievault import create_app
from movievault.client import sha256_of
from movievault.config import settings
from movievault.serving import (
    SMALL_BODY_BYTES,
    body_limits,
    serve_options,
)
from tests.support import (
    MIB,
    MOVIEVAULT,
    environment,
    free_port,
    make_user,
    read_answer,
    served,
    stop_process,
    wait_for_port,
)


@pytest.fixture
def backend() -> str:
    """The local store: the only one with upload routes in the app."""
    return "local"


@pytest.fixture
def temp_files(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the temporary files waitress creates to hold request bodies."""
    created: list[int] = []
    newfile = TempfileBasedBuffer.newfile

    def counting(self: TempfileBasedBuffer) -> Any:
        created.append(1)
        return newfile(self)

    monkeypatch.setattr(TempfileBasedBuffer, "newfile", counting)
    return created


def connect(url: str) -> socket.socket:
    """A raw connection to the server at `url`."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer."""
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer.split(b" ", 2)[1])


def test_serve_options_follow_the_settings(app: Flask) -> None:
    config = settings(app)
    limits = body_limits(config)
    assert limits.default == SMALL_BODY_BYTES < 2 * MIB
    # conftest: forms up to 6 MiB; parts of a 100 GiB file are 11 MiB.
    assert limits.upload == 12 * MIB
    assert limits.for_request("POST", "/storage/upload") == limits.upload
    assert limits.for_request("PUT", "/storage/upload") == limits.upload  # a PUT upload
    assert limits.for_request("PUT", "/storage/parts/abc/3") == limits.upload
    for method, path in [("GET", "/storage/upload"), ("POST", "/storage/parts/abc/3"),
                         ("POST", "/api/files/check"), ("POST", "/login"),
                         ("PUT", "/api/storage/parts/x")]:
        assert limits.for_request(method, path) == limits.default
    options = serve_options(config)
    assert options.adjustments["max_request_body_size"] == limits.default
    assert options.adjustments["channel_timeout"] == 60
    assert options.adjustments["clear_untrusted_proxy_headers"] is True
    proxied = serve_options(replace(config, proxy_count=1))
    assert proxied.adjustments["clear_untrusted_proxy_headers"] is False
    s3 = body_limits(replace(config, storage="s3"))
    assert s3.upload == s3.default == SMALL_BODY_BYTES


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
@pytest.mark.parametrize("declared", [2 * MIB, 200 * MIB], ids=["2MiB", "200MiB"])
@pytest.mark.parametrize("path", ["/api/files/check", "/login"])
def test_a_body_too_large_for_the_route_is_refused_before_it_is_sent(
    app: Flask, temp_files: list[int], path: str, declared: int, expect: bool
) -> None:
    with served(app) as live:
        sock = connect(live.url)
        with sock:
            head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {declared}\r\n")
            if expect:
                head += "Expect: 100-continue\r\n"
            sock.sendall(head.encode() + b"\r\n" + b"x" * 65536)
            started = time.monotonic()
            answer = read_answer(sock)
    assert status_of(answer) == 413, answer[:300]
    assert time.monotonic() - started < 4  # at once, then the connection is closed
    assert b"100 Continue" not in answer
    assert temp_files == []


def test_a_chunked_body_too_large_for_the_route_is_refused(
    app: Flask, temp_files: list[int]
) -> None:
    head = (b"POST /api/files/check HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/json\r\n\r\n")
    with served(app) as live:
        # One chunk that says it is 200 MiB long: refused on its size line.
        with connect(live.url) as sock:
            sock.sendall(head + b"%x\r\n" % (200 * MIB) + b"x" * 65536)
            answer = read_answer(sock)
        assert status_of(answer) == 413
        assert temp_files == []
        # Honest 64 KiB chunks: refused once they pass the limit, long before 4 MiB.
        with connect(live.url) as sock:
            sock.sendall(head)
            sent = 0
            sock.settimeout(0.05)
            answer = b""
            while sent < 4 * MIB and not answer:
                try:
                    sock.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
                    sent += 65536
                    answer = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            answer += read_answer(sock)
        assert status_of(answer) == 413
        assert sent <= SMALL_BODY_BYTES + MIB


def test_the_local_store_still_takes_large_forms_and_parts(
    app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "MULTIPART_THRESHOLD": 24 * MIB})
    make_user(app, "alice")
    with served(app) as live:
        alice = live.client_for("alice")
        form = os.urandom(20 * MIB)
        parted = os.urandom(26 * MIB)
        assert alice.upload(name="form.mp4", data=form)["file"]["sha256"] == sha256_of(form)
        assert alice.upload(name="parts.mp4", data=parted)["file"]["sha256"] == sha256_of(parted)
        # The same server still refuses a body of that size anywhere else, and a part
        # larger than any part can be.
        for line in ("POST /api/uploads", f"PUT /storage/parts/{'a' * 32}/1?token=x"):
            declared = 20 * MIB if line.startswith("POST") else 26 * MIB
            with connect(live.url) as sock:
                sock.sendall(f"{line} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n"
                             .encode() + b"x" * 1024)
                assert status_of(read_answer(sock)) == 413


def test_a_1000_file_check_fits_the_limit(app: Flask) -> None:
    make_user(app, "alice")
    with served(app) as live:
        alice = live.client_for("alice")
        items = [(f"{n:064x}", 10 * MIB + n) for n in range(1000)]
        assert len(alice.check(items)) == 1000


def test_an_idle_half_sent_request_is_closed_after_the_channel_timeout(app: Flask) -> None:
    with served(app, channel_timeout=2) as live, connect(live.url) as idle:
        idle.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        started = time.monotonic()
        idle.settimeout(10)
        assert idle.recv(1024) == b""  # closed without an answer
        waited = time.monotonic() - started
    # Looked for every second (cleanup_interval), and the loop wakes at least every second.
    assert 2 <= waited < 5, waited


def test_a_slow_but_steady_sender_is_not_cut(app: Flask) -> None:
    with served(app, channel_timeout=2) as live, connect(live.url) as slow:
        slow.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
        for byte in b"a=bcde":  # one byte a second: 6 s, three times the timeout
            time.sleep(1)
            slow.sendall(bytes([byte]))
        answer = read_answer(slow, timeout=5)
    assert status_of(answer) == 400  # the app's answer (no CSRF token), not a cut


@dataclass
class ServeCommand:
    """`movievault serve` running in its own process, as deployed."""

    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def serve_command(tmp_path: Path) -> Iterator[ServeCommand]:
    """`movievault serve` with the local store, two threads, listening (stopped after)."""
    port = free_port()
    env = environment(INSTANCE_PATH=tmp_path / "instance", STORAGE="local")
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        yield ServeCommand(port=port, process=process, log=log)
    finally:
        stop_process(process)


def test_movievault_serve_sizes_the_connection_pool_for_its_threads(
    serve_command: ServeCommand,
) -> None:
    """`--threads 2` (MOVIEVAULT_THREADS is 16 by default) keeps two catalogue connections,
    one per request thread: a pool sized for other threads would run out, or keep more
    PostgreSQL connections than the server has room for."""
    deadline = time.monotonic() + 10
    while "threads each" not in serve_command.log.read_text():
        assert time.monotonic() < deadline, serve_command.log.read_text()
        time.sleep(0.05)
    assert "2 threads each, each keeping up to 2 catalogue connections" in (
        serve_command.log.read_text()
    )


def test_movievault_serve_refuses_a_large_body_to_the_api_at_once(
    serve_command: ServeCommand,
) -> None:
    with connect(serve_command.url) as sock:
        # The headers alone: the answer must come before any of the body. (Bytes of it sent
        # and left unread when the server closes make the kernel reset the connection,
        # which may discard the answer before it is read.)
        sock.sendall(b"POST /api/files/check HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: %d\r\n\r\n" % (200 * MIB))
        answer = read_answer(sock)
    assert status_of(answer) == 413, serve_command.log.read_text()


def test_sigterm_finishes_the_requests_under_way_then_exits(
    serve_command: ServeCommand,
) -> None:
    """A restart (systemd, a container's stop) sends SIGTERM: `movievault serve` takes no
    new connection, lets a request being sent finish, closes idle ones, and exits 0."""
    process = serve_command.process
    with connect(serve_command.url) as busy, connect(serve_command.url) as idle:
        busy.sendall(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n"
                     b"Content-Type: application/x-www-form-urlencoded\r\n\r\na=b")
        idle.sendall(b"GET /setup HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status_of(read_answer(idle)) == 200  # kept alive, now between requests
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while True:  # the listening socket closes first
            try:
                socket.create_connection(("127.0.0.1", serve_command.port), timeout=1).close()
            except (ConnectionRefusedError, ConnectionResetError):
                break  # reset: it reached the backlog of the socket being closed
            assert time.monotonic() < deadline, "still accepting after SIGTERM"
            time.sleep(0.05)
        idle.settimeout(10)
        assert idle.recv(1024) == b""  # the idle connection is closed
        assert process.poll() is None  # still there for the request under way
        busy.sendall(b"cde")
        answer = read_answer(busy, timeout=10)
        assert status_of(answer) == 400  # the app's own answer (no CSRF token)
    printed = serve_command.log.read_text
    assert process.wait(timeout=15) == 0, printed()
    assert "finishing the requests under way" in printed()
    assert "Traceback" not in printed() and "ERROR" not in printed(), printed()
