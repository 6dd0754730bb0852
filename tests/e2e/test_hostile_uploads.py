"""Uploaded files never run as the app, in Chromium, on both backends.

Mallory uploads a script and a page that loads it, then sends alice the link the app
gives for playing the page (a signed URL: it needs no session, anyone can open it). If
the page ran as the app, the script would list, download, rename and delete alice's
movies with her session. HTTP-level checks of the same rules: tests/test_hostile_uploads.py.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urljoin

import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Request

from movievault.backends import get_storage
from movievault.client import ApiClient
from tests.e2e.support import media_loaded, screenshot, write_wav
from tests.support import LiveServer, make_user

MARKER = "mv-pwned"

# What mallory's script would do as the app: read alice's list, download, rename, delete.
EVIL_JS = """
localStorage.setItem("%(marker)s", "evil.js");
document.title = "evil.js ran";
(async () => {
  const app = "%(app)s";
  const [list, page] = await Promise.all([
    fetch(app + "/api/files", { credentials: "include" }),
    fetch(app + "/", { credentials: "include" }),
  ]);
  const { files } = await list.json();
  const token = /name="csrf-token" content="([^"]+)"/.exec(await page.text())[1];
  const headers = { "X-CSRFToken": token, "Content-Type": "application/json" };
  for (const file of files) {
    await fetch(app + "/files/" + file.id + "/download", { credentials: "include" });
    await fetch(app + "/api/files/" + file.id, {
      method: "PATCH", credentials: "include", headers,
      body: JSON.stringify({ name: "stolen " + file.name }),
    });
  }
  await fetch(app + "/api/files/" + files[0].id, {
    method: "DELETE", credentials: "include", headers,
  });
})();
"""

# The page alice is sent: loads the script from the store, and has one inline too.
TRAILER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Exclusive trailer</title>
<script src="%(evil)s"></script>
<script>
  localStorage.setItem("%(marker)s", "inline");
  document.title = "inline script ran";
  fetch("%(app)s/api/files?from=inline", { mode: "no-cors", credentials: "include" });
</script>
</head><body><h1>Exclusive trailer</h1></body></html>
"""


def signed_link(client: ApiClient, file_id: int, route: str = "stream") -> str:
    """The signed store URL the app redirects to (what mallory would send alice)."""
    answer = client.http.get(f"{client.base}/files/{file_id}/{route}", allow_redirects=False)
    assert answer.status_code == 302, answer.text
    return urljoin(client.base, answer.headers["Location"])


def open_link(page: Page, url: str) -> bool:
    """Open `url` in alice's tab as if she followed it; return whether it was downloaded."""
    try:
        page.goto(url)
        downloaded = False
    except PlaywrightError as error:
        assert "Download is starting" in str(error), error
        downloaded = True
    # Time for a script, had one started, to reach the app (its first calls go out at once).
    page.wait_for_timeout(1500)
    return downloaded


def test_mallorys_page_and_script_never_run_as_the_app(
    page: Page, e2e_server: LiveServer
) -> None:
    app_url = e2e_server.url
    kind = get_storage(e2e_server.app).kind
    local = kind == "local"
    alice = e2e_server.client_for("alice")
    for name in ("Heat (1995).mp4", "Alien (1979).mkv"):
        alice.upload(name=name, data=os.urandom(50_000))
    before = alice.api("GET", "/files").json()["files"]

    make_user(e2e_server.app, "mallory")
    mallory = e2e_server.client_for("mallory")
    script = (EVIL_JS % {"marker": MARKER, "app": app_url}).encode()
    evil = mallory.upload(name="evil.js", data=script, content_type="text/javascript")
    evil_url = signed_link(mallory, evil["file"]["id"])
    html = (TRAILER_HTML % {"evil": evil_url, "marker": MARKER, "app": app_url}).encode()
    trailer = mallory.upload(name="trailer.html", data=html, content_type="text/html")
    # The same page declared as a video: shown in place, it must still be inert.
    disguised = mallory.upload(name="trailer.mp4", data=html + b"\n<!-- mp4 -->",
                               content_type="video/mp4")
    links = {
        "trailer.html": signed_link(mallory, trailer["file"]["id"]),
        "trailer.mp4": signed_link(mallory, disguised["file"]["id"]),
    }

    # At HTTP level: what the store answers for each of them.
    for name, url, served, disposition in (
        ("trailer.html", links["trailer.html"], "application/octet-stream", "attachment"),
        ("evil.js", evil_url, "application/octet-stream", "attachment"),
        ("trailer.mp4", links["trailer.mp4"], "video/mp4", "inline"),
    ):
        answer = requests.get(url, timeout=30)
        assert answer.status_code == 200, name
        assert answer.headers["Content-Type"] == served, name
        assert answer.headers["Content-Disposition"].startswith(f"{disposition};"), name
        if local:  # S3 sends what the URL asks for; it serves from its own origin
            assert answer.headers["X-Content-Type-Options"] == "nosniff", name
            policy = answer.headers["Content-Security-Policy"]
            assert policy.startswith("sandbox") and "default-src 'none'" in policy, name
            assert "allow-scripts" not in policy, name

    # In alice's signed-in browser, on her library: she opens both links.
    page.reload()
    seen: list[str] = []

    # The library tab's own requests may still arrive late: its favicon, and the fragments
    # of alice's movies still being analysed, which poll themselves (`hx-trigger`).
    own = re.compile(re.escape(app_url) + r"/(static/favicon\.svg|files/\d+/(row|card)\?.*)")

    def record(request: Request) -> None:
        if not own.fullmatch(request.url):
            seen.append(request.url)

    page.context.on("request", record)
    html_downloaded = open_link(page, links["trailer.html"])
    screenshot(page, f"hostile-trailer-html-{kind}")
    mp4_downloaded = open_link(page, links["trailer.mp4"])
    screenshot(page, f"hostile-trailer-mp4-{kind}")
    page.context.remove_listener("request", record)

    # Nothing but the two objects was requested: no script, no call to the app.
    assert not [url for url in seen if url.startswith(f"{app_url}/api/")], seen
    assert set(seen) <= set(links.values()), seen
    page.goto(f"{app_url}/")
    assert page.evaluate(f"localStorage.getItem({MARKER!r})") is None
    assert alice.api("GET", "/files").json()["files"] == before
    screenshot(page, f"hostile-after-library-{kind}")
    # The page was saved, not shown; the one declared as a video was shown as a video.
    assert (html_downloaded, mp4_downloaded) == (True, False)


def test_a_video_opened_on_its_own_still_plays(
    page: Page, e2e_server: LiveServer, tmp_path: Path
) -> None:
    """The sandbox policy of media shown in place still lets Chromium's player load it."""
    clip = tmp_path / "tone.wav"
    write_wav(clip, seconds=1.5)
    alice = e2e_server.client_for("alice")
    file = alice.upload(name=clip.name, data=clip.read_bytes(), content_type="audio/wav")["file"]
    link = signed_link(alice, file["id"])
    page.goto(link)
    state = media_loaded(page, "video")
    assert state["error"] is None
    assert abs(state["duration"] - 1.5) < 0.05, state
    screenshot(page, f"video-on-its-own-{get_storage(e2e_server.app).kind}")
