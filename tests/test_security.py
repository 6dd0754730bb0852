"""Nobody gets in: other users' ids, CSRF, hostile names, Content-Disposition, the sign-in
throttle, session cookies, `next` redirects and the security headers."""

from __future__ import annotations

import io
import os
import secrets
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, unquote, urljoin, urlsplit

import pytest
from flask import Flask
from sqlalchemy import update
from werkzeug.http import parse_options_header
from werkzeug.test import TestResponse

from movievault import create_app, db, validation
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.models import LoginAttempt, PendingUpload, StoredFile, User
from tests.support import (
    MIB,
    PASSWORD,
    Browser,
    add_file,
    attempt,
    cookie_attributes,
    csp,
    csrf_from,
    download,
    make_user,
    rows,
    sign_in,
)

XSS = "<img src=x onerror=alert(1)>.mp4"
ATTRIBUTE_BREAKER = "\"' autofocus onfocus=\"alert(1)\" x='.mp4"


# --- helpers -------------------------------------------------------------------------------


def start_upload(browser: Browser, size: int, name: str = "pending.mkv") -> dict[str, Any]:
    """Create an upload through the API and return it."""
    answer = browser.client.post(
        "/api/uploads",
        json={"name": name, "size": size, "sha256": secrets.token_hex(32),
              "content_type": "video/mp4"},
        headers=browser.headers(),
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    return answer.get_json()["upload"]


class Page(HTMLParser):
    """What a browser would see in a response: elements with decoded attributes, and text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect each element with its attributes as the browser decodes them."""
        self.elements.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data: str) -> None:
        """Collect text nodes."""
        self.text.append(data)

    def attributes(self, name: str) -> list[str]:
        """Every value of attribute `name` on the page."""
        return [a[name] or "" for _, a in self.elements if name in a]

    def event_handlers(self) -> list[tuple[str, str]]:
        """Inline event-handler attributes (`on...=`), which no page should have."""
        return [(tag, n) for tag, attrs in self.elements for n in attrs if n.startswith("on")]


# --- another user's ids ---------------------------------------------------------------------


STORAGE_METHODS = (
    "post_form", "start_multipart", "part_url", "list_parts", "complete_multipart",
    "abort_multipart", "object_size", "delete", "download_url", "ping",
)


def record_storage_calls(app: Flask, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every call the app makes to its store from now on."""
    storage = get_storage(app)
    calls: list[str] = []
    for name in STORAGE_METHODS:
        original = getattr(storage, name)

        def recorder(*args: Any, _name: str = name, _original: Any = original, **kw: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kw)

        monkeypatch.setattr(storage, name, recorder)
    return calls


def test_another_users_ids_are_404_on_every_route_and_nothing_is_signed(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_id = make_user(app, "alice")
    make_user(app, "bob")
    alice, bob = sign_in(app, "alice"), sign_in(app, "bob")
    file_id = add_file(app, alice_id, "alices secret.mp4")
    poster = f"posters/{alice_id}/{file_id}-{secrets.token_hex(8)}"
    get_storage(app).put(key=poster, stream=io.BytesIO(b"RIFF"), size=4,
                         content_type="image/webp")
    with db.session_scope(app) as session:
        session.exec(update(StoredFile).values(poster_key=poster))
        session.commit()
    multipart = start_upload(alice, 11 * MIB)
    form = start_upload(alice, 1000)
    calls = record_storage_calls(app, monkeypatch)
    htmx = {"HX-Request": "true"}

    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("GET", f"/api/files/{file_id}", {}),
        ("PATCH", f"/api/files/{file_id}", {"json": {"name": "stolen.mp4"}}),
        ("PATCH", f"/api/files/{file_id}", {"json": {"title": "Stolen", "year": 2000}}),
        ("POST", f"/api/files/{file_id}/poster", {"json": {"at": 1}}),
        ("DELETE", f"/api/files/{file_id}", {}),
        ("GET", f"/files/{file_id}", {}),
        ("GET", f"/files/{file_id}/row", {"headers": htmx}),
        ("GET", f"/files/{file_id}/edit", {"headers": htmx}),
        ("GET", f"/files/{file_id}/download", {}),
        ("GET", f"/files/{file_id}/stream", {}),
        ("GET", f"/files/{file_id}/poster", {}),
        ("POST", f"/files/{file_id}/rename", {"data": {"name": "stolen.mp4"}}),
        ("POST", f"/files/{file_id}/rename", {"data": {"name": "stolen.mp4"}, "headers": htmx}),
        ("POST", f"/files/{file_id}/delete", {}),
        ("POST", f"/files/{file_id}/delete", {"headers": htmx}),
    ]
    for upload in (multipart, form):
        uid = upload["id"]
        attempts += [
            ("GET", f"/api/uploads/{uid}", {}),
            ("POST", f"/api/uploads/{uid}/parts", {"json": {"part_numbers": [1, 2]}}),
            ("POST", f"/api/uploads/{uid}/complete",
             {"json": {"parts": [{"part_number": 1, "etag": '"x"'}]}}),
            ("POST", f"/api/uploads/{uid}/complete", {"json": {}}),
            ("POST", f"/api/uploads/{uid}/complete", {"json": {"parts": []}}),
            ("DELETE", f"/api/uploads/{uid}", {}),
        ]
    for method, path, options in attempts:
        headers = bob.headers(**options.pop("headers", {}))
        answer = bob.client.open(path, method=method, headers=headers, **options)
        body = answer.get_data(as_text=True)
        assert answer.status_code == 404, (method, path, answer.status_code, body[:200])
        assert "Location" not in answer.headers, (method, path)
        for secret in ("alices secret", "X-Amz", "Signature", "movies/", "posters/", "/storage/",
                       "policy"):
            assert secret not in body, (method, path, secret)
        if path.startswith("/api/"):
            assert answer.get_json() == {"error": answer.get_json()["error"]}
    assert calls == [], "the store was asked for something on another user's behalf"

    # Alice's things are untouched.
    assert alice.client.get(f"/api/files/{file_id}").get_json()["file"]["name"] == (
        "alices secret.mp4"
    )
    assert {u.id for u in rows(app, PendingUpload)} == {multipart["id"], form["id"]}
    assert alice.client.get(f"/files/{file_id}/download").status_code == 302
    assert alice.client.get(f"/files/{file_id}/poster").status_code == 302


def test_duplicates_are_per_user_so_a_hash_reveals_nothing(app: Flask) -> None:
    alice_id = make_user(app, "alice")
    make_user(app, "bob")
    bob = sign_in(app, "bob")
    data = b"alice's home video"
    add_file(app, alice_id, "home.mp4", data)
    check = bob.client.post(
        "/api/files/check", json={"files": [{"sha256": sha256_of(data), "size": len(data)}]},
        headers=bob.headers(),
    )
    assert check.get_json()["results"] == [
        {"sha256": sha256_of(data), "duplicate": False, "file": None}
    ]
    created = bob.client.post(
        "/api/uploads",
        json={"name": "mine.mp4", "size": len(data), "sha256": sha256_of(data)},
        headers=bob.headers(),
    )
    assert created.status_code == 201  # his own upload, not a link to Alice's file


def test_signed_out_requests_get_401_json_or_the_login_page(app: Flask) -> None:
    alice_id = make_user(app, "alice")
    file_id = add_file(app, alice_id, "private.mp4")
    client = app.test_client()
    for method, path in [
        ("GET", "/api/files"), ("GET", f"/api/files/{file_id}"), ("GET", "/api/uploads/x"),
        ("POST", "/api/files/check"), ("POST", "/api/uploads"),
    ]:
        answer = client.open(path, method=method, json={})
        error = answer.get_json()["error"]
        # Refused before anything else, reads and writes alike: without a session no CSRF
        # token could help, so the answer is the sign-in the API needs.
        assert answer.status_code == 401 and error.startswith("Sign in"), (path, error)
    for path in ("/", f"/files/{file_id}", f"/files/{file_id}/download",
                 f"/files/{file_id}/stream", f"/files/{file_id}/edit"):
        answer = client.get(path)
        assert answer.status_code == 302
        assert answer.headers["Location"].startswith("/login?next=")
        assert "private.mp4" not in answer.get_data(as_text=True)


# --- CSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["missing", "wrong", "another-session"])
def test_state_changing_requests_without_a_valid_csrf_token_are_refused(
    app: Flask, token: str
) -> None:
    alice_id = make_user(app, "alice")
    make_user(app, "bob")
    alice = sign_in(app, "alice")
    file_id = add_file(app, alice_id, "keep.mp4")
    upload = start_upload(alice, 11 * MIB)
    uid = upload["id"]
    bad = {
        "missing": {},
        "wrong": {"X-CSRFToken": "not-a-token"},
        "another-session": {"X-CSRFToken": sign_in(app, "bob").token},
    }[token]
    form_token = {"csrf_token": bad["X-CSRFToken"]} if bad else {}

    attempts: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/files/check", {"json": {"files": []}}),
        ("POST", "/api/uploads", {"json": {"name": "n.mp4", "size": 10,
                                           "sha256": secrets.token_hex(32)}}),
        ("POST", f"/api/uploads/{uid}/parts", {"json": {"part_numbers": [1]}}),
        ("POST", f"/api/uploads/{uid}/complete", {"json": {"parts": []}}),
        ("DELETE", f"/api/uploads/{uid}", {}),
        ("PATCH", f"/api/files/{file_id}", {"json": {"name": "changed.mp4"}}),
        ("DELETE", f"/api/files/{file_id}", {}),
        ("POST", f"/files/{file_id}/rename", {"data": {"name": "changed.mp4", **form_token}}),
        ("POST", f"/files/{file_id}/rename",
         {"data": {"name": "changed.mp4", **form_token}, "headers": {"HX-Request": "true"}}),
        ("POST", f"/files/{file_id}/delete", {"data": form_token}),
        ("POST", "/logout", {"data": form_token}),
    ]
    for method, path, options in attempts:
        headers = {**bad, **options.pop("headers", {})}
        answer = alice.client.open(path, method=method, headers=headers, **options)
        assert answer.status_code == 400, (method, path, answer.status_code)
        assert "CSRF" in answer.get_data(as_text=True), (method, path)
        if path.startswith("/api/"):
            assert "CSRF" in answer.get_json()["error"]

    # Nothing changed, and Alice is still signed in.
    (stored,) = rows(app, StoredFile)
    assert (stored.id, stored.name) == (file_id, "keep.mp4")
    assert [u.id for u in rows(app, PendingUpload)] == [uid]
    assert alice.client.get("/").status_code == 200

    # Signing in needs the token too (no login CSRF), and a refused attempt is not counted.
    stranger = app.test_client()
    stranger.get("/login")
    answer = stranger.post("/login", data={"username": "alice", "password": PASSWORD,
                                           **form_token})
    assert answer.status_code == 400
    assert stranger.get("/").status_code == 302
    assert rows(app, LoginAttempt) == []


def test_first_run_setup_needs_the_csrf_token(app: Flask) -> None:
    client = app.test_client()
    client.get("/setup")
    for token in ({}, {"csrf_token": "forged"}):
        answer = client.post("/setup", data={
            "username": "mallory", "password": PASSWORD, "password_confirm": PASSWORD, **token,
        })
        assert answer.status_code == 400
    assert rows(app, User) == []


# --- hostile file names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [XSS, ATTRIBUTE_BREAKER], ids=["img-onerror", "attribute"])
def test_hostile_names_are_text_in_every_html_response(app: Flask, name: str) -> None:
    alice_id = make_user(app, "alice")
    alice = sign_in(app, "alice")
    file_id = add_file(app, alice_id, name)
    htmx = alice.headers(**{"HX-Request": "true"})
    pages = {
        "library": alice.client.get("/"),
        "list fragment": alice.client.get("/?q=.mp4", headers=htmx),
        "row": alice.client.get(f"/files/{file_id}/row", headers=htmx),
        "edit form": alice.client.get(f"/files/{file_id}/edit", headers=htmx),
        "movie page": alice.client.get(f"/files/{file_id}"),
        "refused rename": alice.client.post(f"/files/{file_id}/rename", data={"name": "  "},
                                            headers=htmx),
        "card": alice.client.get(f"/files/{file_id}/card", headers=htmx),
        "movie head": alice.client.get(f"/files/{file_id}/head", headers=htmx),
        "title form": alice.client.get(f"/files/{file_id}/title", headers=htmx),
        # A file recorded without a title shows its name as the title; typed back as the
        # title with a bad year, it comes back in the refused form.
        "refused title": alice.client.post(f"/files/{file_id}/title",
                                           data={"title": name, "year": "soon"},
                                           headers=htmx),
    }
    # Renaming to the hostile name through the plain form flashes it on the next page.
    renamed = alice.client.post(f"/files/{file_id}/rename", data={"name": name},
                                headers=alice.headers())
    assert renamed.status_code == 302
    pages["flash"] = alice.client.get(renamed.headers["Location"])

    for what, answer in pages.items():
        html = answer.get_data(as_text=True)
        assert answer.status_code in (200, 422), what
        page = Page(html)
        assert page.event_handlers() == [], (what, page.event_handlers())
        assert not [a for tag, a in page.elements if tag == "img"], what
        # The name is there, as the browser will show it: text, or an attribute's value.
        shown = "".join(page.text) + "".join(v or "" for _, a in page.elements
                                             for v in a.values())
        if what != "refused rename":  # that form shows what was typed (blank), not the name
            assert name in shown, what
    # The delete confirmations carry the name, decoded exactly, inside one attribute.
    row = Page(pages["row"].get_data(as_text=True))
    assert any(name in value for value in row.attributes("hx-confirm"))
    movie = Page(pages["movie page"].get_data(as_text=True))
    assert any(name in value for value in movie.attributes("data-confirm"))
    edit = Page(pages["edit form"].get_data(as_text=True))
    assert name in edit.attributes("value")
    # JSON is JSON: the browser will not sniff it into HTML.
    api = alice.client.get(f"/api/files/{file_id}")
    assert api.mimetype == "application/json"
    assert api.headers["X-Content-Type-Options"] == "nosniff"
    assert api.get_json()["file"]["name"] == name


def test_markup_in_next_and_in_paths_is_not_reflected(app: Flask) -> None:
    make_user(app, "alice")
    client = app.test_client()
    login = Page(client.get("/login", query_string={"next": '/"><img src=x onerror=alert(1)>'})
                 .get_data(as_text=True))
    assert login.event_handlers() == [] and not [t for t, _ in login.elements if t == "img"]
    missing = client.get("/%3Cimg%20src=x%20onerror=alert(1)%3E")
    assert missing.status_code == 404
    assert "<img" not in missing.get_data(as_text=True)


NAMES = [
    XSS,
    'Say "hi"; it\'s 100% fun.mp4',
    "line\nbreak\r\nheader: injected.mp4",
    "../../etc/passwd.mp4",
    "..\\..\\windows\\boot.ini.mp4",
    "Amélie – 東京物語 🎬.mkv",
    "a%20b%2F..%2Fc.mp4",
    "tab\there\x00nul\x7fdel.mkv",
]


def _check_disposition(header: str, expected_name: str, kind: str) -> None:
    """Safe (ASCII, no line breaks, quoted fallback) and correct (filename* is the name)."""
    assert header.isascii() and "\r" not in header and "\n" not in header
    disposition, params = parse_options_header(header)
    assert disposition == kind
    # RFC 6266: filename* (UTF-8, percent-encoded) is what browsers use ...
    assert params["filename"] == expected_name
    assert f"filename*=UTF-8''{quote(expected_name, safe='')}" in header
    star = header.split("filename*=UTF-8''", 1)[1].split(";", 1)[0]
    assert unquote(star) == expected_name
    # ... and the plain filename is a harmless ASCII stand-in for older clients.
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert all(0x20 <= ord(c) < 0x7F and c not in '"\\;%' for c in fallback)
    assert "/" not in expected_name and "\\" not in expected_name


@pytest.mark.parametrize("raw", NAMES)
def test_download_names_are_safe_and_correct(alice: ApiClient, raw: str) -> None:
    data = os.urandom(2000)
    expected = validation.file_name(raw)
    result = alice.upload(name=raw, data=data)
    assert result["file"]["name"] == expected
    assert not any(ord(c) < 0x20 or c in "/\\" for c in expected)
    for route, kind in (("download", "attachment"), ("stream", "inline")):
        got = download(alice, result["file"]["id"], route)
        assert got.status_code == 200 and got.content == data
        _check_disposition(got.headers["Content-Disposition"], expected, kind)


def test_renamed_file_downloads_under_its_new_name(alice: ApiClient) -> None:
    file_id = alice.upload(name="old.mp4", data=os.urandom(500))["file"]["id"]
    renamed = alice.api("PATCH", f"/files/{file_id}", json={"name": NAMES[1]})
    assert renamed.status_code == 200
    got = download(alice, file_id, "download")
    _check_disposition(got.headers["Content-Disposition"], NAMES[1], "attachment")


# --- sign-in throttle -----------------------------------------------------------------------


def _age_attempts(app: Flask, minutes: int) -> None:
    """Pretend every recorded failure happened `minutes` earlier."""
    with db.session_scope(app) as session:
        session.exec(update(LoginAttempt).values(at=LoginAttempt.at - timedelta(minutes=minutes)))
        session.commit()


def test_five_failures_for_a_username_block_it_in_every_process(
    app: Flask, app_config: dict[str, Any]
) -> None:
    make_user(app, "alice")
    make_user(app, "bob")
    other_process = create_app(app_config)  # same database, separate app and engine
    for n in range(3):
        assert attempt(app, "alice", "wrong-password", f"10.0.0.{n}").status_code == 401
    for n in range(3, 5):
        assert attempt(other_process, "Alice", "wrong-password", f"10.0.0.{n}").status_code == 401
    right = attempt(app, "alice", PASSWORD, "10.0.1.1")
    wrong = attempt(other_process, "alice", "wrong-password", "10.0.1.2")
    assert right.status_code == wrong.status_code == 429
    # The same answer either way: the throttle is not an oracle for the password.
    message = "Too many failed sign-in attempts"
    assert message in right.get_data(as_text=True) and message in wrong.get_data(as_text=True)
    assert "Location" not in right.headers
    # Other accounts are not locked out by Alice's attacker.
    assert attempt(other_process, "bob", PASSWORD, "10.0.1.3").status_code == 302
    # The window passes.
    _age_attempts(app, 16)
    assert attempt(other_process, "alice", PASSWORD, "10.0.1.4").status_code == 302


def test_five_failures_from_an_address_block_it_for_every_username(app: Flask) -> None:
    make_user(app, "alice")
    for n in range(5):
        guess = attempt(app, f"user{n}", "wrong-password", "192.0.2.7")
        assert guess.status_code == 401
    assert attempt(app, "alice", PASSWORD, "192.0.2.7").status_code == 429
    assert attempt(app, "alice", PASSWORD, "192.0.2.8").status_code == 302


def test_forwarded_for_headers_do_not_reset_the_address_count(app: Flask) -> None:
    make_user(app, "alice")
    assert app.config["PROXY_COUNT"] == 0
    for n in range(5):
        spoof = {"X-Forwarded-For": f"203.0.113.{n}", "X-Real-IP": f"203.0.113.{n}"}
        assert attempt(app, f"user{n}", "nope-nope", "198.51.100.1", spoof).status_code == 401
    fresh = {"X-Forwarded-For": "203.0.113.99"}
    assert attempt(app, "alice", PASSWORD, "198.51.100.1", fresh).status_code == 429


# --- session cookies ------------------------------------------------------------------------


def test_session_cookie_is_httponly_and_samesite_lax_and_not_secure_over_http(app: Flask) -> None:
    make_user(app, "alice")
    answer = attempt(app, "alice", PASSWORD, "127.0.0.1")
    assert answer.status_code == 302
    cookie = cookie_attributes(answer, "session")
    assert "httponly" in cookie and cookie["samesite"] == "lax"
    assert "secure" not in cookie


def test_session_cookie_is_secure_when_served_over_https(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "PUBLIC_URL": "https://movies.example.org"})
    make_user(app, "alice")
    client = app.test_client()
    base = "https://movies.example.org"
    token = csrf_from(client.get("/login", base_url=base).get_data(as_text=True))
    form = {"username": "alice", "password": PASSWORD, "csrf_token": token}
    # Over https, Flask-WTF also insists that the Referer is this site.
    foreign = client.post("/login", base_url=base, data=form,
                          headers={"Referer": "https://evil.example/"})
    assert foreign.status_code == 400
    answer = client.post("/login", base_url=base, data=form, headers={"Referer": f"{base}/login"})
    assert answer.status_code == 302
    cookie = cookie_attributes(answer, "session")
    assert "secure" in cookie and "httponly" in cookie and cookie["samesite"] == "lax"


# --- `next` ---------------------------------------------------------------------------------


OFF_SITE = [
    "//evil.com", "///evil.com", "////evil.com", "/\\evil.com", "/\\/evil.com", "\\\\evil.com",
    "\\/evil.com", "https://evil.com", "http://evil.com/x", "HTTPS://evil.com", "https:evil.com",
    "http:/evil.com", "ftp://evil.com", "javascript:alert(1)", "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>", " //evil.com", "\t//evil.com", "/\t/evil.com",
    "/\n/evil.com", "/\r\nLocation: https://evil.com", "%2F%2Fevil.com", "%2f%5cevil.com",
    "/%2F%2Fevil.com", "//evil.com@movies.example", "/.//evil.com" , "//%65vil.com",
    "\u3000//evil.com", "／／evil.com",
]


def assert_stays_on_site(location: str) -> None:
    """The redirect target, read the way browsers read URLs, is a path on this site."""
    assert not any(ord(c) < 0x20 or ord(c) == 0x7F for c in location), location
    # Browsers (WHATWG URL) drop surrounding spaces, treat backslashes as slashes, and take
    # two or more leading slashes, or a scheme, as the start of another origin.
    lenient = location.strip(" ").replace("\\", "/")
    assert lenient.startswith("/") and not lenient.startswith("//"), location
    target = urlsplit(urljoin("http://movies.example/login", lenient))
    assert (target.scheme, target.netloc) == ("http", "movies.example"), location


@pytest.mark.parametrize("target", OFF_SITE)
def test_next_cannot_send_anyone_off_site(app: Flask, target: str) -> None:
    make_user(app, "alice")
    client = app.test_client()
    token = csrf_from(client.get("/login", query_string={"next": target}).get_data(as_text=True))
    answer = client.post("/login", data={"username": "alice", "password": PASSWORD,
                                         "csrf_token": token, "next": target})
    assert answer.status_code == 302
    assert_stays_on_site(answer.headers["Location"])
    # Signed in already, the login page redirects straight to `next`: the same rule holds.
    again = client.get("/login", query_string={"next": target})
    assert again.status_code == 302
    assert_stays_on_site(again.headers["Location"])


# --- security headers -----------------------------------------------------------------------


def store_origin(app: Flask) -> set[str]:
    """The origin browsers use for the store: the public S3 endpoint, or none for local."""
    if get_storage(app).kind != "s3":
        return set()
    endpoint = app.config["S3_PUBLIC_ENDPOINT_URL"] or app.config["S3_ENDPOINT_URL"]
    parts = urlsplit(endpoint)
    return {f"{parts.scheme}://{parts.netloc}"}


def static_sources(app: Flask) -> set[str]:
    """Where pages may take code from: /static/ at PUBLIC_URL and at the test client's host."""
    return {f"{app.config['PUBLIC_URL']}/static/", "http://localhost/static/"}


def assert_security_headers(
    answer: TestResponse, stores: set[str], what: str, static: set[str]
) -> None:
    """CSP (code from the app's /static/ only, transfers to the app and the store), nosniff,
    no frames."""
    policy = csp(answer)
    assert policy["script-src"] == static, what
    assert policy["style-src"] == static, what
    assert policy["connect-src"] == {"'self'"} | stores, what
    assert policy["media-src"] == {"'self'"} | stores, what
    assert policy["frame-src"] == {"'none'"}, what
    assert policy["frame-ancestors"] == {"'none'"}, what
    assert policy["default-src"] == {"'self'"}, what
    assert policy["object-src"] == {"'none'"}, what
    assert not any("unsafe" in s for sources in policy.values() for s in sources), what
    assert answer.headers["X-Content-Type-Options"] == "nosniff", what
    assert answer.headers["X-Frame-Options"] == "DENY", what
    assert answer.headers["Referrer-Policy"] in ("same-origin", "no-referrer"), what


def test_security_headers_on_every_page_and_api_response(app: Flask) -> None:
    stores = store_origin(app)
    anonymous = app.test_client()
    responses: dict[str, TestResponse] = {
        "setup page": anonymous.get("/setup"),
    }
    alice_id = make_user(app, "alice")
    file_id = add_file(app, alice_id, "Heat.mp4")
    responses |= {
        "login page": anonymous.get("/login"),
        "redirect to login": anonymous.get("/"),
        "api 401": anonymous.get("/api/files"),
        "api csrf 400": anonymous.post("/api/files/check", json={}),
        "static file": anonymous.get("/static/css/app.css"),
        "page 404": anonymous.get("/no/such/page"),
        "api 404": anonymous.get("/api/no/such/thing"),
    }
    alice = sign_in(app, "alice")
    htmx = alice.headers(**{"HX-Request": "true"})
    responses |= {
        "library": alice.client.get("/"),
        "list fragment": alice.client.get("/", headers=htmx),
        "movie page": alice.client.get(f"/files/{file_id}"),
        "row": alice.client.get(f"/files/{file_id}/row", headers=htmx),
        "edit form": alice.client.get(f"/files/{file_id}/edit", headers=htmx),
        "download redirect": alice.client.get(f"/files/{file_id}/download"),
        "stream redirect": alice.client.get(f"/files/{file_id}/stream"),
        "api list": alice.client.get("/api/files"),
        "api file": alice.client.get(f"/api/files/{file_id}"),
        "api rename": alice.client.patch(f"/api/files/{file_id}", json={"name": "H.mp4"},
                                         headers=alice.headers()),
        "api 400": alice.client.post("/api/uploads", data="{", headers=alice.headers(),
                                     content_type="application/json"),
        "api 405": alice.client.put("/api/files", headers=alice.headers()),
        "api create": alice.client.post("/api/uploads", json={
            "name": "n.mp4", "size": 10, "sha256": secrets.token_hex(32)},
            headers=alice.headers()),
    }
    for what, answer in responses.items():
        answer.close()  # the static file's handle
        assert answer.status_code < 500, what
        assert_security_headers(answer, stores, what, static_sources(app))
    # Signed URLs are credentials: not cached, not leaked through Referer.
    for what in ("download redirect", "stream redirect"):
        assert responses[what].headers["Cache-Control"] == "private, no-store"
        assert responses[what].headers["Referrer-Policy"] == "no-referrer"
    # The CSP can forbid inline code because the pages have none.
    for what in ("login page", "library", "movie page", "row", "edit form", "list fragment"):
        page = Page(responses[what].get_data(as_text=True))
        assert page.event_handlers() == [], what
        scripts = [a for tag, a in page.elements if tag == "script"]
        assert all(a.get("src") for a in scripts), what
        assert not [t for t, a in page.elements if t == "style" or "style" in a], what


def test_only_the_hash_worker_may_compile_webassembly(app: Flask) -> None:
    # A worker runs under the policy sent with its own script: hash-wasm needs
    # 'wasm-unsafe-eval' (WebAssembly only, never JavaScript eval); nothing else gets it.
    client = app.test_client()
    worker = client.get("/static/js/hash-worker.js")
    worker.close()
    assert worker.status_code == 200
    assert csp(worker)["script-src"] == static_sources(app) | {"'wasm-unsafe-eval'"}
    for path in ("/static/js/app.js", "/static/js/read-worker.js", "/setup"):
        other = client.get(path)
        other.close()
        assert csp(other)["script-src"] == static_sources(app), path


@pytest.mark.parametrize("backend", ["s3"])
def test_csp_names_the_public_s3_endpoint_browsers_use(
    app_config: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "S3_PUBLIC_ENDPOINT_URL": "https://files.example.org:9000"})
    answer = app.test_client().get("/setup")
    assert_security_headers(
        answer, {"https://files.example.org:9000"}, "setup page", static_sources(app)
    )
    assert app_config["S3_ENDPOINT_URL"] not in answer.headers["Content-Security-Policy"]

