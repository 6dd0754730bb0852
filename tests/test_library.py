"""The catalogue's duplicate checks, against an in-memory SQLite database (no app, no
server): which files might hold the same bytes, and the bulk check with its batches.

The same checks over HTTP are in tests/test_api_flow.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, create_engine, delete

from movievault import library
from movievault.errors import InvalidInput
from movievault.models import StoredFile, User, shown

ALICE, BOB = 1, 2
#: SQLite's historical limit on bound parameters in one statement.
SQLITE_MAX_VARIABLES = 999


def digest(n: int) -> str:
    """A distinct SHA-256-like hex digest for each `n`."""
    return hashlib.sha256(str(n).encode()).hexdigest()


@pytest.fixture
def statements() -> list[tuple[str, int]]:
    """Every SELECT run on the catalogue, with its number of bound parameters."""
    return []


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """A catalogue in memory, its tables created once for this module."""
    engine = create_engine("sqlite://")
    SQLModel.metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine: Engine, statements: list[tuple[str, int]]) -> Iterator[Session]:
    """The catalogue with two accounts, alice and bob, emptied again afterwards."""

    def record(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        if sql.lstrip().upper().startswith("SELECT"):
            statements.append((sql, len(parameters)))

    with Session(engine, expire_on_commit=False) as db:
        db.add(User(id=ALICE, username="alice", password_hash="x"))
        db.add(User(id=BOB, username="bob", password_hash="x"))
        db.commit()
        event.listen(engine, "before_cursor_execute", record)
        try:
            yield db
        finally:
            event.remove(engine, "before_cursor_execute", record)
            db.rollback()
            db.exec(delete(StoredFile))
            db.exec(delete(User))
            db.commit()


def add(session: Session, *, owner: int = ALICE, n: int = 1, size: int = 1000,
        fingerprint: str | None = None) -> StoredFile:
    """Record a file of `owner` with content `n`."""
    stored = StoredFile(owner_id=owner, name=f"film {n}.mkv", size=size, sha256=digest(n),
                        fingerprint=fingerprint, content_type="video/mp4",
                        key=f"movies/{owner}/{n}")
    session.add(stored)
    session.commit()
    return stored


# --- could a file of this size and fingerprint be one already kept? ----------------------


@pytest.mark.parametrize(
    ("kept", "expected"),
    [
        ({"size": 1000, "fingerprint": digest(100)}, True),  # same size and fingerprint
        ({"size": 1000, "fingerprint": None}, True),  # recorded without one: it might be
        ({"size": 1000, "fingerprint": digest(101)}, False),  # another fingerprint
        ({"size": 1001, "fingerprint": digest(100)}, False),  # another size
        ({"size": 1001, "fingerprint": None}, False),
        ({"size": 1000, "fingerprint": digest(100), "owner": BOB}, False),  # someone else's
        (None, False),  # nothing kept at all
    ],
    ids=["same", "no-fingerprint", "other-fingerprint", "other-size", "other-size-unknown",
         "other-owner", "empty"],
)
def test_could_be_duplicate_only_for_own_files_of_that_size_and_fingerprint(
    session: Session, kept: dict[str, Any] | None, expected: bool
) -> None:
    if kept is not None:
        add(session, **kept)
    found = library.could_be_duplicate(
        session=session, owner_id=ALICE, size=1000, fingerprint=digest(100)
    )
    assert found is expected


# --- the bulk check -------------------------------------------------------------------------


def test_check_answers_each_entry_in_order(session: Session) -> None:
    mine = add(session, n=1, fingerprint=digest(50))
    add(session, owner=BOB, n=2)
    answer = library.check_duplicates(session=session, owner_id=ALICE, items=[
        {"sha256": digest(1).upper(), "size": 1000},  # hex in either case
        {"sha256": digest(2), "size": 1000},  # bob's file: not alice's duplicate
        {"fingerprint": digest(50), "size": 1000},  # might be `mine`: hash it first
        {"fingerprint": digest(50), "size": 999},
        {"sha256": digest(3)},
    ])
    assert [shown(result) for result in answer] == [
        {"sha256": digest(1), "duplicate": True, "file": shown(library.public(mine))},
        {"sha256": digest(2), "duplicate": False, "file": None},
        {"fingerprint": digest(50), "size": 1000, "duplicate": False, "file": None,
         "needs_sha256": True},
        {"fingerprint": digest(50), "size": 999, "duplicate": False, "file": None,
         "needs_sha256": False},
        {"sha256": digest(3), "duplicate": False, "file": None},
    ]


def test_a_full_check_is_looked_up_in_batches_sqlite_accepts(
    session: Session, statements: list[tuple[str, int]]
) -> None:
    # Kept files on both sides of each batch boundary (500) and at the ends.
    kept = {0, 499, 500, 501, 998, 999}
    for n in kept:
        add(session, n=n)
    statements.clear()
    items = [{"sha256": digest(n), "size": 1000} for n in range(library.MAX_CHECK)]
    answer = library.check_duplicates(session=session, owner_id=ALICE, items=items)
    assert [n for n, result in enumerate(answer) if result.duplicate] == sorted(kept)
    assert all(answer[n].file is not None and answer[n].file.sha256 == digest(n) for n in kept)
    # Two batches, each with its files' subtitles loaded in one more query.
    assert len(statements) == 4, [sql[:80] for sql, _ in statements]
    assert all(count <= SQLITE_MAX_VARIABLES for _, count in statements), statements


@pytest.mark.parametrize(
    "items",
    [
        {"sha256": digest(1)},
        "not a list",
        None,
        ["not an object"],
        [{"sha256": "not hex"}],
        [{"sha256": None}],
        [{"fingerprint": "short", "size": 10}],
        [{"fingerprint": digest(1), "size": 0}],
        [{"fingerprint": digest(1)}],
        [{"sha256": digest(1)}] * (library.MAX_CHECK + 1),
    ],
    ids=["object", "string", "null", "entry-not-object", "bad-sha256", "no-sha256",
         "bad-fingerprint", "empty-size", "no-size", "too-many"],
)
def test_a_malformed_check_is_invalid_input(session: Session, items: Any) -> None:
    with pytest.raises(InvalidInput):
        library.check_duplicates(session=session, owner_id=ALICE, items=items)
