"""The library on a plain-http LAN name (http://movievault.lan.test:<port>), as on a home
network, in WebKitGTK and Firefox ESR: no secure context, no crypto.subtle, and the page
still hashes and uploads right, on both stores.

Firefox resolves the name to this machine through its profile (network.dns.localDomains).
WebKitGTK has no such switch: its session for this test reaches the name through a proxy
that is the app's own server, which takes absolute request targets as a proxy would pass
them on; the store's own addresses (127.0.0.1) bypass it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from movievault.backends import get_storage
from tests.e2e.support import stored_digests, write_random
from tests.engines.driver import LAN_HOST, Browser, WebKit
from tests.engines.support import add_files, sign_in, wait_stage
from tests.support import MIB, LiveServer, make_user


@pytest.fixture
def lan_page(engine: Browser, e2e_server: LiveServer) -> Iterator[Browser]:
    """A page of the engine under test that reaches LAN_HOST on this machine."""
    if engine.name != "webkit":
        yield engine
        return
    browser = WebKit(proxy_port=urlsplit(e2e_server.url).port)
    try:
        yield browser
    finally:
        browser.close()


def test_uploads_work_on_a_plain_http_lan_name(
    lan_page: Browser, e2e_server: LiveServer, tmp_path: Path
) -> None:
    page = lan_page
    lan = f"http://{LAN_HOST}:{urlsplit(e2e_server.url).port}"
    # The store's CORS rules name the origin the browser uses (setup-bucket with PUBLIC_URL).
    get_storage(e2e_server.app).setup(public_url=lan, abort_after_days=7)
    make_user(e2e_server.app, "alice")
    sign_in(page, lan)
    assert page.evaluate("return [isSecureContext, typeof crypto.subtle]") == [
        False, "undefined",
    ]
    small, big = tmp_path / "lan clip.mp4", tmp_path / "lan movie.mkv"
    digests = {write_random(small, 200_000), write_random(big, 7 * MIB)}  # 5 and 2 MiB
    add_files(page, small, big)
    wait_stage(page, small.name, "done")
    wait_stage(page, big.name, "done")
    assert set(stored_digests(e2e_server.app)) == digests
    page.screenshot("lan-name")
