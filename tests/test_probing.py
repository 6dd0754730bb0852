"""Probing a file, on both stores: what it records field by field, broken files recorded
as such with the reason, a failing store retried with backoff, a probe past its time
limit, a job that outlives its worker or keeps killing it, and `movievault rescan`
doing the same work in-process.

The queue alone (claims, leases, backoff) is in tests/test_jobs.py; the background worker
(woken by `complete`, several at once, started by `serve`) in tests/test_worker.py.
"""

from __future__ import annotations

import time
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import update

from movievault import db, jobs, probing
from movievault.backends import get_storage
from movievault.client import ApiClient
from movievault.errors import StorageUnavailable
from movievault.models import ProbeJob, StoredFile, utcnow
from movievault.storage import Storage
from tests import media
from tests.support import (
    LiveServer,
    add_file,
    download,
    keys,
    make_job_due,
    make_user,
    new_probe_worker,
    probe_due,
    probe_job,
    rows,
    wait_for_media,
)


class FlakyStore:
    """The app's store, whose ranged reads fail (503) the first `failures` times."""

    def __init__(self, storage: Storage, failures: int) -> None:
        self.storage = storage
        self.failures = failures

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Fail while failures are left, then read for real."""
        if self.failures > 0:
            self.failures -= 1
            raise StorageUnavailable("The store is down (a test made it so).")
        return self.storage.read_range(key, start, length)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.storage, name)


class SlowStore(FlakyStore):
    """The app's store, taking `delay` seconds over each ranged read (a store that hangs)."""

    def __init__(self, storage: Storage, delay: float) -> None:
        super().__init__(storage, failures=0)
        self.delay = delay

    def read_range(self, key: str, start: int, length: int) -> bytes:
        """Wait, then read."""
        time.sleep(self.delay)
        return self.storage.read_range(key, start, length)


def flaky(app: Flask, failures: int) -> Storage:
    """The app's store failing its first `failures` ranged reads."""
    return FlakyStore(get_storage(app), failures)  # type: ignore[return-value]


def test_every_audio_and_subtitle_stream_is_listed_and_cover_art_is_no_video(
    alice: ApiClient, live_server: LiveServer, tmp_path: Path
) -> None:
    rip = media.make_hevc_mkv(tmp_path / "rip.mkv").read_bytes()
    song = media.make_audio_only(tmp_path / "song.m4a", cover=True).read_bytes()
    rip_id = alice.upload(name="Rip.2019.2160p.mkv", data=rip,
                          content_type="video/x-matroska")["file"]["id"]
    song_id = alice.upload(name="song.m4a", data=song, content_type="audio/mp4")["file"]["id"]
    assert probe_due(live_server.app) == ["ready", "ready"]
    found = alice.api("GET", f"/files/{rip_id}").json()["file"]["media"]
    assert found["container"] == "matroska"
    assert found["video"] == {
        "codec": "hevc", "profile": "Main", "level": 60, "width": 320, "height": 180,
        "fps": 24.0, "pix_fmt": "yuv420p", "hdr": None,
    }
    assert found["audio"] == [
        {"codec": "ac3", "channels": 6, "language": "eng"},
        {"codec": "aac", "channels": 2, "language": "fre"},
    ]
    assert found["subtitles"] == [{"language": "fre", "codec": "subrip", "source": "embedded"}]
    assert found["poster_url"] is not None
    # The song's cover picture is not a video: no video, no poster, and still "ready".
    sung = alice.api("GET", f"/files/{song_id}").json()["file"]["media"]
    assert (sung["status"], sung["container"], sung["video"], sung["poster_url"]) == (
        "ready", "mp4", None, None
    )
    assert sung["audio"] == [{"codec": "aac", "channels": 2, "language": None}]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("random", "not a video file: its format is not one FFmpeg recognises"),
     ("truncated", "the file is truncated: it ends 60% of the way through its 'mdat' box")],
)
def test_broken_files_are_recorded_as_failed_with_the_reason_and_stay_downloadable(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes], tmp_path: Path,
    kind: str, reason: str,
) -> None:
    data = (movies["random"] if kind == "random"
            else media.make_truncated_mp4(tmp_path / "cut.mp4").read_bytes())
    done = alice.upload(name="Not A Film (2001).mkv", data=data,
                        content_type="video/x-matroska")["file"]
    assert probe_due(live_server.app) == ["failed"]  # at once: no retry for a broken file
    shown = alice.api("GET", f"/files/{done['id']}").json()["file"]
    assert shown["media"]["status"] == "failed"
    assert shown["media"]["error"].startswith(reason)
    assert (shown["media"]["video"], shown["media"]["poster_url"]) == (None, None)
    assert (shown["title"], shown["year"]) == ("Not A Film", 2001)
    assert download(alice, done["id"]).content == data
    assert rows(live_server.app, ProbeJob) == []
    poster = alice.http.get(f"{alice.base}/files/{done['id']}/poster", allow_redirects=False)
    assert poster.status_code == 404


def test_a_store_that_fails_is_retried_with_backoff_until_it_answers(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    file_id = alice.upload(name="clip.mp4", data=movies["clip1"])["file"]["id"]
    store = flaky(app, failures=1)
    worker = new_probe_worker(app, storage=store)
    assert worker.run_once() == "retry"
    waiting = probe_job(app, file_id)
    assert waiting is not None and waiting.attempts == 1 and waiting.lease is None
    assert "The store is down" in (waiting.last_error or "")
    due = waiting.due_at if waiting.due_at.tzinfo else waiting.due_at.replace(tzinfo=UTC)
    wait = due - utcnow()
    assert timedelta(seconds=25) < wait <= timedelta(seconds=30)
    assert alice.api("GET", f"/files/{file_id}").json()["file"]["media"]["status"] == "pending"
    assert worker.run_once() is None  # not due yet
    make_job_due(app, file_id)
    assert worker.run_once() == "ready"
    assert wait_for_media(alice, file_id)["media"]["video"]["codec"] == "h264"
    assert probe_job(app, file_id) is None


def test_a_store_that_stays_down_fails_the_file_after_four_tries_then_rescan_fixes_it(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    file_id = alice.upload(name="clip.mp4", data=movies["clip2"])["file"]["id"]
    worker = new_probe_worker(app, storage=flaky(app, failures=10**6))
    outcomes = []
    for _ in range(jobs.MAX_ATTEMPTS):
        make_job_due(app, file_id)
        outcomes.append(worker.run_once())
    assert outcomes == ["retry", "retry", "retry", "failed"]
    shown = alice.api("GET", f"/files/{file_id}").json()["file"]
    assert shown["media"]["status"] == "failed"
    assert "The store is down" in shown["media"]["error"]
    assert probe_job(app, file_id) is None
    # Once the store is back, the owner asks for the failed files again.
    result = app.test_cli_runner().invoke(args=["rescan", "--failed"])
    assert result.exit_code == 0, result.output
    assert "Probed 1 file(s): 1 ready, 0 failed" in result.output
    assert wait_for_media(alice, file_id)["media"]["status"] == "ready"


def test_a_probe_past_its_time_limit_ends_and_is_tried_again_later(
    alice: ApiClient, live_server: LiveServer, tmp_path: Path
) -> None:
    app = live_server.app
    # Big enough that its header and its index (at the end) take two ranged reads.
    movie = media.make_h264_mp4(tmp_path / "big.mp4", seconds=4, size=(640, 360))
    assert movie.stat().st_size > 2 * 256 * 1024
    file_id = alice.upload(name="clip.mp4", data=movie.read_bytes())["file"]["id"]
    slow = SlowStore(get_storage(app), delay=0.6)
    worker = new_probe_worker(app, storage=slow, timeout=0.5)
    started = time.monotonic()
    assert worker.run_once() == "retry"
    assert time.monotonic() - started < 5  # ended by its deadline, not by the file's end
    waiting = probe_job(app, file_id)
    assert waiting is not None and "longer than the time limit" in (waiting.last_error or "")
    assert rows(app, StoredFile)[0].media_status == "pending"


def test_a_job_whose_worker_died_is_taken_over_once_its_lease_runs_out(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    storage = get_storage(app)
    file_id = alice.upload(name="clip.mp4", data=movies["clip3"])["file"]["id"]
    settings = jobs.ProbeSettings(timeout=30, workers=1)
    # A worker claims the job and dies with it (the process stops mid-probe).
    with db.session_scope(app) as session:
        dead = jobs.claim(session=session, lease=settings.lease)
    assert dead is not None and dead.file_id == file_id
    # After a restart, a new worker on the same catalogue leaves it while the lease lasts...
    restarted = new_probe_worker(app)
    assert restarted.run_once() is None
    # ... and takes it over once the lease has run out.
    with db.session_scope(app) as session:
        session.exec(update(ProbeJob).values(leased_until=utcnow() - timedelta(seconds=1)))
        session.commit()
    assert restarted.run_once() == "ready"
    assert wait_for_media(alice, file_id)["media"]["status"] == "ready"
    # The first worker, had it come back, records nothing and leaves no poster behind.
    posters_before = {k for k in keys(storage) if k.startswith("posters/")}
    with db.session_scope(app) as session:
        late = probing.run_job(session=session, storage=storage, settings=settings, claim=dead)
    assert late == "lost"
    assert {k for k in keys(storage) if k.startswith("posters/")} == posters_before
    assert len(posters_before) == 1


def test_a_file_that_kills_its_worker_every_time_is_given_up_on(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    file_id = alice.upload(name="clip.mp4", data=movies["clip0"])["file"]["id"]
    # Four workers in a row claim the job and die with it (a file that crashes FFmpeg).
    for _ in range(jobs.MAX_ATTEMPTS):
        with db.session_scope(app) as session:
            assert jobs.claim(session=session, lease=timedelta(minutes=5)) is not None
            session.exec(update(ProbeJob).values(leased_until=utcnow() - timedelta(seconds=1)))
            session.commit()
    # The fifth does not try again: it records why.
    assert probe_due(app) == ["failed"]
    shown = alice.api("GET", f"/files/{file_id}").json()["file"]
    assert shown["media"]["error"] == "Probing was stopped 4 times before it finished."
    assert probe_job(app, file_id) is None


def test_rescan_probes_files_recorded_before_probing_existed(
    app: Flask, runner: FlaskCliRunner, movies: dict[str, bytes]
) -> None:
    alice, bob = make_user(app, "alice"), make_user(app, "bob")
    # Recorded as the previous release did: no job, status pending.
    film = add_file(app, alice, "Film (1999).mp4", movies["clip0"])
    noise = add_file(app, alice, "noise.mkv", movies["random"], "video/x-matroska")
    other = add_file(app, bob, "Other.mp4", movies["clip1"])
    assert rows(app, ProbeJob) == []

    theirs = runner.invoke(args=["rescan", "--user", "ALICE"])
    assert theirs.exit_code == 0, theirs.output
    assert "Probed 2 file(s): 1 ready, 1 failed" in theirs.output
    assert "Failed: noise.mkv: " in theirs.output
    status = {f.id: f.media_status for f in rows(app, StoredFile)}
    assert status == {film: "ready", noise: "failed", other: "pending"}

    rest = runner.invoke(args=["rescan"])  # --missing: bob's file only
    assert rest.exit_code == 0 and "Probed 1 file(s): 1 ready, 0 failed" in rest.output
    before = {f.id: f.poster_key for f in rows(app, StoredFile)}
    assert before[film] and before[other] and before[noise] is None

    again = runner.invoke(args=["rescan", "--all"])
    assert again.exit_code == 0 and "Probed 3 file(s): 2 ready, 1 failed" in again.output
    after = {f.id: f.poster_key for f in rows(app, StoredFile)}
    assert after == before  # posters are kept
    assert rows(app, ProbeJob) == []

    unknown = runner.invoke(args=["rescan", "--user", "nobody"])
    assert unknown.exit_code != 0 and "There is no account 'nobody'" in unknown.output


def test_rescan_leaves_a_file_a_running_worker_holds_to_it(
    app: Flask, runner: FlaskCliRunner, movies: dict[str, bytes]
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Film.mp4", movies["clip0"])
    with db.session_scope(app) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()
        held = jobs.claim(session=session, lease=timedelta(minutes=5))
    assert held is not None
    result = runner.invoke(args=["rescan"])
    assert result.exit_code == 0, result.output
    assert "Probed 1 file(s): 0 ready, 0 failed, 0 to be retried by the server, " \
           "1 being probed by the server." in result.output
    assert probe_job(app, file_id) is not None


def test_deleting_a_file_removes_its_job_and_poster(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    storage = get_storage(app)
    probed = alice.upload(name="a.mp4", data=movies["clip0"])["file"]["id"]
    assert probe_due(app) == ["ready"]
    queued = alice.upload(name="b.mp4", data=movies["clip1"])["file"]["id"]
    (with_poster,) = [f for f in rows(app, StoredFile) if f.id == probed]
    assert with_poster.poster_key in keys(storage) and probe_job(app, queued) is not None
    for file_id in (probed, queued):
        assert alice.api("DELETE", f"/files/{file_id}").status_code == 204
    assert keys(storage) == set()  # both movies and the poster
    assert rows(app, ProbeJob) == []



