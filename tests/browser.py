"""How the tests and the benchmarks start Debian's Chromium headless."""

from __future__ import annotations

import os
import shutil

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Root needs --no-sandbox; the rest stops Chromium's background services from reaching
# Google, which this machine's closed network refuses many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

#: What htmx logs with console.error when a click cancels a request still out (hx-sync
#: replace: Rename or Delete cancelling its row's poll, or a second Rename the first).
#: Nothing failed: the pages' tests expect it.
HTMX_CANCELLED = r"htmx:(sendAbort|afterRequest)\b"
