"""Titles and years in the API: set from the name at upload, edited with PATCH (checked,
all or nothing), searched and sorted by; the name stays the file's own.

How names are read is in tests/test_names.py.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from movievault.client import ApiClient
from movievault.models import StoredFile
from tests.support import AuthActions, LiveServer, add_file, make_user, rows


@pytest.fixture
def backend() -> str:
    """Titles live in the catalogue only: one store is enough."""
    return "local"


@pytest.fixture
def signed_in(app: Flask, client: FlaskClient, auth: AuthActions) -> dict[str, str]:
    """Alice signed in; the headers her API calls need."""
    make_user(app, "alice")
    assert auth.login("alice").status_code == 302
    return auth.headers()


def patch(client: FlaskClient, headers: dict[str, str], file_id: int, body: Any) -> Any:
    """PATCH /api/files/<id> with `body`."""
    return client.patch(f"/api/files/{file_id}", json=body, headers=headers)


def test_an_upload_gets_its_title_and_year_from_its_name(
    alice: ApiClient, live_server: LiveServer
) -> None:
    done = alice.upload(name="Long.Film.1999.1080p.BluRay.x264-GRP.mkv",
                        data=os.urandom(5000))["file"]
    assert (done["name"], done["title"], done["year"]) == (
        "Long.Film.1999.1080p.BluRay.x264-GRP.mkv", "Long Film", 1999
    )
    (row,) = rows(live_server.app, StoredFile)
    assert (row.title, row.year, row.media_status) == ("Long Film", 1999, "pending")


def test_patch_changes_title_and_year_and_leaves_the_name(
    app: Flask, client: FlaskClient, signed_in: dict[str, str]
) -> None:
    file_id = add_file(app, 1, "heat.1995.mkv")
    answer = patch(client, signed_in, file_id, {"title": "  Heat ", "year": 1995})
    assert answer.status_code == 200, answer.get_json()
    shown = answer.get_json()["file"]
    assert (shown["name"], shown["title"], shown["year"]) == ("heat.1995.mkv", "Heat", 1995)
    cleared = patch(client, signed_in, file_id, {"year": None}).get_json()["file"]
    assert (cleared["title"], cleared["year"]) == ("Heat", None)
    renamed = patch(client, signed_in, file_id, {"name": "Heat (1995).mkv"}).get_json()["file"]
    assert (renamed["name"], renamed["title"]) == ("Heat (1995).mkv", "Heat")
    everything = patch(client, signed_in, file_id,
                       {"name": "h.mkv", "title": "Heat!", "year": 1996}).get_json()["file"]
    assert (everything["name"], everything["title"], everything["year"]) == (
        "h.mkv", "Heat!", 1996
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"title": ""}, "title must contain at least one visible character"),
        ({"title": "\u0000 "}, "title must contain at least one visible character"),
        ({"title": "x" * 201}, "title must be at most 200 characters"),
        ({"title": None}, "title must be a string"),
        ({"year": 1869}, "year must be a whole number from 1870 to"),
        ({"year": datetime.now(UTC).year + 6}, "year must be a whole number from 1870 to"),
        ({"year": "1999"}, "year must be a whole number"),
        ({"year": 1999.5}, "year must be a whole number"),
        ({"year": True}, "year must be a whole number"),
        ({"name": ""}, "name must contain at least one visible character"),
        ({}, "with name, title or year"),
        ({"size": 1}, "with name, title or year"),
        ([], "with name, title or year"),
        # One bad field refuses the whole edit.
        ({"title": "Fine", "year": 3000}, "year must be a whole number"),
    ],
)
def test_patch_refuses_bad_fields_and_changes_nothing(
    app: Flask, client: FlaskClient, signed_in: dict[str, str], body: Any, message: str
) -> None:
    file_id = add_file(app, 1, "film.mkv")
    patch(client, signed_in, file_id, {"title": "Before", "year": 2000})
    answer = patch(client, signed_in, file_id, body)
    assert answer.status_code == 400
    assert message in answer.get_json()["error"]
    shown = client.get(f"/api/files/{file_id}").get_json()["file"]
    assert (shown["name"], shown["title"], shown["year"]) == ("film.mkv", "Before", 2000)


def test_patch_of_another_users_file_is_404(
    app: Flask, client: FlaskClient, signed_in: dict[str, str]
) -> None:
    theirs = add_file(app, make_user(app, "bob"), "theirs.mkv")
    answer = patch(client, signed_in, theirs, {"title": "Mine now"})
    assert answer.status_code == 404
    assert [f.title for f in rows(app, StoredFile)] == [""]


def test_search_matches_titles_as_well_as_names_and_sorts_by_them(
    app: Flask, client: FlaskClient, signed_in: dict[str, str]
) -> None:
    ids = {name: add_file(app, 1, name, data=name.encode())
           for name in ("a1.mkv", "b2.mkv", "c3.mkv")}
    edits = {"a1.mkv": ("Zodiac", 2007), "b2.mkv": ("Alien", 1979), "c3.mkv": ("Heat", None)}
    for name, (title, year) in edits.items():
        answer = patch(client, signed_in, ids[name], {"title": title, "year": year})
        assert answer.status_code == 200

    def listed(query: str) -> list[str]:
        files = client.get(f"/api/files?{query}").get_json()["files"]
        return [f["title"] for f in files]

    assert listed("q=alie") == ["Alien"]  # by title
    assert listed("q=c3") == ["Heat"]  # by file name
    assert listed("sort=title") == ["Alien", "Heat", "Zodiac"]
    assert listed("sort=-title") == ["Zodiac", "Heat", "Alien"]
    assert listed("sort=-year")[:2] == ["Zodiac", "Alien"]
    # The library page finds titles too.
    page = client.get("/?q=zodiac").get_data(as_text=True)
    assert "Zodiac" in page and "Alien" not in page
