"""Catalogues as earlier releases made them, for upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

SCHEMA_0_1_0 = Path(__file__).parent / "data" / "catalogue-0.1.0.sql"


def make_catalogue_0_1_0(path: Path, *, without: tuple[str, ...] = ()) -> None:
    """Create a SQLite catalogue with release 0.1.0's schema, leaving out the named indexes."""
    statements = [s.strip() for s in SCHEMA_0_1_0.read_text().split(";") if s.strip()]
    with sqlite3.connect(path) as connection:
        for statement in statements:
            body = "\n".join(
                line for line in statement.splitlines() if not line.startswith("--")
            ).strip()
            if body and not any(f"INDEX {name} " in body for name in without):
                connection.execute(body)
