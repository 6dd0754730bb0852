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

from tests.e2e.support import (
    add_files,
    chromium_resolving,
    expect_stage,
    file_sha256,
    list_row,
    media_loaded,
    screenshot,
    sign_in_page,
    stored_digests,
    write_random,
    write_wav,
)
from tests.support import MIB, LiveServer, make_user, serving


@pytest.fixture
def backend() -> str:
    """STORAGE_ORIGIN is a setting of the local store."""
    return "local"


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
    digests.add(file_sha256(clip))
    other = chromium_resolving(browser, "media.test")
    seen: list[tuple[str, str]] = []
    errors: list[str] = []
    with serving(e2e_server.app, port=storage_port):
        try:
            page = other.new_page()
            page.on("request", lambda request: seen.append((request.method, request.url)))
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on("console", lambda message: errors.append(f"console: {message.text}")
                    if message.type == "error" else None)
            sign_in_page(page, e2e_server.url)
            add_files(page, small, big, clip)
            for path in (small, big, clip):
                expect_stage(page, path.name, "done")
            list_row(page, clip.name).get_by_role("link", name="Play").click()
            expect(page.locator(".movie-file")).to_have_text(clip.name)
            assert abs(media_loaded(page)["duration"] - 1.5) < 0.05
            screenshot(page, "storage-origin-movie-page")
        finally:
            other.close()
    assert errors == []
    # Every byte went to the store's origin: the forms, the parts, the player's reads.
    assert any(m == "POST" and u.startswith(f"{media}/storage/upload") for m, u in seen), seen
    assert sum(m == "PUT" and u.startswith(f"{media}/storage/parts/") for m, u in seen) == 3
    assert any(m == "GET" and u.startswith(f"{media}/storage/objects/") for m, u in seen), seen
    assert not any(u.startswith(f"{e2e_server.url}/storage/") for _, u in seen), seen
    assert set(stored_digests(e2e_server.app)) == digests

