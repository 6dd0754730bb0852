"""Browser fixtures: Debian's Chromium driven by Playwright, headless, against a live app.

The helpers browser tests share are in tests/e2e/support.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from moto.s3.responses import S3Response
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser import CHROMIUM, CHROMIUM_ARGS, HTMX_CANCELLED
from tests.e2e.support import sign_in_page
from tests.support import LiveServer, make_user


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark everything in this folder as a browser test."""
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session", autouse=True)
def _moto_cors_on_form_posts() -> Iterator[None]:
    """Give moto's form-POST answers the bucket's CORS headers, as S3 itself does.

    moto 5.2 adds them to object requests but not to a POST to the bucket, so a browser
    could not read the answer of a form upload (real S3 and the local store send them).
    """
    original = S3Response._bucket_response_post

    def with_cors(self: S3Response, request: object, bucket_name: str) -> object:
        """The original answer plus the CORS headers matching the request's Origin."""
        status, headers, body = original(self, request, bucket_name)
        return status, {**self._get_cors_headers_other(), **headers}, body

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(S3Response, "_bucket_response_post", with_cors)
        yield


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Headless Chromium; in CI a missing browser fails the run instead of skipping it."""
    if not os.path.exists(CHROMIUM):
        message = "Debian's chromium is not installed (scripts/install-chromium installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    yield ctx
    ctx.close()


@pytest.fixture
def e2e_server(live_server: LiveServer) -> LiveServer:
    """The live app with the bucket prepared by `movievault setup-bucket`, as a user would."""
    result = live_server.app.test_cli_runner().invoke(args=["setup-bucket"])
    assert result.exit_code == 0, result.output
    return live_server


@pytest.fixture
def expected_console_errors() -> list[str]:
    """Patterns (regular expressions) of console errors a test provokes on purpose (and
    htmx's log of a request a click cancelled, which any click in the list may do)."""
    return [HTMX_CANCELLED]


@pytest.fixture
def page(
    context: BrowserContext, e2e_server: LiveServer, expected_console_errors: list[str]
) -> Iterator[Page]:
    """A page signed in as alice, on the library; unexpected console errors fail the test."""
    make_user(e2e_server.app, "alice")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
    tab.on(
        "console",
        lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    sign_in_page(tab, e2e_server.url)
    yield tab
    unexpected = [
        error
        for error in errors
        if not any(re.search(pattern, error) for pattern in expected_console_errors)
    ]
    assert not unexpected, unexpected
