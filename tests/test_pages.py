"""The library pages: full page vs htmx fragment, rename, delete, movie page, downloads."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from movievault import db
from movievault.models import StoredFile
from tests.conftest import AuthActions, make_user
from tests.overrides import override_settings


def add_file(app: Flask, owner: int, name: str, size: int = 1000, n: int = 1) -> int:
    """Record a file directly (its object does not matter for these page tests)."""
    with db.session_scope(app) as session:
        stored = StoredFile(
            owner_id=owner, name=name, size=size, sha256=f"{n:064x}",
            content_type="video/mp4", key=f"movies/{owner}/{n}",
        )
        session.add(stored)
        session.commit()
        assert stored.id is not None
        return stored.id


def test_full_page_and_fragment_from_one_url(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    add_file(app, owner, "Alien.mkv", 2_500_000_000)
    auth.login()
    full = client.get("/")
    assert "HX-Request" in full.vary
    html = full.get_data(as_text=True)
    assert "<html" in html and 'id="file-list"' in html and "data-upload-panel" in html
    fragment = client.get("/?q=ali", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.vary
    assert "<html" not in body
    assert 'id="file-list"' in body and "Alien.mkv" in body
    assert "1 movie matches" in body and "2.5 GB" in body


def test_search_without_results_and_empty_state(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    auth.login()
    assert "Your library is empty." in client.get("/").get_data(as_text=True)
    add_file(app, owner, "Brazil.mp4")
    body = client.get("/?q=zzz", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "No movies match" in body


def test_pagination_links(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = make_user(app, "alice")
    override_settings(app, page_size=2)
    for n in range(1, 6):
        add_file(app, owner, f"film {n}.mp4", n=n)
    auth.login()
    body = client.get("/?sort=name&page=3", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "film 5.mp4" in body and "film 1.mp4" not in body
    assert 'aria-current="page">3<' in body


def test_inline_rename_and_delete(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "old name.mp4")
    auth.login()
    headers = {"HX-Request": "true", **auth.headers()}
    form = client.get(f"/files/{file_id}/edit", headers=headers).get_data(as_text=True)
    assert 'name="name"' in form and "old name.mp4" in form
    bad = client.post(f"/files/{file_id}/rename", data={"name": "   "}, headers=headers)
    assert bad.status_code == 422
    assert "visible character" in bad.get_data(as_text=True)
    good = client.post(f"/files/{file_id}/rename", data={"name": "New Name.mp4"}, headers=headers)
    assert good.status_code == 200 and "New Name.mp4" in good.get_data(as_text=True)
    listing = client.post(f"/files/{file_id}/delete", headers=headers)
    assert listing.status_code == 200
    assert "Your library is empty." in listing.get_data(as_text=True)


def test_movie_page_has_player_and_download(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Heat.mp4")
    auth.login()
    html = client.get(f"/files/{file_id}").get_data(as_text=True)
    assert f'src="/files/{file_id}/stream"' in html
    assert f'href="/files/{file_id}/download"' in html
    stream = client.get(f"/files/{file_id}/stream")
    assert stream.status_code == 302
    assert stream.headers["Cache-Control"] == "private, no-store"
