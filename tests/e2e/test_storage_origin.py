"""The local store on an origin of its own (STORAGE_ORIGIN), in Chromium.

The page is on PUBLIC_URL (127.0.0.1); the store's URLs are on http://media.test:<port>,
which Chromium resolves to the same machine, where the same app is served a second time,
as a reverse proxy would map a second host name to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import MIB, PASSWORD, LiveServer, free_port, make_user, serving
from tests.e2e.conftest import screenshot
from tests.e2e.test_library import (
    add_files,
    expect_stage,
    list_row,
    sha256_of,
    store_keys,
    stored_sha256,
    write_random,
    write_wav,
)


@pytest.fixture
def backend() -> str:
    """STORAGE_ORIGIN is a setting of the local store."""
    return "local"


@pytest.fixture
def storage_port() -> int:
    """The port of the store's origin."""
    return free_port()


@pytest.fixture
def app_config(app_config: dict[str, Any], storage_port: int) -> dict[str, Any]:
    """The usual settings, with the store on its own origin."""
    return {**app_config, "STORAGE_ORIGIN": f"http://media.test:{storage_port}"}


def test_uploads_and_playback_go_to_the_stores_own_origin(
    browser: Browser, e2e_server: LiveServer, storage_port: int, tmp_path: Path
) -> None:
    media = f"http://media.test:{storage_port}"
    make_user(e2e_server.app, "alice")
    small, big, clip = tmp_path / "clip.mp4", tmp_path / "film.mkv", tmp_path / "tone.wav"
    digests = {write_random(small, 200_000), write_random(big, 11 * MIB)}
    write_wav(clip, seconds=1.5)
    digests.add(sha256_of(clip))
    other = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, "--host-resolver-rules=MAP media.test 127.0.0.1"],
    )
    seen: list[tuple[str, str]] = []
    errors: list[str] = []
    with serving(e2e_server.app, port=storage_port):
        try:
            page = other.new_page()
            page.on("request", lambda request: seen.append((request.method, request.url)))
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: errors.append(f"console: {message.text}")
                    if message.type == "error" else None)
            page.goto(f"{e2e_server.url}/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{e2e_server.url}/")
            add_files(page, small, big, clip)
            for path in (small, big, clip):
                expect_stage(page, path.name, "done")
            list_row(page, clip.name).get_by_role("link", name="Play").click()
            expect(page.locator("h1.movie-title")).to_have_text(clip.name)
            page.wait_for_function(
                "() => document.querySelector('video.player').readyState >= 1", timeout=15_000
            )
            duration = page.evaluate("() => document.querySelector('video.player').duration")
            assert abs(duration - 1.5) < 0.05
            screenshot(page, "storage-origin-movie-page")
        finally:
            other.close()
    assert errors == []
    # Every byte went to the store's origin: the forms, the parts, the player's reads.
    assert any(m == "POST" and u.startswith(f"{media}/storage/upload") for m, u in seen), seen
    assert sum(m == "PUT" and u.startswith(f"{media}/storage/parts/") for m, u in seen) == 3
    assert any(m == "GET" and u.startswith(f"{media}/storage/objects/") for m, u in seen), seen
    assert not any(u.startswith(f"{e2e_server.url}/storage/") for _, u in seen), seen
    stored = {stored_sha256(e2e_server.app, key) for key in store_keys(e2e_server.app)}
    assert stored == digests

