"""LocalStack's S3 with signature validation on: the strict S3 lane's store.

moto accepts any signature, expired URLs, POSTs outside their policy and bytes that do not
match a signed checksum; LocalStack's S3 refuses them as AWS does. It needs Python 3.12 or
newer, so it lives in a virtual environment of its own, made by scripts/install-localstack.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from xml.etree import ElementTree

import pytest
import requests

from tests.support import ROOT, free_port

VENV = ROOT / ".localstack-venv"
PYTHON = VENV / "bin" / "python"
#: The secret LocalStack checks presigned URLs against for an access key it has not issued
#: itself (any access key id is accepted; a URL signed with another secret is refused).
SECRET_ACCESS_KEY = "test"
#: Where LocalStack's S3 keeps objects' files, a folder per bucket, whatever its settings
#: say: the lane drops its buckets (`drop_bucket`), and then this folder, when empty.
S3_FILES = Path("/tmp/localstack-s3-storage")
#: Starting takes about 5 s; the deadline leaves room for a busy machine.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0


def missing() -> str | None:
    """Why LocalStack cannot run here, or None when it is installed."""
    if not PYTHON.exists() or not (VENV / ".installed").exists():
        return ("LocalStack is not installed in .localstack-venv: scripts/install-localstack "
                "installs it (it needs Python 3.12 or newer, found on PATH or with pyenv)")
    return None


def _environment(port: int, folder: Path) -> dict[str, str]:
    """LocalStack's settings: S3 only, on 127.0.0.1, checking signatures, writing nothing
    outside `folder` (no persistence, DNS server, telemetry or certificate download; its
    plugin index goes to the cache folder there, not the user's)."""
    kept = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR")
            if name in os.environ}
    return {
        **kept,
        "XDG_CACHE_HOME": str(folder / "cache"),
        "SERVICES": "s3",
        "GATEWAY_SERVER": "hypercorn",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "S3_SKIP_SIGNATURE_VALIDATION": "0",
        "PERSISTENCE": "0",
        "DNS_ADDRESS": "0",
        "DISABLE_EVENTS": "1",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "LOCALSTACK_VOLUME_DIR": str(folder / "volume"),
    }


def _s3_ready(endpoint: str) -> bool:
    """Whether LocalStack's health check answers with S3 available."""
    try:
        answer = requests.get(f"{endpoint}/_localstack/health", timeout=2)
        state = answer.json().get("services", {}).get("s3")
    except (requests.RequestException, json.JSONDecodeError, AttributeError):
        return False
    return answer.status_code == 200 and state in ("available", "running")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop LocalStack and whatever it started: its process group (its own session)."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=STOP_TIMEOUT)


@contextmanager
def running(folder: Path) -> Iterator[str]:
    """Run LocalStack's S3 on a free loopback port until the block ends; yield its URL.

    `folder` receives its volume and cache folders and its log (shown if it fails to start).
    """
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    (folder / "volume").mkdir(parents=True, exist_ok=True)
    log_path = folder / "localstack.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PYTHON), "-m", "localstack.runtime.main"], env=_environment(port, folder),
            cwd=folder, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _s3_ready(endpoint):
            if process.poll() is not None:
                raise RuntimeError(f"LocalStack exited early:\n{log_path.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"LocalStack's S3 is not ready after {START_TIMEOUT} s:\n"
                                   f"{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        yield endpoint
    finally:
        _stop(process)
        with suppress(OSError):  # not empty: another LocalStack may be using it
            S3_FILES.rmdir()


# --- what the tests ask of it ---------------------------------------------------------------


def use_localstack(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Have S3 clients made from now on sign as LocalStack checks; return `endpoint`."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    return endpoint


def drop_bucket(storage: Any) -> None:
    """Abort the bucket's multipart uploads, delete its objects, then the bucket itself and
    its folder in S3_FILES."""
    client, bucket = storage.client, storage.bucket
    for upload in client.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"],
                                      UploadId=upload["UploadId"])
    for key in storage.iter_keys():
        client.delete_object(Bucket=bucket, Key=key)
    client.delete_bucket(Bucket=bucket)
    with suppress(FileNotFoundError):  # LocalStack leaves it when nothing was ever stored
        (S3_FILES / bucket).rmdir()


def store_error(answer: requests.Response) -> str:
    """The error code of an S3 error answer (`<Error><Code>...`), "" when there is none."""
    try:
        code = ElementTree.fromstring(answer.content).findtext("Code")
    except ElementTree.ParseError:
        return ""
    return code or ""


def query_value(url: str, name: str) -> str:
    """The value of the query parameter `name` of `url`."""
    return parse_qs(urlsplit(url).query)[name][0]


def replace_query(url: str, name: str, value: str) -> str:
    """`url` with the query parameter `name` set to `value`, everything else as it was."""
    base, _, query = url.partition("?")
    pairs = [f"{name}={quote(value, safe='')}" if pair.split("=", 1)[0] == name else pair
             for pair in query.split("&")]
    assert pairs != query.split("&"), f"{name} is not in {url}"
    return f"{base}?{'&'.join(pairs)}"


def signed_until(url: str) -> datetime:
    """When a presigned URL expires: its signing time plus its X-Amz-Expires seconds."""
    signed = datetime.strptime(query_value(url, "X-Amz-Date"), "%Y%m%dT%H%M%SZ")
    return signed.replace(tzinfo=UTC) + timedelta(seconds=int(query_value(url, "X-Amz-Expires")))


def wait_until_past(moment: datetime, timeout: float = 30.0) -> None:
    """Return once the clock (LocalStack's too: the same machine's) is past `moment`."""
    deadline = time.monotonic() + timeout
    while datetime.now(UTC) <= moment:
        assert time.monotonic() < deadline, f"{moment} is more than {timeout} s away"
        time.sleep(0.05)
