"""The background worker (movievault/worker.py, background.py): woken by `complete` so the
metadata is there within seconds, never two probes of one file however many workers
run, alive after a probe goes wrong, and started by `movievault serve` and by a WSGI
process's first request.

What one probe records, its failures and retries, and `rescan`, are in
tests/test_probing.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from flask import Flask

from movievault import background, db, jobs, probing
from movievault.client import ApiClient
from movievault.config import default_media_workers
from movievault.models import ProbeJob, StoredFile
from movievault.storage import Storage
from tests.support import (
    MOVIEVAULT,
    PASSWORD,
    LiveServer,
    add_file,
    environment,
    free_port,
    make_job_due,
    make_user,
    override_settings,
    probe_due,
    probe_job,
    probe_worker,
    rows,
    sign_in_over_http,
    stop_process,
    wait_for_media,
    wait_for_port,
)

WEBP = (b"RIFF", b"WEBP")


def fetch_poster(client: ApiClient, shown: dict[str, Any]) -> requests.Response:
    """Follow the file's poster_url through the app's redirect to the store."""
    redirect = client.http.get(urljoin(client.base, shown["media"]["poster_url"]),
                               allow_redirects=False)
    assert redirect.status_code == 302, redirect.text
    return requests.get(urljoin(client.base, redirect.headers["Location"]), timeout=60)


def test_complete_answers_at_once_and_the_woken_worker_fills_in_the_movie(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes]
) -> None:
    app = live_server.app
    with probe_worker(app, poll=600):
        started = time.monotonic()
        answer = alice.upload(name="Long.Film.1999.1080p.BluRay.x264-GRP.mp4",
                              data=movies["clip0"])
        done = answer["file"]
        # `complete` did not wait for the probe: the file is recorded with its job pending.
        assert (done["title"], done["year"]) == ("Long Film", 1999)
        assert done["media"] == {
            "status": "pending", "error": None, "duration": None, "container": None,
            "bitrate": None, "video": None, "audio": [], "subtitles": [], "poster_url": None,
        }
        shown = wait_for_media(alice, done["id"])
        # Far sooner than the worker's 600 s poll: complete woke it.
        assert time.monotonic() - started < 30
    found = shown["media"]
    assert (found["status"], found["error"], found["container"]) == ("ready", None, "mp4")
    assert found["duration"] == pytest.approx(2.0, abs=0.05)
    assert 300_000 < found["bitrate"] < 800_000
    assert found["video"] == {
        "codec": "h264", "profile": "High", "level": 12, "width": 320, "height": 180,
        "fps": 24.0, "pix_fmt": "yuv420p", "hdr": None,
    }
    assert found["audio"] == [{"codec": "aac", "channels": 2, "language": "eng"}]
    assert found["subtitles"] == []
    poster = fetch_poster(alice, shown)
    assert poster.status_code == 200 and poster.headers["Content-Type"] == "image/webp"
    assert (poster.content[:4], poster.content[8:12]) == WEBP
    # The columns the library sorts by, and no job left behind.
    (row,) = rows(app, StoredFile)
    assert (row.width, row.height, row.hdr) == (320, 180, None)
    assert row.duration == pytest.approx(2.0, abs=0.1)
    assert row.poster_key is not None and row.poster_key.startswith(f"posters/{row.owner_id}/")
    assert rows(app, ProbeJob) == []


def test_concurrent_workers_never_probe_one_file_twice(
    alice: ApiClient, live_server: LiveServer, movies: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = live_server.app
    ids = [alice.upload(name=f"{name}.mp4", data=data)["file"]["id"]
           for name, data in movies.items()]
    probed: list[str] = []
    lock = threading.Lock()
    real_examine = probing._examine

    def counting_examine(storage: Storage, target: Any, **options: Any) -> Any:
        with lock:
            probed.append(target.key)
        return real_examine(storage, target, **options)

    monkeypatch.setattr(probing, "_examine", counting_examine)
    # Two workers of two threads each, each with its own engine, as two processes would be.
    with probe_worker(app, workers=2) as first, probe_worker(app, workers=2) as second:
        for worker in (first, second):
            worker.wake()
            worker.wake()
        shown = [wait_for_media(alice, file_id) for file_id in ids]
    assert sorted(f["media"]["status"] for f in shown) == ["failed"] + ["ready"] * 4
    assert sorted(Counter(probed).values()) == [1] * len(ids)
    assert rows(app, ProbeJob) == []


def test_the_worker_keeps_running_when_a_probe_goes_wrong(
    app: Flask, movies: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Film.mp4", movies["clip0"])
    with db.session_scope(app) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()

    def broken(source: Any) -> Any:
        raise RuntimeError("a bug in the prober")

    monkeypatch.setattr(probing, "probe", broken)
    assert probe_due(app) == ["retry"]
    waiting = probe_job(app, file_id)
    assert waiting is not None and "a bug in the prober" in (waiting.last_error or "")
    monkeypatch.undo()
    make_job_due(app, file_id)
    assert probe_due(app) == ["ready"]


def _instance_with_alice(tmp_path: Path, media_workers: int) -> tuple[int, dict[str, str]]:
    """A free port and the environment of an instance on the local store, with alice's
    account created by the real command."""
    port = free_port()
    env = environment(INSTANCE_PATH=tmp_path / "instance", STORAGE="local",
                      MEDIA_WORKERS=media_workers, PUBLIC_URL=f"http://127.0.0.1:{port}")
    created = subprocess.run([*MOVIEVAULT, "create-user", "alice"], input=f"{PASSWORD}\n",
                             env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert created.returncode == 0, created.stderr
    return port, env


def test_movievault_serve_probes_new_files_in_the_background(
    tmp_path: Path, movies: dict[str, bytes]
) -> None:
    """The command as deployed: its worker is started, and woken by `complete`."""
    port, env = _instance_with_alice(tmp_path, media_workers=1)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        url = f"http://127.0.0.1:{port}"
        alice = ApiClient(http=sign_in_over_http(url, "alice"), base=url)
        started = time.monotonic()
        file_id = alice.upload(name="Heat (1995).mp4", data=movies["clip2"])["file"]["id"]
        shown = wait_for_media(alice, file_id, timeout=60)
        # Woken by complete: sooner than the worker's 15 s look for due jobs.
        assert time.monotonic() - started < 12, log.read_text()
    finally:
        stop_process(process)
    assert shown["media"]["status"] == "ready" and shown["media"]["poster_url"]
    assert "Probing new files in the background, 1 at a time." in log.read_text()


def test_movievault_probe_probes_what_a_server_without_workers_records(
    tmp_path: Path, movies: dict[str, bytes]
) -> None:
    """Probing in a process of its own: `serve` with MEDIA_WORKERS=0 records and queues,
    `movievault probe` finds the job by itself and fills the movie in, and stops on SIGTERM
    once its probes are done."""
    port, env = _instance_with_alice(tmp_path, media_workers=0)
    serve_log, probe_log = tmp_path / "serve.log", tmp_path / "probe.log"
    with serve_log.open("wb") as out:
        server = subprocess.Popen(
            [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(port), "--threads", "2"],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    prober: subprocess.Popen[bytes] | None = None
    try:
        wait_for_port(port, server, serve_log)
        url = f"http://127.0.0.1:{port}"
        alice = ApiClient(http=sign_in_over_http(url, "alice"), base=url)
        file_id = alice.upload(name="Heat (1995).mp4", data=movies["clip2"])["file"]["id"]
        assert alice.api("GET", f"/files/{file_id}").json()["file"]["media"]["status"] == "pending"
        with probe_log.open("wb") as out:
            prober = subprocess.Popen([*MOVIEVAULT, "probe", "--poll", "0.2"], env=env,
                                      cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        shown = wait_for_media(alice, file_id, timeout=60)
        assert shown["media"]["status"] == "ready" and shown["media"]["poster_url"]
        prober.terminate()
        assert prober.wait(timeout=30) == 0, probe_log.read_text()
    finally:
        for process in (prober, server):
            if process is not None:
                stop_process(process)
    said = probe_log.read_text()
    # MEDIA_WORKERS=0 is for the server: the command probes as many as the cores allow.
    assert f"Probing new files, {default_media_workers()} at a time, until stopped." in said
    assert "Stopping after the probes under way." in said
    assert "Probing new files in the background" not in serve_log.read_text()


def test_a_wsgi_process_starts_its_worker_with_its_first_request(app: Flask) -> None:
    override_settings(app, media_workers=2)
    background.start_with_first_request(app)  # what wsgi.py does
    assert background.EXTENSION not in app.extensions  # commands never start one
    try:
        app.test_client().get("/login")
        worker = app.extensions[background.EXTENSION]
        assert worker.running and len(worker._threads) == 2
        app.test_client().get("/login")
        assert app.extensions[background.EXTENSION] is worker  # once per process
    finally:
        worker = app.extensions.pop(background.EXTENSION, None)
        if worker is not None:
            worker.stop()
            assert not worker.running
