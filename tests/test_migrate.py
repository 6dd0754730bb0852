"""`movievault migrate-storage --to s3`: the local library copied to a real S3 endpoint."""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any
from urllib.parse import urljoin

import boto3
import pytest
import requests
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlmodel import select

from movievault import create_app, db, migrate
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.models import PendingUpload, StoredFile
from tests import media
from tests.support import MIB, LiveServer, make_user, override_settings, probe_due, serving


@pytest.fixture
def backend() -> str:
    """The library starts on the local disk (this overrides the conftest's parameter)."""
    return "local"


@pytest.fixture
def bucket(app: Flask, s3_endpoint: str) -> str:
    """A fresh bucket name on the moto server, configured as the migration's target.

    MOVIEVAULT_STORAGE stays `local` explicitly, as it would for someone who has just added
    the S3 settings and not yet switched.
    """
    name = f"mv-{uuid.uuid4().hex[:12]}"
    override_settings(app, s3_endpoint_url=s3_endpoint, s3_bucket=name, storage="local")
    return name


@pytest.fixture
def s3(s3_endpoint: str) -> Any:
    """A plain boto3 client for looking into the bucket."""
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")


def library(live_server: LiveServer) -> tuple[ApiClient, dict[str, bytes]]:
    """Alice with three files (two form uploads, one multipart) and one unfinished upload."""
    make_user(live_server.app, "alice")
    alice = live_server.client_for("alice")
    files = {"a.mp4": os.urandom(300_000), "b.mp4": os.urandom(2000), "c.mkv": os.urandom(12 * MIB)}
    for name, data in files.items():
        alice.upload(name=name, data=data)
    unfinished = os.urandom(11 * MIB)
    upload = alice.create(name="unfinished.mkv", data=unfinished).json()["upload"]
    alice.put_parts(upload, unfinished, [1])
    return alice, files


def catalogue(app: Flask) -> list[StoredFile]:
    """Every recorded file, oldest first."""
    with db.session_scope(app) as session:
        return list(session.exec(select(StoredFile).order_by(StoredFile.id)).all())


def test_migration_copies_everything_then_the_app_runs_on_s3(
    app: Flask, app_config: dict[str, Any], live_server: LiveServer, runner: FlaskCliRunner,
    bucket: str, s3: Any, s3_endpoint: str,
) -> None:
    alice, files = library(live_server)

    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code == 0, result.output
    assert f"bucket {bucket} created" in result.output
    for number, name in enumerate(files, start=1):
        assert f"[{number}/3] {name}" in result.output
    assert "3 copied" in result.output and "0 already there" in result.output
    assert "Forgot 1 unfinished upload" in result.output
    assert "MOVIEVAULT_STORAGE=s3" in result.output
    for stored in catalogue(app):
        body = s3.get_object(Bucket=bucket, Key=stored.key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == stored.sha256
    with db.session_scope(app) as session:
        assert session.exec(select(PendingUpload)).all() == []
    assert list(get_storage(app).iter_keys()) == sorted(s.key for s in catalogue(app))

    # Switched: the same catalogue, now served from the bucket.
    on_s3 = create_app({**app_config, "STORAGE": "s3", "S3_ENDPOINT_URL": s3_endpoint,
                        "S3_BUCKET": bucket})
    with serving(on_s3) as live:
        alice = live.client_for("alice")
        listed = alice.api("GET", "/files?sort=name").json()["files"]
        assert [f["name"] for f in listed] == list(files)
        for entry in listed:
            redirect = alice.http.get(f"{live.url}/files/{entry['id']}/download",
                                      allow_redirects=False)
            assert redirect.headers["Location"].startswith(s3_endpoint)
            got = requests.get(urljoin(live.url, redirect.headers["Location"]), timeout=60)
            assert got.content == files[entry["name"]]
        # And new uploads go to the bucket too.
        fresh = os.urandom(5000)
        assert alice.upload(name="new.mp4", data=fresh)["file"]["size"] == 5000


def test_running_it_again_copies_only_what_is_missing_or_short(
    app: Flask, live_server: LiveServer, runner: FlaskCliRunner, bucket: str, s3: Any
) -> None:
    library(live_server)
    assert runner.invoke(args=["migrate-storage", "--to", "s3"]).exit_code == 0
    again = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert again.exit_code == 0, again.output
    assert "0 copied" in again.output and "3 already there" in again.output

    # An interrupted run: one object never arrived, another arrived short.
    first, _, third = catalogue(app)
    s3.delete_object(Bucket=bucket, Key=first.key)
    s3.put_object(Bucket=bucket, Key=third.key, Body=b"only the beginning")
    resumed = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert resumed.exit_code == 0, resumed.output
    assert "2 copied" in resumed.output and "1 already there" in resumed.output
    assert f"[1/3] {first.name}" in resumed.output
    for stored in (first, third):
        head = s3.head_object(Bucket=bucket, Key=stored.key)
        assert head["ContentLength"] == stored.size
        assert head["ContentType"] == stored.content_type


def test_large_files_report_progress_while_copying(
    live_server: LiveServer, runner: FlaskCliRunner, bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    library(live_server)
    monkeypatch.setattr(migrate, "PROGRESS_STEP", 4 * MIB)
    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    done = lines.index("[3/3] c.mkv (12.6 MB): copied")
    progress = [line for line in lines[:done] if line.endswith(" MB of 12.6 MB")]
    assert progress and progress[-1] == "    12.6 MB of 12.6 MB", lines


def test_a_missing_object_fails_the_run_but_not_the_others(
    app: Flask, live_server: LiveServer, runner: FlaskCliRunner, bucket: str, s3: Any
) -> None:
    library(live_server)
    lost = catalogue(app)[1]
    get_storage(app).delete(lost.key)
    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code == 1
    assert "2 copied" in result.output and "1 failed" in result.output
    assert f"Not copied: {lost.name}" in result.output
    assert "missing from the source store" in result.output
    # Unfinished uploads are kept until a run succeeds.
    with db.session_scope(app) as session:
        assert len(session.exec(select(PendingUpload)).all()) == 1
    listed = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert listed == {s.key for s in catalogue(app)} - {lost.key}


def test_without_s3_settings_it_says_what_to_set(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code != 0
    assert "MOVIEVAULT_S3_BUCKET" in result.output


def test_posters_move_with_their_movies(
    app: Flask, app_config: dict[str, Any], live_server: LiveServer, runner: FlaskCliRunner,
    bucket: str, s3: Any, s3_endpoint: str, tmp_path: Any,
) -> None:
    make_user(app, "alice")
    alice = live_server.client_for("alice")
    for n in (1, 2):
        movie = media.make_h264_mp4(tmp_path / f"m{n}.mp4", seconds=1.5 + n).read_bytes()
        alice.upload(name=f"Film {n}.mp4", data=movie)
    assert probe_due(app) == ["ready", "ready"]
    kept, lost = catalogue(app)
    assert kept.poster_key and lost.poster_key
    local = get_storage(app)
    poster = local.read_range(kept.poster_key, 0, 10**6)
    local.delete(lost.poster_key)  # a poster the disk lost: not worth stopping for

    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code == 0, result.output
    assert "2 copied" in result.output and "(1 with a poster, copied along)" in result.output
    assert f"its poster {lost.poster_key} is missing" in result.output
    copied = s3.get_object(Bucket=bucket, Key=kept.poster_key)
    assert copied["Body"].read() == poster and copied["ContentType"] == "image/webp"
    assert [f.poster_key for f in catalogue(app)] == [kept.poster_key, None]

    on_s3 = create_app({**app_config, "STORAGE": "s3", "S3_ENDPOINT_URL": s3_endpoint,
                        "S3_BUCKET": bucket})
    with serving(on_s3) as live:
        alice = live.client_for("alice")
        redirect = alice.http.get(f"{live.url}/files/{kept.id}/poster", allow_redirects=False)
        assert redirect.headers["Location"].startswith(s3_endpoint)
        assert requests.get(redirect.headers["Location"], timeout=60).content == poster
        assert alice.http.get(f"{live.url}/files/{lost.id}/poster").status_code == 404


def test_subtitles_move_with_their_movies(
    app: Flask, app_config: dict[str, Any], live_server: LiveServer, runner: FlaskCliRunner,
    bucket: str, s3: Any, s3_endpoint: str,
) -> None:
    from tests.test_subtitles import attach

    make_user(app, "alice")
    alice = live_server.client_for("alice")
    movie_id = alice.upload(name="Film.mp4", data=os.urandom(5000))["file"]["id"]
    srt = media.srt_text().encode("cp1252")
    subtitle = attach(alice, movie_id, "Film.fr.srt", srt).json()["subtitle"]
    ((row,),) = [stored.subtitles for stored in catalogue(app)]

    result = runner.invoke(args=["migrate-storage", "--to", "s3"])
    assert result.exit_code == 0, result.output
    assert s3.get_object(Bucket=bucket, Key=row.source_key)["Body"].read() == srt
    vtt = s3.get_object(Bucket=bucket, Key=row.vtt_key)
    assert vtt["ContentType"].startswith("text/vtt")
    assert "¡Señor, ça coûte 5 €!" in vtt["Body"].read().decode("utf-8")

    on_s3 = create_app({**app_config, "STORAGE": "s3", "S3_ENDPOINT_URL": s3_endpoint,
                        "S3_BUCKET": bucket})
    with serving(on_s3) as live:
        alice = live.client_for("alice")
        served = alice.http.get(urljoin(live.url, subtitle["url"]))
        assert served.status_code == 200 and "Où est la bibliothèque ?" in served.text
