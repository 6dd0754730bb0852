"""Uploads in WebKitGTK and Firefox ESR, on both stores: the file picker and a drop, a form
upload and a multipart one hashed right, a duplicate caught, cancel and retry, resume after
a reload, the list refreshed through htmx, rename and delete."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from sqlmodel import select

from movievault import db
from movievault.client import fingerprint_of
from movievault.models import PendingUpload, StoredFile, Subtitle, User
from tests.drops import DROP_FILE, DROP_FOLDERS
from tests.e2e.support import store_keys, stored_digests, write_random
from tests.engines.driver import Browser
from tests.engines.support import (
    add_files,
    call,
    eventually,
    file_id,
    gate_state,
    install_gate,
    listed_names,
    never_reloaded,
    stage,
    upload_detail,
    wait_stage,
)
from tests.processes import TAB, rss_by_pid
from tests.support import MIB, LiveServer, rows


def pending_uploads(server: LiveServer) -> int:
    """How many uploads the catalogue holds as unfinished."""
    with db.session_scope(server.app) as session:
        return len(session.exec(select(PendingUpload)).all())


def test_small_and_multipart_uploads_hash_right_and_a_duplicate_is_caught(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    page = signed_in
    small, big = tmp_path / "small clip.mp4", tmp_path / "big movie.mkv"
    digests = {write_random(small, 300 * 1024), write_random(big, 11 * MIB)}  # 5, 5, 1 MiB
    add_files(page, small, big)
    wait_stage(page, small.name, "done")
    wait_stage(page, big.name, "done")
    assert set(stored_digests(e2e_server.app)) == digests
    # The list refreshed itself through htmx: no reload happened.
    page.wait_for("return document.querySelectorAll('#file-list .file-row').length === 2")
    assert sorted(listed_names(page)) == sorted([small.name, big.name])
    assert never_reloaded(page)
    page.screenshot("library-after-upload")

    keys = store_keys(e2e_server.app)
    again = tmp_path / "copy of small.mp4"
    again.write_bytes(small.read_bytes())
    add_files(page, again)
    wait_stage(page, again.name, "duplicate")
    assert upload_detail(page, again.name) == (
        f"Already in your library as {small.name}. Nothing was uploaded."
    )
    assert store_keys(e2e_server.app) == keys
    page.screenshot("library-duplicate")


def test_cancel_mid_upload_then_retry(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    page = signed_in
    source = tmp_path / "second thoughts.mp4"
    digest = write_random(source, 16 * MIB)  # 5, 5, 5, 1 MiB
    install_gate(page, 1)  # one part stored, the others held in the page, never half-sent
    add_files(page, source)
    page.wait_for("return mvGate.stored === 1 && mvGate.held.length > 0")
    page.click(f'button[aria-label="Cancel uploading {source.name}"]')
    wait_stage(page, source.name, "cancelled")
    assert upload_detail(page, source.name) == "Cancelled."
    eventually(lambda: pending_uploads(e2e_server) == 0)  # the page's DELETE is on its way
    assert store_keys(e2e_server.app) == []
    page.evaluate("mvGate.drop()")
    page.click(f'button[aria-label="Retry uploading {source.name}"]')
    wait_stage(page, source.name, "done")
    assert stored_digests(e2e_server.app) == [digest]


def test_upload_resumes_after_a_reload_with_the_missing_parts(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    page = signed_in
    source = tmp_path / "long film.mp4"
    digest = write_random(source, 16 * MIB)  # 5, 5, 5, 1 MiB
    install_gate(page, 2)
    add_files(page, source)
    page.wait_for("return mvGate.stored === 2")
    first = gate_state(page)
    page.reload()  # as a closed tab would: the held parts are never sent
    assert listed_names(page) == []
    install_gate(page, None)
    add_files(page, source)
    wait_stage(page, source.name, "done")
    resumed = gate_state(page)
    assert resumed["stored"] == 2, resumed
    sizes = sorted(first["sent"][:2] + resumed["sent"])  # type: ignore[index,operator]
    assert sizes == [1 * MIB, 5 * MIB, 5 * MIB, 5 * MIB]
    assert stored_digests(e2e_server.app) == [digest]


def test_files_dropped_on_the_page_are_uploaded(
    signed_in: Browser, e2e_server: LiveServer
) -> None:
    page = signed_in
    dropped = call(page, DROP_FILE)
    assert dropped["overlay"] is True
    wait_stage(page, "dropped clip.mp4", "done")
    page.wait_for("return document.querySelector('.drop-overlay').hidden")
    assert stored_digests(e2e_server.app) == [hashlib.sha256(bytes(dropped["bytes"])).hexdigest()]


def test_dropped_folders_are_walked_with_their_subtitles(
    signed_in: Browser, e2e_server: LiveServer
) -> None:
    """Nested folders dropped on the page: the movies are uploaded, a subtitle beside its
    movie goes with it, the rest is listed as skipped with the reason."""
    page = signed_in
    tree = {
        "Films": {
            "Alien (1979)": {"Alien (1979).mp4": "video", "Alien (1979).srt": "srt",
                             "info.nfo": "text"},
            "Extras": {"Deeper": {"making of.mkv": "video"}},
            ".DS_Store": "junk",
            "Private": "unreadable folder",
        },
        "Heat.webm": "video",
    }
    assert call(page, DROP_FOLDERS, tree) is True
    for name in ("Alien (1979).mp4", "making of.mkv", "Heat.webm"):
        wait_stage(page, name, "done")
    page.wait_for(
        "return document.querySelector(`.subtitle-row[data-subtitle-name='Alien (1979).srt']`)"
        "?.dataset.stage === 'done'"
    )
    skipped = page.evaluate(
        "return [...document.querySelectorAll('[data-upload-skipped] li')]"
        ".map((li) => li.textContent.trim())"
    )
    assert sorted(skipped) == [
        "Films/.DS_Store: hidden file",
        "Films/Alien (1979)/info.nfo: not a video",
        "Films/Private/: could not be read",
    ]
    page.screenshot("folders-dropped")
    movies = ["Alien (1979).mp4", "Heat.webm", "making of.mkv"]
    assert sorted(f.name for f in rows(e2e_server.app, StoredFile)) == movies
    assert [s.name for s in rows(e2e_server.app, Subtitle)] == ["Alien (1979).srt"]
    page.wait_for("return document.querySelectorAll('#file-list .file-row').length === 3")
    assert sorted(listed_names(page)) == movies


def test_rename_and_delete_in_the_list(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    page = signed_in
    source = tmp_path / "untitled.mp4"
    write_random(source, 64 * 1024)
    add_files(page, source)
    wait_stage(page, source.name, "done")
    row = f"#file-{file_id(e2e_server.app, source.name)}"
    # The row is still being analysed (these servers run no prober), so it polls itself:
    # the Rename click must not be lost to a poll on its way.
    assert page.wait_for(
        "return document.querySelector(arguments[0])?.getAttribute('hx-trigger')", row
    ) == "every 2s"
    page.click(f"{row} button[hx-get]")  # Rename
    page.wait_for("return document.querySelector('#file-list input[name=name]') !== null")
    page.fill("#file-list input[name=name]", "The Long Holiday (1999).mp4")
    page.click("#file-list form button[type=submit]")
    page.wait_for(
        "return document.querySelector(arguments[0] + ' .file-name a')?.textContent"
        " === 'The Long Holiday (1999).mp4'", row,
    )
    page.screenshot("library-renamed")
    # The confirmation question is accepted (the session's prompt behaviour).
    page.click(f"{row} button[hx-post]")  # Delete
    page.wait_for("return document.querySelectorAll('#file-list .file-row').length === 0")
    assert store_keys(e2e_server.app) == []
    assert never_reloaded(page)


@pytest.mark.parametrize("backend", ["local"])  # no byte reaches the store
def test_hashing_a_big_file_does_not_read_it_into_the_browser_s_other_processes(
    signed_in: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """The page hashes a 384 MiB file (already in the library, so nothing is uploaded)
    while the browser's processes other than the tab stay within +48 MiB. In WebKit, the
    read worker once made a stream of the whole file only to ask whether it takes a BYOB
    reader, and WebKit read all of it into its network process (+100 MiB and more here)."""
    page = signed_in
    source = tmp_path / "long movie.mkv"
    size = 384 * MIB
    edges = os.urandom(2 * MIB)
    with source.open("wb") as out:  # random first and last MiB, a hole between
        out.write(edges[:MIB])
        out.seek(size - MIB)
        out.write(edges[MIB:])
    with source.open("rb") as stream:
        sha256 = hashlib.file_digest(stream, "sha256").hexdigest()
    with db.session_scope(e2e_server.app) as session:
        owner = session.exec(select(User).where(User.username == "alice")).one()
        assert owner.id is not None
        session.add(StoredFile(
            owner_id=owner.id, name="the same movie.mkv", size=size, sha256=sha256,
            fingerprint=fingerprint_of(edges), content_type="video/x-matroska",
            key="movies/the-same-movie",
        ))
        session.commit()
    root = page.root_pid
    # Growth of the processes there before the file is picked: one the browser starts
    # meanwhile (a utility process) would otherwise count whole.
    before = rss_by_pid(root, leave_out=TAB)
    peak = 0
    add_files(page, source)
    deadline = time.monotonic() + 120
    while (now := stage(page, source.name)) != "duplicate":
        assert now != "failed" and time.monotonic() < deadline, upload_detail(page, source.name)
        sample = rss_by_pid(root, leave_out=TAB)
        peak = max(peak, sum(max(0, sample.get(pid, 0) - rss) for pid, rss in before.items()))
        time.sleep(0.05)  # sampling every 50 ms, as long as the hashing takes
    growth = peak / MIB
    assert growth < 48, f"{page.name}: the browser's other processes grew {growth:.0f} MiB"
