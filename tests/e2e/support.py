"""What the browser tests share: files to upload, the page's rows, signing in, players,
screenshots, and what the store holds afterwards.

Plain functions; the fixtures that use them are in tests/e2e/conftest.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import wave
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from playwright.sync_api import Browser, Locator, Page, expect

from movievault.backends import get_storage
from movievault.pages import VIEW_COOKIE
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support import MIB, PASSWORD

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/screenshots/ and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- files on disk and in the store ---------------------------------------------------------


def write_random(path: Path, size: int) -> str:
    """Write `size` random bytes to `path` and return their SHA-256."""
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file on disk."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> None:
    """A short valid WAV (PCM, mono, 16 bit) of a rising tone, which Chromium can play."""
    frames = bytearray()
    for i in range(int(seconds * rate)):
        sample = ((i * 37) % 2000) - 1000
        frames += sample.to_bytes(2, "little", signed=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


def store_keys(app: Flask) -> list[str]:
    """Every object key the store holds."""
    return sorted(get_storage(app).iter_keys())


def stored_sha256(app: Flask, key: str) -> str:
    """The SHA-256 of the bytes the store holds at `key`."""
    digest = hashlib.sha256()
    with get_storage(app).open(key) as stream:
        for chunk in iter(lambda: stream.read(MIB), b""):
            digest.update(chunk)
    return digest.hexdigest()


def stored_digests(app: Flask) -> list[str]:
    """The SHA-256 of each object the store holds, in key order."""
    return [stored_sha256(app, key) for key in store_keys(app)]


# --- the browser and the page ---------------------------------------------------------------


def chromium_resolving(browser: Browser, host: str) -> Browser:
    """Another headless Chromium in which `host` resolves to 127.0.0.1 (close it after)."""
    return browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {host} 127.0.0.1"],
    )


def choose_view(page: Page, base: str, view: str) -> None:
    """Have the library remember `view` ("grid" or "list"), as its switch does."""
    page.context.add_cookies([{"name": VIEW_COOKIE, "value": view, "url": base}])


def sign_in_page(page: Page, base: str, username: str = "alice",
                 password: str = PASSWORD, view: str = "list") -> None:
    """Sign in through the login page at `base`, as a person would, and land on the library
    (in the list view by default: the upload tests read its rows)."""
    choose_view(page, base, view)
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def upload_row(page: Page, name: str) -> Locator:
    """The upload panel's row for the file called `name`."""
    return page.locator(".upload-row").filter(has=page.locator(f'.upload-name[title="{name}"]'))


def list_row(page: Page, name: str) -> Locator:
    """The catalogue's row for the movie called `name`."""
    link = page.locator(".file-name").get_by_role("link", name=name, exact=True)
    return page.locator("#file-list .file-row").filter(has=link)


def add_files(page: Page, *paths: Path) -> None:
    """Choose files with the panel's file picker, as a person would."""
    page.set_input_files("[data-upload-input]", [str(path) for path in paths])


def expect_stage(page: Page, name: str, stage: str, timeout: float = 30_000) -> None:
    """Wait until the file's row shows `stage`."""
    expect(upload_row(page, name)).to_have_attribute("data-stage", stage, timeout=timeout)


def media_loaded(page: Page, selector: str = "video.player") -> dict[str, Any]:
    """Wait until the player has loaded the media's metadata; its error code and duration."""
    page.wait_for_function(
        f"() => document.querySelector({selector!r})?.readyState >= 1", timeout=15_000
    )
    return page.evaluate(
        f"() => {{ const v = document.querySelector({selector!r});"
        " return {error: v.error && v.error.code, duration: v.duration}; }"
    )


def api_calls(page: Page) -> list[tuple[str, dict]]:
    """Record (path, JSON body) of every API POST the page makes, in order."""
    calls: list[tuple[str, dict]] = []

    def note(request: Any) -> None:
        path = urlsplit(request.url).path
        if request.method == "POST" and path.startswith("/api/"):
            calls.append((path, json.loads(request.post_data or "{}")))

    page.on("request", note)
    return calls
