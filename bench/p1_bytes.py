"""P1: bytes the app receives per upload, counted at the WSGI layer during real uploads.

The app runs under waitress in its own process, wrapped in bench/counted_app.py's counting
middleware; files are uploaded through the API with movievault/client.py's ApiClient (the
full protocol: check, create, form POST or part PUTs straight to the store, complete).
Two client flows are measured: hash first (the check carries the SHA-256), and hash while
uploading (the check carries the fingerprint, `complete` the SHA-256). Like the page, both
complete a multipart upload without echoing the parts' ETags. On the local-disk
backend the app *is* the store, so the store's own routes are reported apart from the
control plane.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    GIB,
    MIB,
    AppServer,
    Result,
    app_server,
    fmt_bytes,
    main_for,
    moto_server,
    sign_in,
    temp_dir,
)

from movievault.client import ApiClient, fingerprint_of, sha256_of  # noqa: E402

TARGET = 4 * 1024
CONTROL = ("api.", "pages.", "auth.")


def upload_hashed_first(client: ApiClient, name: str, data: bytes) -> dict[str, Any]:
    """The whole protocol with the SHA-256 known up front (ApiClient.upload)."""
    return client.upload(name=name, data=data)


def upload_hashing_while_sending(client: ApiClient, name: str, data: bytes) -> dict[str, Any]:
    """Fingerprint check, create without sha256, send, then complete with the SHA-256."""
    answer = client.api(
        "POST", "/files/check",
        json={"files": [{"fingerprint": fingerprint_of(data), "size": len(data)}]},
    )
    answer.raise_for_status()
    if answer.json()["results"][0]["needs_sha256"]:
        return upload_hashed_first(client, name, data)
    created = client.create(name=name, data=data, hashed=False)
    created.raise_for_status()
    upload = created.json()["upload"]
    if upload["method"] == "post":
        client.post_form(upload, data).raise_for_status()
        final = client.complete(upload["id"], sha256=sha256_of(data))
    else:
        client.put_parts(upload, data, list(range(1, upload["part_count"] + 1)))
        final = client.complete(upload["id"], sha256=sha256_of(data))
    final.raise_for_status()
    return final.json()


FLOWS = {"hash first": upload_hashed_first, "hash while uploading": upload_hashing_while_sending}


def split(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum what the control plane and the store's own routes received."""
    control = [r for r in records if r["route"].startswith(CONTROL)]
    store = [r for r in records if not r["route"].startswith(CONTROL)]
    bad = [r for r in records if r.get("status", 0) >= 400]
    if bad:
        raise RuntimeError(f"failed requests during the upload: {bad}")
    return {
        "control_received": sum(r["received"] for r in control),
        "control_sent": sum(r["sent"] for r in control),
        "control_requests": len(control),
        "store_received": sum(r["received"] for r in store),
        "store_requests": len(store),
        "routes": sorted(r["route"] for r in control),
    }


def measure(server: AppServer, sizes: list[int]) -> dict[str, dict[str, Any]]:
    """Upload one random file of each size with each flow; count per upload."""
    client = ApiClient(http=sign_in(server.url), base=server.url)
    figures: dict[str, dict[str, Any]] = {}
    for size in sizes:
        for flow, upload in FLOWS.items():
            data = os.urandom(size)  # new bytes each time: never a duplicate
            server.reset()
            answer = upload(client, f"movie-{size}.mp4", data)
            if "file" not in answer or answer.get("duplicate"):
                raise RuntimeError(f"upload did not record a new file: {answer}")
            figures[f"{flow}|{size}"] = split(server.records())
            del data
    return figures


def label(size: int) -> str:
    """1 MiB, 100 MiB, 1 GiB."""
    return f"{size // GIB} GiB" if size >= GIB else f"{size // MIB} MiB"


def run(*, quick: bool = False, backends: tuple[str, ...] | None = None) -> Result:
    """Measure P1 on the S3 backend (and on the local one when it exists)."""
    sizes = [1 * MIB, 8 * MIB, 40 * MIB] if quick else [1 * MIB, 100 * MIB, 1 * GIB]
    settings = {"MULTIPART_THRESHOLD": 16 * MIB, "PART_SIZE": 5 * MIB} if quick else {}
    if backends is None:
        local = Path(__file__).resolve().parent.parent / "movievault" / "storage" / "local.py"
        backends = ("s3", "local") if local.exists() else ("s3",)
    result = Result("P1", "Bytes the app receives per upload")
    with temp_dir() as work:
        for backend in backends:
            if backend == "s3":
                with moto_server(work) as endpoint, app_server(
                    work, endpoint=endpoint, counted=True, settings=settings
                ) as server:
                    result.raw[backend] = measure(server, sizes)
            else:
                with app_server(
                    work, storage="local", counted=True, settings=settings
                ) as server:
                    result.raw[backend] = measure(server, sizes)
    for backend, figures in result.raw.items():
        for flow in FLOWS:
            received = {s: figures[f"{flow}|{s}"]["control_received"] for s in sizes}
            worst = max(received.values())
            flat = max(received.values()) - min(received.values()) <= 256
            cells = ", ".join(f"{label(s)}: {n:,} B" for s, n in received.items())
            store = {s: figures[f"{flow}|{s}"]["store_received"] for s in sizes}
            result.row(
                f"app received per upload, {backend}, {flow} ({cells})",
                f"max {worst:,} B",
                "≤ 4 KiB, flat",
                worst <= TARGET and flat,
            )
            if any(store.values()):
                result.row(
                    f"local store routes received per upload, {flow}",
                    ", ".join(f"{label(s)}: {fmt_bytes(n)}" for s, n in store.items()),
                )
    result.notes.append(
        "Counted at the WSGI layer: request line + headers + body of every request the app "
        "got between sign-in and the recorded file; sizes 1 MiB / 100 MiB (form POST, the "
        "default threshold is 100 MiB) / 1 GiB (multipart, 64 parts of 16 MiB)."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
