"""P7: app requests per uploaded file, small and multipart, for a batch of one and of ten.

Counted by route at the WSGI layer (bench/counted_app.py) while ApiClient uploads random
files: one bulk duplicate check per batch, then per file create, the transfer straight to
the store (form POST, or part PUTs with part URLs asked 100 at a time), and complete.
The multipart threshold is lowered (6 MiB, 5 MiB parts) so multipart files stay small;
a 101-part file shows the cost of the part-URL batches.
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import MIB, Result, app_server, main_for, moto_server, sign_in, temp_dir  # noqa: E402

from movievault.client import ApiClient, sha256_of  # noqa: E402

SETTINGS = {"MULTIPART_THRESHOLD": 6 * MIB, "PART_SIZE": 5 * MIB}
PART = 5 * MIB


def send(client: ApiClient, name: str, data: bytes) -> None:
    """Create, transfer and complete one file whose duplicate check is already done."""
    created = client.create(name=name, data=data)
    created.raise_for_status()
    upload = created.json()["upload"]
    if upload["method"] == "post":
        client.post_form(upload, data).raise_for_status()
        final = client.complete(upload["id"])
    else:
        numbers = list(range(1, upload["part_count"] + 1))
        final = client.complete(upload["id"], client.put_parts(upload, data, numbers))
    final.raise_for_status()
    if final.status_code != 201:
        raise RuntimeError(f"not recorded as a new file: {final.text}")


def batch(client: ApiClient, sizes: list[int]) -> None:
    """One bulk check for the whole batch, then each file."""
    files = [os.urandom(size) for size in sizes]
    results = client.check([(sha256_of(data), len(data)) for data in files])
    assert not any(r["duplicate"] for r in results)
    for number, data in enumerate(files):
        send(client, f"movie-{number}.mp4", data)


def run(*, quick: bool = False) -> Result:
    """Count requests per file for each case."""
    cases: list[tuple[str, int, int]] = [  # label, file size, files in the batch
        ("small (1 MiB, form POST)", 1 * MIB, 1),
        ("small (1 MiB, form POST)", 1 * MIB, 10),
        ("multipart (3 parts)", 3 * PART, 1),
        ("multipart (3 parts)", 3 * PART, 10 if not quick else 3),
        ("multipart (101 parts)", 101 * PART, 1),
    ]
    if quick:
        cases = cases[:4]
    result = Result("P7", "App requests per uploaded file")
    with temp_dir() as work, moto_server(work) as endpoint, app_server(
        work, endpoint=endpoint, counted=True, settings=SETTINGS
    ) as server:
        client = ApiClient(http=sign_in(server.url), base=server.url)
        for what, size, count in cases:
            server.reset()
            batch(client, [size] * count)
            records = server.records()
            failed = [r for r in records if r.get("status", 0) >= 400]
            if failed:
                raise RuntimeError(f"failed requests: {failed}")
            routes: dict[str, Any] = dict(Counter(r["route"] for r in records))
            parts = math.ceil(size / PART) if size > SETTINGS["MULTIPART_THRESHOLD"] else 0
            per_file = len(records) / count
            target = 3 + math.ceil(parts / 100)
            result.raw[f"{what}|{count}"] = {"routes": routes, "per_file": per_file}
            result.row(
                f"{what}, batch of {count}: " + ", ".join(f"{k} {v}" for k, v in routes.items()),
                f"{per_file:g} per file",
                f"≤ {target}",
                per_file <= target,
            )
    result.notes.append(
        "A batch shares one bulk check; every other request is per file (create, part URLs "
        "per 100 parts, complete). The transfer itself goes to the store and is not counted."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
