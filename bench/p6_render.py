"""P6: server time to render the library page and the list fragment with 10,000 files.

Rows are inserted directly with SQLModel into a fresh app's SQLite file (one user, names
and sizes varied, one file per minute of creation time). Each view is requested through
the Flask test client, signed in, and timed; the figure is the median of many requests.
Besides the default view (newest first, page 1) it times the other sorts, a search and a
deep page, since each exercises another query plan.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    PASSWORD,
    USERNAME,
    AuthActions,
    Result,
    base_env,
    main_for,
    median,
    moto_server,
    percentile,
    temp_dir,
)

TARGET_MS = 50.0
WORDS = ("Heat", "Alien", "Ran", "Vertigo", "Brazil", "Memento", "Amélie", "Jaws", "Up", "M")


def build_app(work: Path, endpoint: str) -> Any:
    """A fresh app on its own SQLite file and bucket."""
    os.environ.update(base_env())
    os.environ["MOVIEVAULT_INSTANCE_PATH"] = str(work / "instance")
    from movievault import create_app

    return create_app({
        "SECRET_KEY": "bench-secret-key-at-least-32-bytes-long",
        "DATABASE_URL": f"sqlite:///{work / 'movievault.db'}",
        "STORAGE": "s3",
        "S3_ENDPOINT_URL": endpoint,
        "S3_BUCKET": "bench-render",
        "PUBLIC_URL": "http://127.0.0.1:8000",
    })


def fill(app: Any, count: int) -> None:
    """Create the user and `count` files directly in the catalogue."""
    from movievault import db, users
    from movievault.models import StoredFile, utcnow

    with db.session_scope(app) as session:
        user = users.create_user(session=session, username=USERNAME, password=PASSWORD)
        start = utcnow() - timedelta(minutes=count)
        for number in range(count):
            word = WORDS[number % len(WORDS)]
            session.add(StoredFile(
                owner_id=user.id, name=f"{word} {number} ({1950 + number % 70}).mkv",
                size=(number * 7919 % 50_000 + 1) * 1_000_000, sha256=secrets.token_hex(32),
                content_type="video/x-matroska", key=f"movies/1/{secrets.token_hex(16)}",
                fingerprint=secrets.token_hex(32),
                created_at=start + timedelta(minutes=number),
            ))
        session.commit()


def run(*, quick: bool = False) -> Result:
    """Time each view with 10,000 files in the catalogue."""
    files = 2_000 if quick else 10_000
    repeats = 15 if quick else 60
    views = {
        "library page (full)": ("/", False),
        "list fragment (htmx)": ("/", True),
        "fragment, sort by name": ("/?sort=name", True),
        "fragment, sort by size": ("/?sort=-size", True),
        "fragment, search 'alien'": ("/?q=alien", True),
        "fragment, page 150": ("/?page=150", True),
    }
    result = Result("P6", f"Library render time with {files:,} files")
    with temp_dir() as work, moto_server(work) as endpoint:
        app = build_app(work, endpoint)
        from movievault.backends import get_storage

        get_storage(app).setup(public_url="http://127.0.0.1:8000", abort_after_days=7)
        fill(app, files)
        client = app.test_client()
        AuthActions(client).login(USERNAME, PASSWORD)
        times: dict[str, list[float]] = {name: [] for name in views}
        for path, htmx in views.values():  # warm caches (templates, statements)
            client.get(path, headers={"HX-Request": "true"} if htmx else {})
        for _ in range(repeats):
            for name, (path, htmx) in views.items():
                started = time.perf_counter()
                answer = client.get(path, headers={"HX-Request": "true"} if htmx else {})
                times[name].append((time.perf_counter() - started) * 1000)
                if answer.status_code != 200:
                    raise RuntimeError(f"{path}: {answer.status_code}")
        result.raw = {"files": files, "times_ms": times}
    for name, series in times.items():
        mid = median(series)
        result.row(
            name, f"median {mid:.1f} ms (p90 {percentile(series, 90):.1f} ms)",
            f"≤ {TARGET_MS:.0f} ms", mid <= TARGET_MS,
        )
    result.notes.append(
        f"{repeats} requests per view through the Flask test client (no network), views "
        "interleaved; pages hold 50 files."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
