"""Every JSON endpoint fed with hostile input: never a 5xx, never a traceback, always
`{"error": ...}` for refusals.

The examples are derandomized and nothing is stored between runs, so CI sees the same
inputs each time. MOVIEVAULT_FUZZ=thorough runs many more, random ones.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from movievault import db
from movievault.client import sha256_of
from movievault.models import PendingUpload, StoredFile
from tests.support import MIB, make_user, sign_in

settings.register_profile(
    "movievault-ci",
    max_examples=75,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    # The app (a fresh database and bucket per test) is shared by a test's examples on
    # purpose: state left by one example is more input for the next.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "movievault-thorough", parent=settings.get_profile("movievault-ci"),
    max_examples=1000, derandomize=False,
)
FUZZ = settings.get_profile(
    "movievault-thorough" if os.environ.get("MOVIEVAULT_FUZZ") == "thorough" else "movievault-ci"
)

# --- what clients can send ------------------------------------------------------------------

HUGE = [0, -1, 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63) - 1]
WEIRD_TEXT = [
    "", " ", "\x00", "\ud800", "a\udfff.mp4", "\u202egnp.exe", "..", "../../etc/passwd",
    "C:\\boot.ini", "%00", "<script>alert(1)</script>", "' OR 1=1 --", "\r\nX-Injected: 1",
    "🎬" * 300, "é" * 256 + ".mkv",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from(HUGE),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(WEIRD_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
sizes = st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.sampled_from(HUGE),
                  json_values)
hashes = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF", min_size=62, max_size=66),
    st.sampled_from(["0" * 64, "g" * 64, "F" * 64, " " + "a" * 63, "a" * 64 + "\n"]),
    st.builds(lambda: secrets.token_hex(32)),
    json_values,
)
giant_names = st.builds(
    lambda piece, count: piece * count + ".mp4",
    st.sampled_from(["a", "é", "🎬", "\u0301", "/", "\\", "\x00", "<", "%", "."]),
    st.integers(min_value=200, max_value=20_000),
)
names = st.one_of(st.text(max_size=300), st.sampled_from(WEIRD_TEXT), giant_names, json_values)
content_types = st.one_of(
    st.sampled_from(["video/mp4", "text/html", "x" * 500, "video/mp4; charset=<x>", "a/b/c"]),
    st.text(max_size=40), json_values,
)


def objects(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """JSON objects with any subset of `fields` (plus stray keys), or any other JSON value."""
    known = st.fixed_dictionaries({}, optional=fields)
    stray = st.dictionaries(st.text(max_size=8), json_values, max_size=3)
    merged = st.builds(lambda a, b: {**b, **a}, known, stray)
    return st.one_of(merged, merged, merged, json_values)


upload_bodies = objects(
    {"name": names, "size": sizes, "sha256": hashes, "content_type": content_types,
     "fingerprint": hashes}
)
check_items = objects({"sha256": hashes, "size": sizes, "fingerprint": hashes})
check_bodies = objects(
    {"files": st.one_of(st.lists(check_items, max_size=8), json_values,
                        st.builds(lambda n: [{"sha256": "0" * 64, "size": 1}] * n,
                                  st.integers(995, 1010)))}
)
part_number_lists = st.one_of(
    st.lists(st.one_of(st.integers(min_value=-5, max_value=12), st.sampled_from(HUGE),
                       json_values), max_size=8),
    st.builds(lambda n: list(range(1, n + 1)), st.integers(95, 105)),
    json_values,
)
part_entries = objects({"number": st.one_of(st.integers(min_value=-5, max_value=12),
                                           st.sampled_from(HUGE), json_values),
                        "sha256": hashes})
parts_bodies = objects({"part_numbers": part_number_lists,
                        "parts": st.one_of(st.lists(part_entries, max_size=8), json_values)})
etags = st.one_of(st.builds(lambda: f'"{secrets.token_hex(16)}"'), st.text(max_size=300),
                  st.sampled_from(["", '""', '"', "x" * 257]), json_values)
declared_parts = objects({"part_number": st.one_of(st.integers(-3, 5), st.sampled_from(HUGE),
                                                   json_values),
                          "etag": etags})
complete_bodies = objects(
    {"parts": st.one_of(st.lists(declared_parts, max_size=5), json_values),
     "sha256": hashes}
)
rename_bodies = objects({"name": names})
raw_bodies = st.one_of(
    st.binary(max_size=300),
    st.sampled_from([
        b"", b"{", b"[", b"{}}", b'{"a":1}garbage', b"NaN", b"Infinity", b"-", b"\xff\xfe{}",
        b'{"name": "\xff"}', b"\x00", b'"just a string"', b"[]", b"null", b"1e999",
        b'{"size": 1e400}', b'{"a": "\\ud800"}',
    ]),
    st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(min_value=1, max_value=50_000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
    st.just(b'{"name": "' + b"a" * (1024 * 1024 + 10) + b'"}'),  # over the 1 MiB limit
)
raw_content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "application/json; charset=utf-16",
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/vnd.api+json", "",
])
ids = st.one_of(
    st.text(max_size=60), st.sampled_from(["..", "%2e%2e", "0", "-1", str(2**64), "null"]),
)
file_ids = st.one_of(st.integers(min_value=0, max_value=2**70), st.sampled_from(HUGE))


# --- the app under fuzz ---------------------------------------------------------------------


@dataclass
class Target:
    """A signed-in client, its CSRF token, and real things to aim at."""

    client: FlaskClient
    token: str
    multipart_id: str
    form_id: str
    file_id: int

    def send(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             content_type: str = "application/json") -> TestResponse:
        """Send `body` as JSON (or `raw` bytes) with the CSRF header."""
        data = raw if raw is not None else (None if body is None else json.dumps(body))
        return self.client.open(path, method=method, data=data, content_type=content_type,
                                headers={"X-CSRFToken": self.token})

    def upload_id(self, choice: int, other: str) -> str:
        """One of the real upload ids, or the generated one."""
        return (self.multipart_id, self.form_id, other)[choice]


def _create(client: FlaskClient, token: str, size: int, sha256: str) -> str:
    """Create (or resume) an upload and return its id."""
    answer = client.post("/api/uploads", json={"name": "fuzz.mkv", "size": size,
                                               "sha256": sha256},
                         headers={"X-CSRFToken": token})
    assert answer.status_code in (200, 201), answer.get_data(as_text=True)
    return answer.get_json()["upload"]["id"]


@pytest.fixture
def target(app: Flask) -> Iterator[Target]:
    """Alice, signed in, with a file, a pending multipart upload and a pending form upload."""
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    client, token = alice.client, alice.token
    data = b"a movie"
    form_id = _create(client, token, len(data), sha256_of(data))
    # Turn the form upload into a file directly; the protocol is tested elsewhere.
    with db.session_scope(app) as session:
        pending = session.get(PendingUpload, form_id)
        assert pending is not None
        stored = StoredFile(owner_id=pending.owner_id, name="movie.mp4", size=len(data),
                            sha256=sha256_of(data), content_type="video/mp4", key=pending.key)
        session.delete(pending)
        session.add(stored)
        session.commit()
        file_id = stored.id
    assert file_id is not None
    yield Target(
        client=client, token=token,
        multipart_id=_create(client, token, 11 * MIB, "ab" * 32),
        form_id=_create(client, token, 1000, "cd" * 32),
        file_id=file_id,
    )


def assert_well_formed(answer: TestResponse) -> None:
    """No server error, no traceback; refusals are JSON `{"error": "..."}`."""
    body = answer.get_data(as_text=True)
    assert answer.status_code < 500, (answer.status_code, body[:500])
    assert "Traceback" not in body and 'File "' not in body, body[:500]
    if 300 <= answer.status_code < 400:  # e.g. werkzeug merging "//" in a path
        location = answer.headers["Location"]
        assert location.startswith(("/api/", "http://localhost/api/")), location
    elif answer.status_code >= 400:
        assert answer.mimetype == "application/json", (answer.status_code, body[:200])
        error = answer.get_json()
        assert isinstance(error, dict) and list(error) == ["error"], error
        assert isinstance(error["error"], str) and error["error"]
    elif answer.status_code != 204:
        assert answer.mimetype == "application/json"
        answer.get_json()


# --- the fuzz tests -------------------------------------------------------------------------


@FUZZ
@given(body=check_bodies)
def test_fuzz_check(target: Target, body: Any) -> None:
    assert_well_formed(target.send("POST", "/api/files/check", body))


@FUZZ
@given(body=upload_bodies)
def test_fuzz_create(target: Target, body: Any) -> None:
    assert_well_formed(target.send("POST", "/api/uploads", body))


@FUZZ
@given(body=parts_bodies, which=st.integers(0, 2), other=ids)
def test_fuzz_parts(target: Target, body: Any, which: int, other: str) -> None:
    upload_id = target.upload_id(which, other)
    assert_well_formed(target.send("POST", f"/api/uploads/{upload_id}/parts", body))


@FUZZ
@given(body=complete_bodies, which=st.integers(0, 2), other=ids)
def test_fuzz_complete(target: Target, body: Any, which: int, other: str) -> None:
    upload_id = target.upload_id(which, other)
    assert_well_formed(target.send("POST", f"/api/uploads/{upload_id}/complete", body))
    # A refused declaration discards the upload: start it again for the next example.
    target.multipart_id = _create(target.client, target.token, 11 * MIB, "ab" * 32)
    target.form_id = _create(target.client, target.token, 1000, "cd" * 32)


@FUZZ
@given(which=st.integers(0, 2), other=ids, method=st.sampled_from(["GET", "DELETE"]))
def test_fuzz_status_and_cancel(target: Target, which: int, other: str, method: str) -> None:
    upload_id = target.upload_id(which, other)
    assert_well_formed(target.send(method, f"/api/uploads/{upload_id}"))
    if method == "DELETE":
        target.multipart_id = _create(target.client, target.token, 11 * MIB, "ab" * 32)
        target.form_id = _create(target.client, target.token, 1000, "cd" * 32)


@FUZZ
@given(body=rename_bodies, real=st.booleans(), other=file_ids)
def test_fuzz_rename(target: Target, body: Any, real: bool, other: int) -> None:
    file_id = target.file_id if real else other
    assert_well_formed(target.send("PATCH", f"/api/files/{file_id}", body))
    assert_well_formed(target.send("GET", f"/api/files/{file_id}"))


@FUZZ
@given(
    query=st.dictionaries(
        st.sampled_from(["q", "sort", "page", "x"]),
        st.one_of(st.text(max_size=300), st.sampled_from([str(n) for n in HUGE] + WEIRD_TEXT
                                                         + ["-size", "name", "1e9", "0x10"])),
    ),
)
def test_fuzz_list(target: Target, query: dict[str, str]) -> None:
    # Encode as a raw client can: lone surrogates become their (invalid) UTF-8 bytes.
    encoded = "&".join(
        f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
        for k, v in query.items()
    )
    answer = target.client.get(f"/api/files?{encoded}")
    assert_well_formed(answer)
    assert answer.status_code == 200


@FUZZ
@given(file_id=file_ids, method=st.sampled_from(["GET", "DELETE"]))
def test_fuzz_file_ids(target: Target, file_id: int, method: str) -> None:
    if file_id == target.file_id:
        return
    assert_well_formed(target.send(method, f"/api/files/{file_id}"))


ENDPOINTS = [
    ("POST", "/api/files/check"), ("POST", "/api/uploads"), ("POST", "/api/uploads/{u}/parts"),
    ("POST", "/api/uploads/{u}/complete"), ("PATCH", "/api/files/{f}"),
]


@FUZZ
@given(raw=raw_bodies, content_type=raw_content_types, endpoint=st.sampled_from(ENDPOINTS))
def test_fuzz_malformed_bodies(
    target: Target, raw: bytes, content_type: str, endpoint: tuple[str, str]
) -> None:
    method, path = endpoint
    path = path.format(u=target.multipart_id, f=target.file_id)
    assert_well_formed(target.send(method, path, raw=raw, content_type=content_type))


API_PATHS = [
    "/api/files", "/api/files/check", "/api/uploads", "/api/uploads/x", "/api/uploads/x/parts",
    "/api/uploads/x/complete", "/api/files/1", "/api/nothing", "/api/files/-1", "/api/files/1.5",
]


def test_every_method_on_every_api_path_answers_json(target: Target) -> None:
    for path in API_PATHS:
        for method in ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD", "OPTIONS"):
            answer = target.send(method, path, raw=b"{}")
            if method in ("HEAD", "OPTIONS"):  # no body to check
                assert answer.status_code < 500, (method, path)
                continue
            assert_well_formed(answer)


@pytest.mark.parametrize("file_id", [0, 2**63 - 1, 2**63, 10**30])
def test_page_routes_with_out_of_range_ids_are_404(target: Target, file_id: int) -> None:
    for route in ("", "/row", "/edit", "/download", "/stream"):
        answer = target.client.get(f"/files/{file_id}{route}")
        assert answer.status_code == 404, (route, answer.status_code)
    for route in ("/rename", "/delete"):
        answer = target.send("POST", f"/files/{file_id}{route}", raw=b"name=x",
                             content_type="application/x-www-form-urlencoded")
        assert answer.status_code == 404, (route, answer.status_code)
