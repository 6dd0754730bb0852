"""The benchmarks' WSGI counting middleware counts exactly the bytes a client sent."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import requests
from flask import Flask

from tests.support import free_port, serving

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from counted_app import CountingMiddleware  # noqa: E402


def test_counts_request_line_headers_and_body_as_sent(app: Flask) -> None:
    app.wsgi_app = CountingMiddleware(app)  # type: ignore[method-assign]
    port = free_port()
    with serving(app, threads=2, port=port):
        body = b'{"files": [{"sha256": "' + b"a" * 64 + b'", "size": 1048576}]}'
        raw = (
            b"POST /api/files/check?x=1 HTTP/1.1\r\n"
            b"Host: 127.0.0.1:" + str(port).encode() + b"\r\n"
            b"User-Agent: counting-test/1.0\r\n"
            b"Cookie: session=abc.def.ghi\r\n"
            b"X-CSRFToken: token-value\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n"
            b"Connection: close\r\n"
            b"\r\n" + body
        )
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(raw)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 401"), answer[:100]  # refused: not signed in
        records = requests.get(f"http://127.0.0.1:{port}/__bench/records", timeout=10).json()
        (record,) = records["records"]
        assert record["route"] == "api.check_files"
        assert record["body"] == len(body)
        assert record["received"] == len(raw)
        assert record["sent"] == len(answer.split(b"\r\n\r\n", 1)[1])
