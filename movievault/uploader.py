"""`movievault upload`: files on this machine into a MovieVault server, by the page's protocol.

Bulk duplicate check (1,000 hashes a request), create (which resumes the pending upload
of the same SHA-256), the bytes straight to the store (one form POST or PUT, or parts,
several in flight, each with its SHA-256 when the upload asks), then complete. Requests
that fail for a passing reason (a dropped connection, a 5xx, a 429) are tried again.
Only `requests` and the standard library: this runs where the server's dependencies are
not installed.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urljoin

import requests

from movievault.client import ApiClient
from movievault.collection import Candidate

#: Attempts of one request before the file fails, and the first pause between them.
ATTEMPTS = 5
BACKOFF = 0.5
#: Statuses worth another attempt: the server or store was busy or briefly failing.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHECK_BATCH = 1000


class UploadFailed(Exception):
    """A file could not be uploaded; the message says why (the server's error when it
    gave one)."""


def _reason(answer: requests.Response) -> str:
    """The error the server or store gave, in one line."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"{body['error']} ({answer.status_code})"
    return f"HTTP {answer.status_code}: {answer.text[:200].strip()}"


def retried(send: Callable[[], requests.Response], *, ok: tuple[int, ...] = (200, 201, 204)
            ) -> requests.Response:
    """Send a request until it gets an answer that is not a passing failure."""
    pause = BACKOFF
    for attempt in range(1, ATTEMPTS + 1):
        try:
            answer = send()
        except (requests.ConnectionError, requests.Timeout) as error:
            if attempt == ATTEMPTS:
                raise UploadFailed(f"the server could not be reached ({error})") from error
        else:
            if answer.status_code in ok:
                return answer
            if answer.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                raise UploadFailed(_reason(answer))
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")


def read_part(path: str, offset: int, size: int) -> bytes:
    """`size` bytes of the file from `offset`."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read(size)
    if len(data) != size:
        raise UploadFailed(f"{path} changed while it was being uploaded; run again")
    return data


@dataclass
class Uploader:
    """Uploads files for the client's user, `parallel` parts at a time."""

    client: ApiClient
    parallel: int = 4
    progress: Callable[[int], object] = lambda _: None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def _progress(self, count: int) -> None:
        """Count bytes sent (from several threads)."""
        with self._lock:
            self.progress(count)

    def owned(self, items: list[Candidate]) -> dict[str, dict[str, Any]]:
        """The files the user already has among `items`, by SHA-256 (one request per 1,000)."""
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(items), CHECK_BATCH):
            batch = items[start : start + CHECK_BATCH]
            body = {"files": [{"sha256": item.sha256, "size": item.size} for item in batch]}
            answer = retried(partial(self.client.api, "POST", "/files/check", json=body))
            for item, result in zip(batch, answer.json()["results"], strict=True):
                if result.get("duplicate"):
                    assert item.sha256 is not None
                    found[item.sha256] = result["file"]
        return found

    def upload(self, item: Candidate, *, path: str = "") -> tuple[bool, dict[str, Any]]:
        """Upload one file (`path`: where to create it, `/uploads` or a movie's subtitles);
        return whether it was already there, and the file as the server shows it."""
        declaration = {"name": item.name, "size": item.size, "sha256": item.sha256,
                       "content_type": item.content_type}
        created = retried(lambda: self.client.api("POST", path or "/uploads", json=declaration))
        body = created.json()
        if body.get("duplicate"):
            return True, body["file"]
        upload = body["upload"]
        if upload["method"] in ("post", "put"):
            retried(lambda: self._send_whole(upload, item))
            self._progress(item.size)
        else:
            held: set[int] = set()
            if created.status_code == 200:  # resumed: skip the parts the store holds
                status = retried(lambda: self.client.api("GET", f"/uploads/{upload['id']}"))
                held = {part["part_number"] for part in status.json()["uploaded_parts"]}
                self._progress(sum(self._part_size(upload, n) for n in held))
            missing = [n for n in range(1, upload["part_count"] + 1) if n not in held]
            self._send_parts(upload, item, missing)
        done = retried(
            lambda: self.client.api("POST", f"/uploads/{upload['id']}/complete", json={})
        ).json()
        return bool(done.get("duplicate")), done["file"]

    def _send_whole(self, upload: dict[str, Any], item: Candidate) -> requests.Response:
        """One form POST (the file field last) or PUT of the whole file, streamed from disk
        for a PUT."""
        with open(item.path, "rb") as handle:
            if upload["method"] == "put":
                put = upload["put"]
                return requests.put(urljoin(self.client.base, put["url"]), data=handle,
                                    headers=put["headers"], timeout=600)
            post = upload["post"]
            files = {"file": (item.name, handle, upload["content_type"])}
            return requests.post(urljoin(self.client.base, post["url"]),
                                 data=list(post["fields"].items()), files=files, timeout=600)

    @staticmethod
    def _part_size(upload: dict[str, Any], number: int) -> int:
        """Bytes in part `number`."""
        size = int(upload["part_size"])
        return min(size, int(upload["size"]) - (number - 1) * size)

    def _send_parts(self, upload: dict[str, Any], item: Candidate, numbers: list[int]) -> None:
        """Send the parts, `parallel` at a time; a window of parts is read and signed
        together (one signing request per window), so memory stays at a few parts."""
        window = max(1, self.parallel) * 2
        with ThreadPoolExecutor(max_workers=max(1, self.parallel)) as pool:
            for start in range(0, len(numbers), window):
                batch = numbers[start : start + window]
                bodies = {n: read_part(str(item.path), (n - 1) * int(upload["part_size"]),
                                       self._part_size(upload, n)) for n in batch}
                signed = self._sign(upload, bodies)
                sends = [pool.submit(self._put_part, upload, signed, bodies, n) for n in batch]
                for sent in sends:
                    sent.result()

    def _sign(self, upload: dict[str, Any], bodies: dict[int, bytes]) -> dict[int, Any]:
        """Part URLs and headers for these parts (with their SHA-256 when asked)."""
        if upload.get("checksum") == "sha256":
            request: dict[str, Any] = {"parts": [
                {"number": n, "sha256": hashlib.sha256(data).hexdigest()}
                for n, data in bodies.items()
            ]}
        else:
            request = {"part_numbers": list(bodies)}
        answer = retried(lambda: self.client.api(
            "POST", f"/uploads/{upload['id']}/parts", json=request
        ))
        return {part["part_number"]: part for part in answer.json()["parts"]}

    def _put_part(self, upload: dict[str, Any], signed: dict[int, Any],
                  bodies: dict[int, bytes], number: int) -> None:
        """PUT one part, signing it again if its URL expired meanwhile."""
        for _ in range(2):
            part = signed[number]
            answer = retried(partial(
                requests.put, urljoin(self.client.base, part["url"]), data=bodies[number],
                headers=part["headers"], timeout=600,
            ), ok=(200, 201, 204, 403))
            if answer.status_code != 403:
                self._progress(len(bodies[number]))
                return
            signed.update(self._sign(upload, {number: bodies[number]}))
        raise UploadFailed(f"the store refused part {number}: {_reason(answer)}")
