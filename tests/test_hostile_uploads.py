"""Uploaded files never run as the app: the types accepted at create, how the store serves
objects, and a page policy that does not trust the store for code.

The same attack in a real browser is in tests/e2e/test_hostile_uploads.py.
"""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlsplit

import pytest
import requests
from flask import Flask
from werkzeug.http import parse_options_header

from movievault import db
from movievault.backends import get_storage
from movievault.models import PendingUpload
from tests.support import LiveServer, add_file, csp, download, make_user, sign_in

OCTET = "application/octet-stream"


@pytest.mark.parametrize(
    ("declared", "stored"),
    [
        ("video/mp4", "video/mp4"),
        ("video/x-matroska", "video/x-matroska"),
        ("text/vtt", "text/vtt"),
        ("image/png", "image/png"),
        ("text/html", OCTET),
        ("image/svg+xml", OCTET),
        ("text/javascript", OCTET),
        ("application/xhtml+xml", OCTET),
    ],
)
def test_content_types_at_create_outside_a_movie_library_become_octet_stream(
    app: Flask, declared: str, stored: str
) -> None:
    make_user(app, "mallory")
    mallory = sign_in(app, "mallory")
    answer = mallory.client.post(
        "/api/uploads",
        json={"name": "trailer", "size": 1000, "sha256": secrets.token_hex(32),
              "content_type": declared},
        headers=mallory.headers(),
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    upload = answer.get_json()["upload"]
    assert upload["content_type"] == stored
    # The store is told the same type: the form's field (pinned by the S3 POST policy).
    assert upload["post"]["fields"]["Content-Type"] == stored
    with db.session_scope(app) as session:
        assert session.get(PendingUpload, upload["id"]).content_type == stored


# (catalogue type, route, served type, disposition)
SERVED = [
    ("text/html", "stream", OCTET, "attachment"),
    ("text/javascript", "stream", OCTET, "attachment"),
    ("image/svg+xml", "stream", OCTET, "attachment"),
    ("application/xhtml+xml", "stream", OCTET, "attachment"),
    ("text/css", "stream", OCTET, "attachment"),
    ("video/x+xml", "stream", OCTET, "attachment"),
    ("image/gif", "stream", OCTET, "attachment"),
    ("application/x-matroska", "stream", OCTET, "attachment"),
    ("video/mp4", "stream", "video/mp4", "inline"),
    ("video/mp4", "download", "video/mp4", "attachment"),
    ("audio/wav", "stream", "audio/wav", "inline"),
    ("text/vtt", "stream", "text/vtt", "inline"),
    ("image/png", "stream", "image/png", "inline"),
]


def test_objects_are_served_as_inert_downloads_unless_media(live_server: LiveServer) -> None:
    app = live_server.app
    owner = make_user(app, "alice")
    alice = live_server.client_for("alice")
    local = get_storage(app).kind == "local"
    for declared, route, served, disposition in SERVED:
        what = f"{declared} via {route}"
        data = os.urandom(64) + declared.encode()
        file_id = add_file(app, owner, f"file.{declared.split('/')[1]}", data, declared)
        answer = download(alice, file_id, route)
        assert answer.status_code == 200 and answer.content == data, what
        assert answer.headers["Content-Type"] == served, what
        assert parse_options_header(answer.headers["Content-Disposition"])[0] == disposition, what
        if not local:
            continue  # S3 sends what the URL asks for, nothing more
        assert answer.headers["X-Content-Type-Options"] == "nosniff", what
        policy = csp(answer)
        assert policy["default-src"] == {"'none'"}, what
        assert "allow-scripts" not in policy["sandbox"], what
        # A player opened on its own needs its own origin to fetch itself; nothing else.
        media = served.startswith(("video/", "audio/")) and disposition == "inline"
        assert policy["sandbox"] == ({"allow-same-origin"} if media else set()), what
        assert policy.get("media-src") == ({"'self'"} if media else None), what
    if local:
        # The store's own refusals are not pages of the app either.
        refused = requests.get(f"{live_server.url}/storage/objects/movies/1/x?token=forged",
                               timeout=30)
        assert refused.status_code == 403
        assert refused.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"


def allows(source: str, url: str, page_origin: str) -> bool:
    """Whether a CSP source expression lets `url` load (the forms this app's policy uses)."""
    target = urlsplit(url)
    origin = f"{target.scheme}://{target.netloc}"
    if source == "'self'":
        return origin == page_origin
    if source in ("*", f"{target.scheme}:"):
        return True
    if source.startswith("'"):
        return False  # 'none', 'wasm-unsafe-eval'...
    wanted = urlsplit(source)
    if f"{wanted.scheme}://{wanted.netloc}" != origin:
        return False
    path = wanted.path or "/"
    return target.path.startswith(path) if path.endswith("/") else target.path == path


def test_page_policy_takes_code_and_styles_from_static_only(app: Flask) -> None:
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    page = alice.client.get("/")
    policy = csp(page)
    page_origin = "http://localhost"  # the test client's
    stored = f"{page_origin}/storage/objects/movies/1/{'a' * 32}?token=x"
    public_stored = f"{app.config['PUBLIC_URL']}/storage/objects/movies/1/{'a' * 32}"
    for directive in ("script-src", "style-src", "worker-src"):
        sources = policy[directive]
        assert sources, directive
        assert all(source.endswith("/static/") for source in sources), (directive, sources)
        for url in (stored, public_stored):
            assert not any(allows(s, url, page_origin) for s in sources), (directive, url)
        assert any(allows(s, f"{page_origin}/static/js/app.js", page_origin) for s in sources)
    assert policy["frame-src"] == {"'none'"}
    assert policy["object-src"] == {"'none'"}
    # Transfers and playback still reach the store.
    for directive in ("connect-src", "media-src", "img-src"):
        assert any(allows(s, stored, page_origin) for s in policy[directive]), directive


def test_a_forged_host_header_does_not_write_into_the_policy(app: Flask) -> None:
    answer = app.test_client().get("/login", headers={"Host": "evil.example'; script-src *"})
    assert csp(answer)["script-src"] == {f"{app.config['PUBLIC_URL']}/static/"}
