"""A small Python client for the JSON API, doing what the browser does.

Tests and benchmarks use it, and so can scripts: `requests` is one of the package's
dependencies. It follows the protocol exactly: bulk duplicate check, create, form POST or PUT
or part PUTs (each with its SHA-256 when the upload asks for it), complete.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

MIB = 1024 * 1024


def sha256_of(data: bytes) -> str:
    """Hex SHA-256 of `data`."""
    return hashlib.sha256(data).hexdigest()


def fingerprint_of(data: bytes) -> str:
    """SHA-256 of the first MiB and the last MiB (all bytes for files up to 2 MiB)."""
    return hashlib.sha256(data[:MIB] + data[max(MIB, len(data) - MIB) :]).hexdigest()


@dataclass(frozen=True)
class SignedPart:
    """Where to PUT one part, and the headers the URL was signed with (its checksum)."""

    url: str
    headers: dict[str, str]

    def put(self, body: bytes) -> requests.Response:
        """Send `body` as the part."""
        return requests.put(self.url, data=body, headers=self.headers, timeout=120)


@dataclass
class ApiClient:
    """A signed-in `requests` session (with `X-CSRFToken` set), or one sending an API
    token (see `with_token`), and the app's base URL."""

    http: requests.Session
    base: str
    #: Every request made to the app (method, path): lets tests count control-plane calls.
    calls: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def with_token(cls, base_url: str, token: str) -> ApiClient:
        """A client that sends a personal API token (`Authorization: Bearer`) instead of
        signing in: no session cookie, no CSRF token."""
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"
        return cls(http=http, base=base_url.rstrip("/"))

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the app's API."""
        self.calls.append((method, path))
        return self.http.request(method, f"{self.base}/api{path}", timeout=60, **kwargs)

    def check(self, items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        """Bulk duplicate check."""
        answer = self.api(
            "POST", "/files/check", json={"files": [{"sha256": s, "size": n} for s, n in items]}
        )
        answer.raise_for_status()
        results: list[dict[str, Any]] = answer.json()["results"]
        return results

    def create(
        self, *, name: str, data: bytes, content_type: str = "video/mp4", hashed: bool = True
    ) -> requests.Response:
        """Start (or resume) an upload of `data`; `hashed=False` sends only the fingerprint."""
        body = {
            "name": name,
            "size": len(data),
            "fingerprint": fingerprint_of(data),
            "content_type": content_type,
        }
        if hashed:
            body["sha256"] = sha256_of(data)
        return self.api("POST", "/uploads", json=body)

    def post_form(self, upload: dict[str, Any], data: bytes) -> requests.Response:
        """Send a form upload straight to the store, file field last (as browsers do)."""
        post = upload["post"]
        fields = list(post["fields"].items())
        files = {"file": (upload["name"], data, upload["content_type"])}
        # The local store's URLs are relative to the app, as they are for the browser.
        return requests.post(urljoin(self.base, post["url"]), data=fields, files=files, timeout=120)

    def put_whole(self, upload: dict[str, Any], data: bytes) -> requests.Response:
        """Send a PUT upload straight to the store, with exactly the headers it lists."""
        put = upload["put"]
        return requests.put(
            urljoin(self.base, put["url"]), data=data, headers=put["headers"], timeout=120
        )

    def send_whole(self, upload: dict[str, Any], data: bytes) -> requests.Response:
        """Send a file that goes up whole, by the method the upload names (post or put)."""
        if upload["method"] == "put":
            return self.put_whole(upload, data)
        return self.post_form(upload, data)

    def sign_parts(
        self, upload: dict[str, Any], numbers: list[int], data: bytes
    ) -> dict[int, SignedPart]:
        """Get PUT URLs (absolute) and their headers for parts of `data`, 100 per request.

        When the upload's parts carry their SHA-256 (`checksum`), each part's hash is sent
        and signed into its URL; otherwise only the part numbers are.
        """
        signed: dict[int, SignedPart] = {}
        size = upload["part_size"]
        for start in range(0, len(numbers), 100):
            batch = numbers[start : start + 100]
            if upload.get("checksum") == "sha256":
                body: dict[str, Any] = {"parts": [
                    {"number": n, "sha256": sha256_of(data[(n - 1) * size : n * size])}
                    for n in batch
                ]}
            else:
                body = {"part_numbers": batch}
            answer = self.api("POST", f"/uploads/{upload['id']}/parts", json=body)
            answer.raise_for_status()
            for part in answer.json()["parts"]:
                signed[part["part_number"]] = SignedPart(
                    url=urljoin(self.base, part["url"]), headers=part["headers"]
                )
        return signed

    def put_parts(
        self, upload: dict[str, Any], data: bytes, numbers: list[int]
    ) -> dict[int, str]:
        """Upload the given parts of `data` and return their ETags."""
        size = upload["part_size"]
        etags: dict[int, str] = {}
        for number, part in self.sign_parts(upload, numbers, data).items():
            body = data[(number - 1) * size : number * size]
            answer = part.put(body)
            answer.raise_for_status()
            etags[number] = answer.headers["ETag"]
        return etags

    def status(self, upload_id: str) -> dict[str, Any]:
        """The upload and the parts the store already holds."""
        answer = self.api("GET", f"/uploads/{upload_id}")
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        return body

    def complete(
        self, upload_id: str, etags: dict[int, str] | None = None, sha256: str | None = None
    ) -> requests.Response:
        """Ask the app to verify and record the upload (`sha256` if created unhashed)."""
        body: dict[str, Any] = {} if sha256 is None else {"sha256": sha256}
        if etags is not None:
            body["parts"] = [{"part_number": n, "etag": e} for n, e in sorted(etags.items())]
        return self.api("POST", f"/uploads/{upload_id}/complete", json=body)

    def upload(
        self, *, name: str, data: bytes, content_type: str = "video/mp4"
    ) -> dict[str, Any]:
        """Upload `data` end to end; return the API's final answer (file or duplicate)."""
        result = self.check([(sha256_of(data), len(data))])[0]
        if result["duplicate"]:
            return {"duplicate": True, "file": result["file"]}
        answer = self.create(name=name, data=data, content_type=content_type)
        answer.raise_for_status()
        body: dict[str, Any] = answer.json()
        if body.get("duplicate"):
            return body
        upload = body["upload"]
        if upload["method"] in ("post", "put"):
            self.send_whole(upload, data).raise_for_status()
            final = self.complete(upload["id"])
        else:
            held: set[int] = set()
            if answer.status_code == 200:  # resuming: skip what the store already holds
                held = {p["part_number"] for p in self.status(upload["id"])["uploaded_parts"]}
            missing = [n for n in range(1, upload["part_count"] + 1) if n not in held]
            self.put_parts(upload, data, missing)
            # Like the page, no part list: the app takes it from the store.
            final = self.complete(upload["id"])
        final.raise_for_status()
        done: dict[str, Any] = final.json()
        return done
