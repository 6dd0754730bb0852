"""The library list stays cheap with many files: bounded pagination, indexed sorts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from movievault import create_app, db
from movievault.models import StoredFile
from movievault.templating import page_window
from tests.conftest import AuthActions, make_user
from tests.legacy import make_catalogue_0_1_0
from tests.overrides import override_settings


@pytest.mark.parametrize(
    ("current", "pages", "expected"),
    [
        (1, 1, [1]),
        (3, 5, [1, 2, 3, 4, 5]),
        (1, 200, [1, 2, 3, None, 200]),
        (100, 200, [1, None, 98, 99, 100, 101, 102, None, 200]),
        (200, 200, [1, None, 198, 199, 200]),
        (4, 200, [1, 2, 3, 4, 5, 6, None, 200]),
    ],
)
def test_page_window(current: int, pages: int, expected: list[int | None]) -> None:
    assert page_window(current, pages) == expected


def test_many_pages_render_a_bounded_pagination(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    override_settings(app, page_size=1)
    with db.session_scope(app) as session:
        for n in range(1, 41):
            session.add(StoredFile(owner_id=owner, name=f"film {n:02}.mp4", size=n,
                                   sha256=f"{n:064x}", content_type="video/mp4",
                                   key=f"movies/{owner}/{n}"))
        session.commit()
    auth.login()
    body = client.get("/?sort=name&page=20", headers={"HX-Request": "true"}).get_data(
        as_text=True
    )
    assert "film 20.mp4" in body
    assert 'aria-current="page">20<' in body
    for linked in (1, 18, 19, 21, 22, 40):
        assert f">{linked}</a>" in body
    assert ">2</a>" not in body and ">30</a>" not in body
    assert body.count('class="page-gap"') == 2


@pytest.mark.parametrize(
    ("sort", "index"),
    [("created_at DESC", "ix_file_owner_created"), ("lower(name)", "ix_file_owner_lower_name"),
     ("size DESC", "ix_file_owner_size")],
)
def test_list_sorts_walk_an_index(app: Flask, sort: str, index: str) -> None:
    """SQLite reads a page in index order instead of sorting all of the owner's files."""
    with db.session_scope(app) as session:
        plan = session.exec(  # type: ignore[call-overload]
            text(f"EXPLAIN QUERY PLAN SELECT * FROM file WHERE owner_id = 1 "
                 f"ORDER BY {sort} LIMIT 50")
        ).all()
    details = " ".join(str(row[-1]) for row in plan)
    assert index in details
    assert "TEMP B-TREE FOR ORDER BY" not in details


def test_indexes_added_to_an_existing_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A catalogue created before an index existed gets it when the app starts."""
    path = tmp_path / "old.db"
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    config = {"TESTING": True, "SECRET_KEY": "x" * 32, "DATABASE_URL": f"sqlite:///{path}",
              "STORAGE": "s3", "S3_ENDPOINT_URL": "http://127.0.0.1:9"}
    # A catalogue from before migrations, made by code that did not have the index yet.
    make_catalogue_0_1_0(path, without=("ix_file_owner_created",))
    create_app(config)
    with sqlite3.connect(path) as con:
        names = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "ix_file_owner_created" in names
