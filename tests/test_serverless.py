"""The Lambda handler (movievault/serverless.py) driven by API Gateway payload 2.0 events.

Each request below is an event as API Gateway's HTTP API (or a function URL) sends it
(tests/apigateway.py), handed to `serverless.handler` itself, configured as in AWS by its
environment; the catalogue is in PostgreSQL (tests/postgres.py), as the function's is, and
movies go to a real S3 endpoint (moto's server), never through the handler.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import requests
from flask import Flask

from movievault import db, jobs, serverless
from movievault.backends import get_storage
from movievault.client import ApiClient, sha256_of
from movievault.config import ConfigError
from movievault.models import PendingUpload, ProbeJob, StoredFile
from movievault.static_urls import MAX_AGE
from tests.apigateway import (
    BASE_URL,
    LambdaContext,
    body_of,
    check_response,
    http_event,
    scheduled_event,
    session_through,
)
from tests.support import (
    MIB,
    ROOT,
    SECRET_KEY,
    add_file,
    download,
    expire_in,
    make_user,
    probe_job,
    rows,
    sign_in_over_http,
)


@pytest.fixture
def lambda_settings(
    s3_endpoint: str, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """The function's environment (MOVIEVAULT_*), and a container not yet started."""
    values = {
        "SECRET_KEY": SECRET_KEY,
        "DATABASE_URL": postgres_url,
        "STORAGE": "s3",
        "S3_BUCKET": f"mv-{uuid.uuid4().hex[:12]}",
        "S3_ENDPOINT_URL": s3_endpoint,
        "PUBLIC_URL": BASE_URL,
        "MULTIPART_THRESHOLD": str(6 * MIB),
        "PART_SIZE": str(5 * MIB),
    }
    for name, value in values.items():
        monkeypatch.setenv(f"MOVIEVAULT_{name}", value)
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setattr(serverless, "_app", None)
    monkeypatch.setattr(serverless, "_handler", None)
    yield values
    _stop_container()


def _stop_container() -> None:
    """Close the container's pooled connections (its database is dropped next)."""
    if serverless._app is not None:
        db.engine_of(serverless._app).dispose()


@pytest.fixture
def function(lambda_settings: dict[str, str]) -> Iterator[Flask]:
    """The container's app, built by the handler's own first use; its bucket set up."""
    app, _ = serverless._built()
    get_storage(app).setup(public_url=BASE_URL, abort_after_days=7)
    yield app


@pytest.fixture
def alice(function: Flask) -> ApiClient:
    """alice, signed in through the sign-in page, every request an event to the handler."""
    make_user(function, "alice")
    http, _ = session_through(serverless.handler)
    return ApiClient(http=sign_in_over_http(BASE_URL, "alice", http=http), base=BASE_URL)


def test_sign_in_sets_the_session_cookie_through_the_cookies_list(function: Flask) -> None:
    make_user(function, "alice")
    http, transport = session_through(serverless.handler)
    login = http.get(f"{BASE_URL}/login")
    assert login.status_code == 200 and "text/html" in login.headers["Content-Type"]
    token = re.search(r'name="csrf-token" content="([^"]+)"', login.text)
    assert token is not None
    answer = http.post(
        f"{BASE_URL}/login", allow_redirects=False,
        data={"username": "alice", "password": "correct horse battery",
              "csrf_token": token.group(1)},
    )
    assert answer.status_code == 302
    raw = transport.answers[-1]
    session_cookies = [c for c in raw["cookies"] if c.startswith("session=")]
    assert len(session_cookies) == 1
    assert {"Secure", "HttpOnly", "SameSite=Lax"} <= {
        part.strip() for part in session_cookies[0].split(";")
    }
    # The cookie goes back in the next event's `cookies` list, and the page is alice's.
    event = http_event("GET", f"{BASE_URL}/", headers={
        "cookie": "; ".join(f"{c.name}={c.value}" for c in http.cookies),
    })
    assert any(c.startswith("session=") for c in event["cookies"])
    assert "cookie" not in event["headers"]
    page = serverless.handler(event, LambdaContext())
    check_response(page)
    assert page["statusCode"] == 200 and "alice" in body_of(page).decode()


def test_a_wrong_password_is_refused_on_the_page(function: Flask) -> None:
    make_user(function, "alice")
    http, _ = session_through(serverless.handler)
    with pytest.raises(AssertionError, match="sign-in failed: 401"):
        sign_in_over_http(BASE_URL, "alice", "not the password", http=http)


def test_whole_flow_single_file_by_form_post_to_s3(alice: ApiClient, function: Flask) -> None:
    data = os.urandom(300_000)
    check = alice.check([(sha256_of(data), len(data))])[0]
    assert check["duplicate"] is False
    created = alice.create(name="holiday.mp4", data=data)
    assert created.status_code == 201, created.text
    upload = created.json()["upload"]
    assert upload["method"] == "post"
    # The form goes to the store's own URL, not to the function.
    assert upload["post"]["url"].startswith(function.config["S3_ENDPOINT_URL"])
    sent = alice.post_form(upload, data)
    assert sent.status_code in (200, 201, 204), sent.text
    final = alice.complete(upload["id"])
    assert final.status_code == 201, final.text
    file_id = final.json()["file"]["id"]
    # Three invocations per file: check, create, complete.
    assert [path for _, path in alice.calls] == [
        "/files/check", "/uploads", f"/uploads/{upload['id']}/complete",
    ]
    again = alice.check([(sha256_of(data), len(data))])[0]
    assert again["duplicate"] is True and again["file"]["id"] == file_id
    listing = alice.api("GET", "/files").json()
    assert [f["name"] for f in listing["files"]] == ["holiday.mp4"]
    page = alice.http.get(f"{BASE_URL}/")
    assert page.status_code == 200 and f'href="/files/{file_id}"' in page.text
    redirect = alice.http.get(f"{BASE_URL}/files/{file_id}/download", allow_redirects=False)
    assert redirect.status_code == 302
    assert redirect.headers["Location"].startswith(function.config["S3_ENDPOINT_URL"])
    assert "X-Amz-Signature=" in redirect.headers["Location"]
    got = download(alice, file_id)
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)
    assert [row.name for row in rows(function, StoredFile)] == ["holiday.mp4"]


def test_multipart_file_takes_one_part_url_request_per_hundred_parts(
    alice: ApiClient, function: Flask
) -> None:
    data = os.urandom(12 * MIB + 123)  # three parts
    assert alice.check([(sha256_of(data), len(data))])[0]["duplicate"] is False
    upload = alice.create(name="big.mkv", data=data).json()["upload"]
    assert (upload["method"], upload["part_count"]) == ("multipart", 3)
    etags = alice.put_parts(upload, data, [1, 2, 3])
    final = alice.complete(upload["id"], etags)
    assert final.status_code == 201, final.text
    assert [path for _, path in alice.calls] == [
        "/files/check", "/uploads", f"/uploads/{upload['id']}/parts",
        f"/uploads/{upload['id']}/complete",
    ]
    got = download(alice, final.json()["file"]["id"])
    assert hashlib.sha256(got.content).hexdigest() == sha256_of(data)


def test_static_files_come_versioned_cached_long_and_binary_in_base64(
    alice: ApiClient, function: Flask
) -> None:
    page = alice.http.get(f"{BASE_URL}/").text
    favicon = re.search(r'href="(/static/[0-9a-f]{12}/favicon\.svg)"', page)
    script = re.search(r'src="(/static/[0-9a-f]{12}/js/app\.js)"', page)
    assert favicon and script, "the page links versioned static URLs"
    for url, source, binary in (
        (favicon.group(1), ROOT / "static" / "favicon.svg", True),
        (script.group(1), ROOT / "static" / "js" / "app.js", False),
    ):
        answer = serverless.handler(http_event("GET", BASE_URL + url), LambdaContext())
        check_response(answer)
        assert answer["statusCode"] == 200
        assert answer["isBase64Encoded"] is binary
        assert body_of(answer) == source.read_bytes()
        assert answer["headers"]["cache-control"] == f"public, max-age={MAX_AGE}, immutable"
    # The module's relative imports land in the same versioned folder.
    version = script.group(1).split("/")[2]
    api = serverless.handler(
        http_event("GET", f"{BASE_URL}/static/{version}/js/api.js"), LambdaContext()
    )
    assert body_of(api) == (ROOT / "static" / "js" / "api.js").read_bytes()
    # A page from before a deploy names another version: served, but not kept for a year.
    for stale in ("/static/000000000000/js/app.js", "/static/js/app.js"):
        answer = serverless.handler(http_event("GET", BASE_URL + stale), LambdaContext())
        assert answer["statusCode"] == 200
        assert "immutable" not in answer["headers"].get("cache-control", "")


def test_scheduled_gc_discards_expired_uploads(alice: ApiClient, function: Flask) -> None:
    data = os.urandom(50_000)
    upload = alice.create(name="abandoned.mp4", data=data).json()["upload"]
    alice.post_form(upload, data).raise_for_status()
    expire_in(function, upload["id"], -timedelta(minutes=1))
    result = serverless.handler(scheduled_event("gc"), LambdaContext())
    assert result["task"] == "gc"
    assert (result["expired_uploads"], result["failures"]) == (1, [])
    assert rows(function, PendingUpload) == []
    assert list(get_storage(function).iter_keys()) == []


def test_scheduled_probe_probes_what_complete_queued(
    alice: ApiClient, function: Flask, movies: dict[str, bytes]
) -> None:
    done = alice.upload(name="clip.mp4", data=movies["clip0"])
    file_id = done["file"]["id"]
    assert [job.file_id for job in rows(function, ProbeJob)] == [file_id]
    # No thread probes in a Lambda container: the file waits for the schedule.
    assert alice.api("GET", f"/files/{file_id}").json()["file"]["media"]["duration"] is None
    result = serverless.handler(scheduled_event("probe"), LambdaContext(timeout_seconds=120))
    assert (result["task"], result["probed"], result.get("ready")) == ("probe", 1, 1)
    assert rows(function, ProbeJob) == []
    assert alice.api("GET", f"/files/{file_id}").json()["file"]["media"]["duration"] > 1
    poster = alice.http.get(f"{BASE_URL}/files/{file_id}/poster", allow_redirects=False)
    assert poster.status_code == 302
    assert requests.get(poster.headers["Location"], timeout=30).content[:4] == b"RIFF"
    # Too little time left for one more probe's limit: nothing is claimed.
    assert serverless.handler(scheduled_event("probe"), LambdaContext(timeout_seconds=5)) == {
        "task": "probe", "probed": 0, "seconds": pytest.approx(0, abs=0.5),
    }


def test_a_probe_invocation_too_short_for_one_probe_says_so(
    function: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    file_id = add_file(function, make_user(function, "alice"), "clip.mp4")
    with db.session_scope(function) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()
    # A 30 s function timeout, under PROBE_TIMEOUT (60 s by default) + 10 s: no probe fits.
    with caplog.at_level(logging.WARNING, logger=function.logger.name):
        result = serverless.handler(
            scheduled_event("probe"), LambdaContext(timeout_seconds=30)
        )
    assert (result["task"], result["probed"]) == ("probe", 0)
    assert "function's timeout" in result["warning"]
    assert "MOVIEVAULT_PROBE_TIMEOUT (60 s)" in result["warning"]
    logged = [
        record.getMessage() for record in caplog.records
        if record.name == function.logger.name and record.levelno == logging.WARNING
    ]
    assert logged == [result["warning"]]
    # The file waits, unclaimed, for an invocation with time enough.
    job = probe_job(function, file_id)
    assert job is not None and (job.attempts, job.leased_until) == (0, None)
    assert [row.media_status for row in rows(function, StoredFile)] == ["pending"]


def test_an_unknown_scheduled_task_fails_the_invocation(function: Flask) -> None:
    with pytest.raises(ValueError, match="must be one of gc, probe"):
        serverless.handler(scheduled_event("vacuum"), LambdaContext())


@pytest.mark.parametrize(("name", "value", "message"), [
    ("STORAGE", "local", "must be kept in S3"),
    ("STORAGE", "embedded-s3", "must be kept in S3"),
    ("SECRET_KEY", "", "MOVIEVAULT_SECRET_KEY must be set"),
    ("DATABASE_URL", "", "set MOVIEVAULT_DATABASE_URL to the PostgreSQL catalogue"),
])
def test_what_cannot_work_in_lambda_is_refused_with_a_sentence(
    lambda_settings: dict[str, str], monkeypatch: pytest.MonkeyPatch,
    name: str, value: str, message: str,
) -> None:
    monkeypatch.setenv(f"MOVIEVAULT_{name}", value)
    with pytest.raises(ConfigError, match=message):
        serverless.handler(http_event("GET", f"{BASE_URL}/login"), LambdaContext())


def test_settings_come_from_a_secrets_manager_secret(
    lambda_settings: dict[str, str], s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3_endpoint)
    key = "k" * 40
    arn = boto3.client("secretsmanager", endpoint_url=s3_endpoint).create_secret(
        Name=f"movievault-{uuid.uuid4().hex[:8]}",
        SecretString=f'{{"SECRET_KEY": "{key}", "DATABASE_URL": '
                     f'"{lambda_settings["DATABASE_URL"]}"}}',
    )["ARN"]
    monkeypatch.delenv("MOVIEVAULT_SECRET_KEY")
    monkeypatch.delenv("MOVIEVAULT_DATABASE_URL")
    monkeypatch.setenv("MOVIEVAULT_SECRET_ARN", arn)
    app, _ = serverless._built()
    assert app.config["SECRET_KEY"] == key
    make_user(app, "alice")
    assert serverless.handler(http_event("GET", f"{BASE_URL}/login"), LambdaContext())[
        "statusCode"] == 200
    _stop_container()
    monkeypatch.setattr(serverless, "_app", None)
    monkeypatch.setenv("MOVIEVAULT_SECRET_ARN", arn + "-gone")
    with pytest.raises(ConfigError, match="secretsmanager:GetSecretValue"):
        serverless._built()
