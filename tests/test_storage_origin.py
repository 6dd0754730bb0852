"""STORAGE_ORIGIN: the local store's URLs on a separate origin, served by the same app.

The app is served twice, as a reverse proxy would map two host names to it: pages on
PUBLIC_URL (127.0.0.1), the store on STORAGE_ORIGIN (localhost, another port).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask

from movievault import create_app
from movievault.client import ApiClient
from tests.support import (
    MIB,
    PASSWORD,
    SECRET_KEY,
    LiveServer,
    attempt,
    cookie_attributes,
    csp,
    make_user,
    serving,
    sign_in,
)


@pytest.fixture
def backend() -> str:
    """STORAGE_ORIGIN is a setting of the local store."""
    return "local"


@pytest.fixture
def app_config(app_config: dict[str, Any], storage_port: int) -> dict[str, Any]:
    """The usual settings, with the store on its own origin."""
    return {**app_config, "STORAGE_ORIGIN": f"http://localhost:{storage_port}"}


@pytest.fixture
def store_server(live_server: LiveServer, storage_port: int) -> Iterator[LiveServer]:
    """The same app on the store's port, as the proxy's second host would reach it."""
    with serving(live_server.app, port=storage_port) as server:
        yield LiveServer(app=server.app, url=f"http://localhost:{storage_port}")


@pytest.mark.parametrize(
    ("value", "origin"),
    [
        ("", ""),
        ("http://media.example.org", "http://media.example.org"),
        ("HTTPS://Media.Example.org:8443/", "https://media.example.org:8443"),
        ("http://127.0.0.1:8001", "http://127.0.0.1:8001"),
    ],
)
def test_storage_origin_is_read_as_an_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, origin: str
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("MOVIEVAULT_STORAGE_ORIGIN", value)
    app = create_app({"SECRET_KEY": SECRET_KEY, "PUBLIC_URL": "http://127.0.0.1:8000"})
    assert app.config["STORAGE_ORIGIN"] == origin


@pytest.mark.parametrize(
    "value",
    [
        "media.example.org",  # no scheme
        "ftp://media.example.org",
        "http://media.example.org/storage",  # a path
        "http://media.example.org?x=1",
        "http://user@media.example.org",
        "http://127.0.0.1:8000",  # PUBLIC_URL's own origin
    ],
)
def test_storage_origin_must_be_another_origin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(ValueError, match="STORAGE_ORIGIN"):
        create_app({"SECRET_KEY": SECRET_KEY, "PUBLIC_URL": "http://127.0.0.1:8000",
                    "STORAGE_ORIGIN": value})


def test_store_urls_are_absolute_on_the_storage_origin_and_the_policy_names_it(
    app: Flask,
) -> None:
    origin = app.config["STORAGE_ORIGIN"]
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    small = alice.client.post("/api/uploads", headers=alice.headers(), json={
        "name": "a.mp4", "size": 1000, "sha256": "a" * 64, "content_type": "video/mp4"})
    assert small.get_json()["upload"]["post"]["url"] == f"{origin}/storage/upload"
    big = alice.client.post("/api/uploads", headers=alice.headers(), json={
        "name": "b.mp4", "size": 7 * MIB, "sha256": "b" * 64, "content_type": "video/mp4"})
    upload_id = big.get_json()["upload"]["id"]
    parts = alice.client.post(f"/api/uploads/{upload_id}/parts", headers=alice.headers(),
                              json={"parts": [{"number": 1, "sha256": "c" * 64},
                                              {"number": 2, "sha256": "d" * 64}]}
                              ).get_json()["parts"]
    assert len(parts) == 2
    assert all(p["url"].startswith(f"{origin}/storage/parts/") for p in parts)
    policy = csp(alice.client.get("/"))
    for directive in ("connect-src", "media-src", "img-src", "form-action"):
        assert origin in policy[directive], directive
    for directive in ("script-src", "style-src", "worker-src"):
        assert not any(source.startswith(origin) for source in policy[directive]), directive


def test_the_store_works_across_origins_and_its_host_serves_nothing_else(
    live_server: LiveServer, store_server: LiveServer
) -> None:
    page_origin = live_server.url
    make_user(live_server.app, "alice")
    alice: ApiClient = live_server.client_for("alice")
    # A whole upload of each kind, the bytes going to the store's origin.
    small, big = os.urandom(200_000), os.urandom(7 * MIB)
    files = [alice.upload(name=name, data=data)["file"]
             for name, data in (("s.mp4", small), ("b.mp4", big))]
    redirect = alice.http.get(f"{page_origin}/files/{files[1]['id']}/stream",
                              allow_redirects=False)
    location = redirect.headers["Location"]
    assert location.startswith(f"{store_server.url}/storage/objects/")
    assert requests.get(location, timeout=30).content == big

    # CORS as the page needs it: preflight for a part PUT, then the PUT's ETag readable.
    other_big = os.urandom(7 * MIB)
    upload = alice.create(name="c.mp4", data=other_big).json()["upload"]
    (part,) = alice.sign_parts(upload, [1], other_big).values()
    part_url = part.url
    preflight = requests.options(part_url, timeout=30, headers={
        "Origin": page_origin, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "content-type, x-amz-checksum-sha256"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == page_origin
    assert "PUT" in preflight.headers["Access-Control-Allow-Methods"]
    allowed = preflight.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "x-amz-checksum-sha256" in allowed
    assert "Access-Control-Allow-Credentials" not in preflight.headers
    put = requests.put(part_url, data=other_big[: 5 * MIB],
                       headers={"Origin": page_origin, **part.headers}, timeout=60)
    assert put.status_code == 200
    assert put.headers["Access-Control-Allow-Origin"] == page_origin
    assert put.headers["Access-Control-Expose-Headers"] == "ETag"
    form = alice.create(name="d.mp4", data=b"x" * 1000).json()["upload"]
    refused = requests.post(form["post"]["url"], data={**form["post"]["fields"], "token": "x"},
                            files={"file": b"x" * 1000}, headers={"Origin": page_origin},
                            timeout=30)
    assert refused.status_code == 403  # and the page can read why
    assert refused.headers["Access-Control-Allow-Origin"] == page_origin
    # Another site gets no CORS answer at all.
    other = requests.options(part_url, timeout=30, headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert "Access-Control-Allow-Origin" not in other.headers

    # The store's host serves the store and nothing else: no page, API, static file.
    for path in ("/", "/login", "/api/files", "/static/js/app.js", "/files/1/stream"):
        assert requests.get(f"{store_server.url}{path}", timeout=30).status_code == 404, path
        assert alice.http.get(f"{page_origin}{path}", timeout=30).status_code != 404, path


def test_the_session_cookie_stays_on_the_pages_host(app: Flask) -> None:
    # Host-only (no Domain attribute): never sent to another host name such as the store's.
    make_user(app, "alice")
    answer = attempt(app, "alice", PASSWORD, "127.0.0.1")
    assert answer.status_code == 302
    assert "domain" not in cookie_attributes(answer, "session")
