"""Bytes damaged between the disk and the store: the store refuses them (400 BadDigest),
and the page reads and hashes them again and sends them again, instead of failing or
recording a movie that differs from the user's file.

On the local store the damage is real: the request's body is changed on its way (one
byte flipped) and the store finds its SHA-256 wrong. moto checks no checksums, so on S3
the store's refusal is played by the test, with the answer S3 gives.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Page, Request, Route

from tests.e2e.support import add_files, expect_stage, stored_digests, write_random
from tests.support import MIB, LiveServer

BAD_DIGEST = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>BadDigest</Code><Message>The '
    "SHA256 you specified did not match the calculated checksum.</Message></Error>"
)


@pytest.fixture
def app_config(app_config: dict[str, Any]) -> dict[str, Any]:
    """Small files by PUT too, so that both kinds of request carry a checksum."""
    return {**app_config, "S3_UPLOAD_METHOD": "put"}


def which(request: Request) -> str:
    """Which body a PUT carries: "whole" (a file sent whole) or "part <n>"."""
    split = urlsplit(request.url)
    number = parse_qs(split.query).get("partNumber")
    if number:
        return f"part {number[0]}"
    if "/storage/parts/" in split.path:
        return f"part {split.path.rsplit('/', 1)[1]}"
    return "whole"


def test_damaged_bytes_are_refused_by_the_store_and_sent_again(
    page: Page, e2e_server: LiveServer, tmp_path: Path, backend: str,
    expected_console_errors: list[str],
) -> None:
    expected_console_errors.append(r"status of 400")
    small, big = tmp_path / "small clip.mp4", tmp_path / "big movie.mkv"
    digests = {write_random(small, 300 * 1024), write_random(big, 11 * MIB)}  # 5, 5, 1 MiB
    # What the damaged requests carry (Playwright does not hand out a whole File's body).
    true = {"whole": small.read_bytes(), "part 2": big.read_bytes()[5 * MIB : 10 * MIB]}
    damage = set(true)
    sent: list[str] = []
    refused: list[tuple[str, int]] = []

    def damage_once(route: Route) -> None:
        """Damage the first try of the small file and of part 2; pass everything else."""
        request = route.request
        if request.method != "PUT":
            route.fallback()
            return
        name = which(request)
        sent.append(name)
        if name not in damage:
            route.continue_()
            return
        damage.discard(name)
        body = true[name]
        # The header the page sent is the one its URL signs: the bytes' true SHA-256.
        checksum = request.headers["x-amz-checksum-sha256"]
        assert checksum == base64.b64encode(hashlib.sha256(body).digest()).decode()
        if backend == "local":
            route.continue_(post_data=body[:1000] + bytes([body[1000] ^ 1]) + body[1001:])
        else:
            origin = request.headers.get("origin", "*")
            route.fulfill(status=400, body=BAD_DIGEST, content_type="application/xml",
                          headers={"Access-Control-Allow-Origin": origin})

    page.on("response", lambda r: refused.append((which(r.request), r.status))
            if r.request.method == "PUT" and r.status >= 400 else None)
    page.route("**/*", damage_once)
    add_files(page, small, big)
    expect_stage(page, small.name, "done")
    expect_stage(page, big.name, "done")

    assert sorted(refused) == [("part 2", 400), ("whole", 400)]
    # Each damaged body went twice, every other one once.
    assert sorted(sent) == ["part 1", "part 2", "part 2", "part 3", "whole", "whole"]
    assert set(stored_digests(e2e_server.app)) == digests
