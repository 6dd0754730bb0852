"""The page against an S3 without form uploads, as Cloudflare R2 and Backblaze B2 are: moto
behind a proxy that answers POST Object 501 NotImplemented (tests/no_post_s3.py).

With S3_UPLOAD_METHOD=auto and the bucket on an R2 endpoint, or with `put`, small files go
up as one presigned PUT and big ones in parts, each with its SHA-256 in the header its URL
signs. With `post` the page says why the upload failed instead of retrying for nothing.

How the R2 name is reached: browsers are sent to S3_PUBLIC_ENDPOINT_URL, here
`http://<account>.r2.cloudflarestorage.com:<proxy port>`, which this module's Chromium
resolves to 127.0.0.1 (--host-resolver-rules); the app itself talks to the proxy by its
address (S3_ENDPOINT_URL). `auto` looks at the host names of both settings.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.support import (
    add_files,
    chromium_resolving,
    expect_stage,
    screenshot,
    stored_digests,
    upload_row,
    write_random,
)
from tests.no_post_s3 import NoPostS3, no_post_s3
from tests.support import MIB, LiveServer

R2_HOST = "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
PART = 5 * MIB


@pytest.fixture
def backend() -> str:
    """Only S3 has providers without form uploads."""
    return "s3"


@pytest.fixture
def no_post(s3_endpoint: str) -> Iterator[NoPostS3]:
    """The proxy in front of the suite's moto server, for this test."""
    with no_post_s3(s3_endpoint) as proxy:
        yield proxy


@pytest.fixture
def app_config(
    app_config: dict[str, Any], no_post: NoPostS3, upload_method: str
) -> dict[str, Any]:
    """The app's bucket behind the proxy; with `auto`, on an R2 endpoint's name."""
    config = {**app_config, "S3_ENDPOINT_URL": no_post.url}
    if upload_method == "auto":
        config["S3_PUBLIC_ENDPOINT_URL"] = f"http://{R2_HOST}:{no_post.port}"
    return config


@pytest.fixture(scope="module")
def browser(browser: Browser) -> Iterator[Browser]:
    """A Chromium in which the R2 endpoint's name leads to the proxy on 127.0.0.1."""
    resolving = chromium_resolving(browser, R2_HOST)
    yield resolving
    resolving.close()


def b64_sha256(data: bytes) -> str:
    """What x-amz-checksum-sha256 carries for `data`."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


@pytest.mark.parametrize("upload_method", ["auto", "put"])
def test_small_and_big_files_go_up_by_put_with_their_checksums(
    page: Page, e2e_server: LiveServer, no_post: NoPostS3, tmp_path: Path, upload_method: str
) -> None:
    small, big = tmp_path / "small clip.mp4", tmp_path / "big movie.mkv"
    digests = {write_random(small, 300 * 1024), write_random(big, 16 * MIB)}
    add_files(page, small, big)
    expect_stage(page, small.name, "done")
    expect_stage(page, big.name, "done")
    screenshot(page, f"upload-no-post-object-{upload_method}")
    # The stored bytes are the files' bytes.
    assert set(stored_digests(e2e_server.app)) == digests

    assert no_post.seen.form_posts == 0
    # The page's PUTs (cross-origin: with an Origin), not the app's own (setup-bucket's).
    puts = [(path, headers) for method, path, headers in no_post.seen.requests
            if method == "PUT" and "Origin" in headers]
    host = R2_HOST if upload_method == "auto" else "127.0.0.1"
    assert {headers["Host"].split(":")[0] for _, headers in puts} == {host}
    whole = [headers for path, headers in puts if "partNumber" not in path]
    parts = {int(parse_qs(urlsplit(path).query)["partNumber"][0]): headers
             for path, headers in puts if "partNumber" in path}
    # One PUT of the small file, with the type and the checksum its URL signs.
    (sent,) = whole
    assert sent["Content-Type"] == "video/mp4"
    assert sent["x-amz-checksum-sha256"] == b64_sha256(small.read_bytes())
    assert sent["Content-Length"] == str(small.stat().st_size)
    # The big one in four parts (5, 5, 5 and 1 MiB), hashed while it went, each part with
    # its own SHA-256.
    data = big.read_bytes()
    assert sorted(parts) == [1, 2, 3, 4]
    for number, headers in parts.items():
        body = data[(number - 1) * PART : number * PART]
        assert headers["x-amz-checksum-sha256"] == b64_sha256(body), number
        assert headers["Content-Length"] == str(len(body))


@pytest.mark.parametrize("upload_method", ["post"])
def test_form_posts_to_a_store_without_them_fail_at_once_and_say_why(
    page: Page, e2e_server: LiveServer, no_post: NoPostS3, tmp_path: Path,
    expected_console_errors: list[str],
) -> None:
    expected_console_errors.append(r"status of 501")
    small = tmp_path / "refused.mp4"
    write_random(small, 200 * 1024)
    add_files(page, small)
    # Not retried (501: the store does not implement it), so this takes no waiting.
    expect_stage(page, small.name, "failed", timeout=15_000)
    detail = upload_row(page, small.name).locator(".upload-detail")
    expect(detail).to_contain_text("501 NotImplemented")
    expect(detail).to_contain_text("Presigned post requests are not yet implemented")
    expect(detail).to_contain_text("MOVIEVAULT_S3_UPLOAD_METHOD=put")
    screenshot(page, "upload-no-post-object-refused")
    assert no_post.seen.form_posts == 1
    assert stored_digests(e2e_server.app) == []
