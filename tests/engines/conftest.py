"""The cross-engine lanes: the same tests in WebKitGTK and in Firefox ESR, against a live app.

Firefox is started once per worker (it takes seconds) and shared by its tests; WebKitGTK
starts in under a second, so each test gets a fresh one and a browser left hung by one
test cannot fail the next. Each engine's tests are marked with an `xdist_group`; under
`--dist loadgroup` each engine then runs on one worker.
The helpers the tests share are in tests/engines/support.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest

# The moto fix-up and the live app of the Chromium lane, shared as they are.
from tests.browser import HTMX_CANCELLED
from tests.e2e.conftest import _moto_cors_on_form_posts, e2e_server  # noqa: F401
from tests.engines.driver import Browser, Firefox, WebKit, missing
from tests.engines.support import sign_in
from tests.support import LiveServer, make_user

ENGINES = ["webkit", "firefox"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each cross-engine test with its lane, and group it with its engine's browser."""
    for item in items:
        if "/engines/" not in str(item.fspath):
            continue
        item.add_marker(pytest.mark.engines)
        engine = getattr(item, "callspec", None) and item.callspec.params.get("engine")
        if engine:
            item.add_marker(getattr(pytest.mark, engine))
            item.add_marker(pytest.mark.xdist_group(f"engine-{engine}"))


def _require(engine: str) -> None:
    """Skip without the engine; in CI a missing engine fails the run instead."""
    reason = missing(engine)
    if reason:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
def webkit_browser() -> Iterator[Browser]:
    """WebKitGTK under an Xvfb of its own, for one test."""
    _require("webkit")
    browser = WebKit()
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def firefox_browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Firefox ESR with a temporary profile, for the whole run of this worker."""
    _require("firefox")
    browser = Firefox(tmp_path_factory.mktemp("firefox-profile"))
    yield browser
    browser.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Browser:
    """The engine under test, its page on a blank document and without cookies."""
    browser: Browser = request.getfixturevalue(f"{request.param}_browser")
    browser.goto("about:blank")
    return browser


@pytest.fixture
def expected_errors() -> list[str]:
    """Patterns (regular expressions) of page errors a test provokes on purpose (and htmx's
    log of a request a click cancelled, which any click in the list may do)."""
    return [HTMX_CANCELLED]


@pytest.fixture
def signed_in(
    engine: Browser, e2e_server: LiveServer, expected_errors: list[str]  # noqa: F811
) -> Iterator[Browser]:
    """The engine's page signed in as alice, on the library (list view); errors the page
    reports afterwards (uncaught, rejected, console.error) fail the test."""
    make_user(e2e_server.app, "alice")
    sign_in(engine, e2e_server.url)
    yield engine
    unexpected = [error for error in engine.errors()
                  if not any(re.search(pattern, error) for pattern in expected_errors)]
    assert not unexpected, f"{engine.name}: {unexpected}"
