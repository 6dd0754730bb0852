"""What the cross-engine tests share: signing in, choosing files, reading the upload rows
and the list, and a gate on the page's part uploads that works in every engine.

Plain functions over tests/engines/driver.py's `Browser`; files on disk and in the store
come from tests/e2e/support.py.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask
from sqlmodel import select

from movievault import db
from movievault.models import StoredFile
from movievault.pages import VIEW_COOKIE
from tests.engines.driver import Browser
from tests.support import PASSWORD


def sign_in(page: Browser, base: str, username: str = "alice") -> None:
    """Sign in through the login page at `base` and land on the library, in the list view."""
    page.goto(f"{base}/login")
    page.clear_cookies()  # the browser is shared: forget an earlier test's session
    page.evaluate(f"document.cookie = '{VIEW_COOKIE}=list; path=/'")
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for("return location.href === arguments[0] && document.readyState === 'complete'",
                  f"{base}/")
    mark_window(page)


def call(page: Browser, function: str, *args: object) -> Any:
    """The value of a JavaScript function's source (as tests/drops.py holds), called with
    `args` in the page."""
    return page.evaluate(f"return ({function}).apply(window, arguments)", *args)


def mark_window(page: Browser) -> None:
    """Mark the window: the mark still being there later proves the page never reloaded."""
    page.evaluate("window.mvLoadedOnce = true")


def never_reloaded(page: Browser) -> bool:
    """Whether the window still carries the mark of `mark_window`."""
    return page.evaluate("return window.mvLoadedOnce === true") is True


def add_files(page: Browser, *paths: Path) -> None:
    """Choose files with the upload panel's file picker."""
    page.set_files("[data-upload-input]", list(paths))


def stage(page: Browser, name: str) -> str | None:
    """The stage the upload row of `name` shows (None: no such row)."""
    return page.evaluate(
        """return [...document.querySelectorAll(".upload-row")]
             .find((row) => row.querySelector(".upload-name")?.title === arguments[0])
             ?.dataset.stage ?? null""",
        name,
    )


def wait_stage(page: Browser, name: str, wanted: str, timeout: float = 60.0) -> None:
    """Wait until the upload row of `name` shows `wanted` (fails at once on "failed")."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        seen = page.evaluate(
            """const row = [...document.querySelectorAll(".upload-row")]
                 .find((row) => row.querySelector(".upload-name")?.title === arguments[0]);
               return row ? [row.dataset.stage, row.querySelector(".upload-detail")?.textContent]
                          : null""",
            name,
        )
        if seen and seen[0] == wanted:
            return
        assert not (seen and seen[0] == "failed"), f"{page.name}: {name} failed: {seen[1]}"
        time.sleep(0.05)
    raise AssertionError(f"{page.name}: {name} is not {wanted} after {timeout} s: {seen}")


def upload_detail(page: Browser, name: str) -> str:
    """The sentence under the upload row of `name`."""
    return str(page.evaluate(
        """return [...document.querySelectorAll(".upload-row")]
             .find((row) => row.querySelector(".upload-name")?.title === arguments[0])
             .querySelector(".upload-detail").textContent.trim()""",
        name,
    ))


def listed_names(page: Browser) -> list[str]:
    """The names of the movies the library's list shows, in order."""
    return list(page.evaluate(
        """return [...document.querySelectorAll("#file-list .file-row .file-name a")]
             .map((a) => a.textContent.trim())"""
    ))


def file_id(app: Flask, name: str) -> int:
    """The catalogue id of the movie called `name`."""
    with db.session_scope(app) as session:
        row = session.exec(select(StoredFile).where(StoredFile.name == name)).one()
        assert row.id is not None
        return row.id


def eventually(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    """Poll `condition` (on the server's side) until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        time.sleep(0.05)


# Holds the page's part uploads (XHR PUTs) after the first `letThrough`, in the page itself,
# so the same test runs in every engine. `sent` counts every PUT the page started, `stored`
# those the store answered 2xx. open() sends the held ones on, drop() forgets them.
GATE = """
const gate = window.mvGate = { letThrough: arguments[0], sent: [], stored: 0, held: [] };
const open = XMLHttpRequest.prototype.open, send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.open = function (method, url, ...rest) {
  this.mvMethod = method;
  return open.call(this, method, url, ...rest);
};
XMLHttpRequest.prototype.send = function (body) {
  if (this.mvMethod !== "PUT") return send.call(this, body);
  gate.sent.push(body && body.size);
  this.addEventListener("load", () => { if (this.status < 300) gate.stored += 1; });
  const go = () => { try { send.call(this, body); } catch (error) { /* cancelled meanwhile */ } };
  if (gate.letThrough === null || gate.sent.length <= gate.letThrough) go();
  else gate.held.push(go);
};
gate.open = () => { gate.letThrough = null; gate.held.splice(0).forEach((go) => go()); };
gate.drop = () => { gate.letThrough = null; gate.held.splice(0); };
"""


def install_gate(page: Browser, let_through: int | None) -> None:
    """Hold the page's part uploads after the first `let_through` (None: hold none)."""
    page.evaluate(GATE, let_through)


def gate_state(page: Browser) -> dict[str, object]:
    """What the gate saw: sizes of the PUTs started, how many were stored, how many held."""
    return dict(json.loads(page.evaluate(
        "return JSON.stringify({sent: mvGate.sent, stored: mvGate.stored,"
        " held: mvGate.held.length})"
    )))
