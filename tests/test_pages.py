"""The library pages: full page vs htmx fragment, rename, delete, movie page, downloads."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from urllib.parse import urlsplit

from flask import Flask
from flask.testing import FlaskClient

from movievault import db
from movievault.media.probe import AudioInfo, MediaInfo, SubtitleInfo, VideoInfo
from movievault.models import StoredFile
from tests.support import AuthActions, cookie_attributes, make_user, override_settings


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


# --- the movie library: views, cards that fill in, the movie page --------------------------


def analysed(app: Flask, file_id: int, info: MediaInfo | None = None, *,
             error: str | None = None, poster_key: str | None = None) -> None:
    """Record what a probe found (or why it failed), as the worker does."""
    with db.session_scope(app) as session:
        stored = session.get(StoredFile, file_id)
        assert stored is not None
        if info is None:
            stored.media_status, stored.media_error = "failed", error
        else:
            stored.media_status, stored.media_info = "ready", json.dumps(info.to_json())
            stored.duration = info.duration
            if info.video:
                stored.width, stored.height, stored.hdr = (
                    info.video.width, info.video.height, info.video.hdr
                )
        stored.poster_key = poster_key
        session.add(stored)
        session.commit()


def movie_info(codec: str = "h264", *, audio: str = "aac", height: int = 1080,
               hdr: str | None = None) -> MediaInfo:
    """What the probe finds in a 2 h 4 min film."""
    return MediaInfo(
        container="mp4" if codec == "h264" else "matroska", duration=7440.0,
        bitrate=8_000_000,
        video=VideoInfo(codec=codec, profile="High" if codec == "h264" else "Main", level=40,
                        codec_tag=None, width=height * 16 // 9, height=height, fps=23.976,
                        pix_fmt="yuv420p", bit_depth=8, hdr=hdr, transfer=None),
        audio=[AudioInfo(codec=audio, profile="LC", channels=6, language="eng", title=None)],
        subtitles=[SubtitleInfo(codec="subrip", language="fre", title=None, text=True)],
    )


def test_the_chosen_view_is_remembered_in_a_cookie(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    add_file(app, owner, "Heat (1995).mp4")
    auth.login()
    first = client.get("/").get_data(as_text=True)
    assert 'class="movie-grid"' in first and 'class="file-list"' not in first
    assert 'value="grid" checked' in first

    listed = client.get("/?view=list", headers={"HX-Request": "true"})
    assert 'class="file-list"' in listed.get_data(as_text=True)
    assert listed.headers["Set-Cookie"].startswith("movievault_view=list;")
    attributes = cookie_attributes(listed, "movievault_view")
    assert attributes["max-age"] == "31536000" and attributes["path"] == "/"
    assert attributes["samesite"] == "lax" and "httponly" in attributes
    again = client.get("/")  # a later visit: the list, rendered so at once
    assert 'class="file-list"' in again.get_data(as_text=True)
    assert 'value="list" checked' in again.get_data(as_text=True)
    assert "movievault_view" not in again.headers.get("Set-Cookie", "")  # nothing to store
    # A view the page does not know changes nothing.
    odd = client.get("/?view=carousel")
    assert 'class="file-list"' in odd.get_data(as_text=True)
    assert "Set-Cookie" not in odd.headers


def test_a_movie_pending_for_long_is_polled_less_and_less_often(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    """A queue that does not move (probing off, a long import) must not keep idle tabs busy."""
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Heat (1995).mp4")
    auth.login()
    for age, every in ((timedelta(seconds=10), 2), (timedelta(minutes=5), 10),
                       (timedelta(hours=3), 60)):
        with db.session_scope(app) as session:
            stored = session.get(StoredFile, file_id)
            assert stored is not None
            stored.created_at = datetime.now(UTC) - age
            session.commit()
        for route in ("card", "row", "facts"):
            pending = client.get(f"/files/{file_id}/{route}").get_data(as_text=True)
            assert f'hx-trigger="every {every}s"' in pending, (route, age)


def test_cards_and_rows_poll_until_the_movie_is_analysed(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Heat (1995).mp4")
    auth.login()
    for route in ("card", "row"):
        pending = client.get(f"/files/{file_id}/{route}").get_data(as_text=True)
        assert "Analysing…" in pending
        assert f'hx-get="/files/{file_id}/{route}"' in pending
        assert 'hx-trigger="every 2s" hx-target="this"' in pending

    analysed(app, file_id, movie_info(hdr="HDR10"), poster_key="posters/1/1-abcdef")
    for route in ("card", "row"):
        ready = client.get(f"/files/{file_id}/{route}").get_data(as_text=True)
        assert "Analysing…" not in ready and "hx-trigger" not in ready
        assert "2 h 4 min" in ready and ">1080p<" in ready and ">HDR10<" in ready
        assert 'data-playback-type="video/mp4; codecs=&#34;avc1.640028, mp4a.40.2&#34;"' in ready
    card = client.get(f"/files/{file_id}/card").get_data(as_text=True)
    assert f'src="/files/{file_id}/poster?v=abcdef"' in card
    assert 'alt="Poster of Heat"' not in card  # add_file records no title: the name stands in
    assert 'alt="Poster of Heat (1995).mp4"' in card


def test_a_failed_probe_is_shown_with_its_reason_and_a_placeholder(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "The Long Holiday.mkv")
    analysed(app, file_id, error="not a movie: no audio or video stream")
    auth.login()
    card = client.get(f"/files/{file_id}/card").get_data(as_text=True)
    assert "Not analysed: not a movie: no audio or video stream" in card
    assert "hx-trigger" not in card and "data-playback-type" not in card
    assert 'class="poster-placeholder poster-tone-' in card and ">LH<" in card
    page = client.get(f"/files/{file_id}").get_data(as_text=True)
    assert "data-playback-type" not in page  # unknown: the player stays, and explains errors
    assert "Not analysed: not a movie" in page


def test_movie_page_lists_each_embedded_subtitle_stream_once(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Rip.mkv")
    analysed(app, file_id, movie_info())
    auth.login()
    html = client.get(f"/files/{file_id}").get_data(as_text=True)
    section = html[html.index('id="subtitles"'):]
    assert "fre · embedded (subrip; not shown in the player here)" in section
    assert html.count("subrip") == 1


def test_movie_page_passes_the_playback_type_and_a_stream_address(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "Rip.mkv")
    analysed(app, file_id, movie_info("hevc", audio="ac3", height=2160, hdr="HDR10"),
             poster_key="posters/1/1-0a0b")
    auth.login()
    html = client.get(f"/files/{file_id}").get_data(as_text=True)
    assert 'data-playback-type="video/x-matroska; codecs=&#34;hvc1.1.6.L40.90, ac-3&#34;"' in html
    parts = json.loads(unescape(re.search(r"data-playback-parts='([^']*)'", html)[1]))
    assert parts == [
        {"type": "video/x-matroska", "name": "Matroska (MKV) files"},
        {"type": 'video/x-matroska; codecs="hvc1.1.6.L40.90"', "name": "HEVC (H.265) video"},
        {"type": 'video/x-matroska; codecs="ac-3"', "name": "AC-3 (Dolby Digital) audio"},
    ]
    assert f'poster="/files/{file_id}/poster?v=0a0b"' in html
    assert "3840×2160 · 4K · HDR10 · 23.976 fps" in html
    assert "AC-3 (Dolby Digital) audio · 5.1 · eng" in html
    address = re.search(r'id="stream-url" type="url" readonly value="([^"]+)"', html)[1]
    assert address.startswith("http")  # absolute: VLC has no page to resolve it against
    # The object the download route would send the browser to, playing in place.
    redirect = client.get(f"/files/{file_id}/stream").headers["Location"]
    assert urlsplit(redirect).path == urlsplit(unescape(address)).path


def test_title_and_year_form(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    owner = make_user(app, "alice")
    file_id = add_file(app, owner, "heat.1995.mkv")
    auth.login()
    headers = {"HX-Request": "true", **auth.headers()}
    form = client.get(f"/files/{file_id}/title", headers=headers).get_data(as_text=True)
    assert 'name="title"' in form and 'name="year"' in form

    bad = client.post(f"/files/{file_id}/title", data={"title": "Heat", "year": "95"},
                      headers=headers)
    assert bad.status_code == 422
    assert "year must be a whole number" in bad.get_data(as_text=True)
    assert 'value="95"' in bad.get_data(as_text=True)  # what was typed stays
    blank = client.post(f"/files/{file_id}/title", data={"title": "  ", "year": ""},
                        headers=headers)
    assert blank.status_code == 422

    good = client.post(f"/files/{file_id}/title", data={"title": "Heat", "year": "1995"},
                       headers=headers).get_data(as_text=True)
    assert '<h1 class="movie-title">Heat <span class="movie-year">(1995)</span></h1>' in good
    assert "<title>Heat · MovieVault</title>" in good
    cleared = client.post(f"/files/{file_id}/title", data={"title": "Heat", "year": ""},
                          headers=auth.headers())
    assert cleared.status_code == 302 and cleared.headers["Location"] == f"/files/{file_id}"
    with db.session_scope(app) as session:
        stored = session.get(StoredFile, file_id)
        assert stored is not None
        assert (stored.title, stored.year, stored.name) == ("Heat", None, "heat.1995.mkv")


def test_another_users_movie_fragments_are_not_found(
    app: Flask, client: FlaskClient, auth: AuthActions
) -> None:
    bob = make_user(app, "bob")
    file_id = add_file(app, bob, "Bob's.mp4")
    make_user(app, "alice")
    auth.login()
    for route in ("card", "row", "facts", "head", "title"):
        assert client.get(f"/files/{file_id}/{route}").status_code == 404
    refused = client.post(f"/files/{file_id}/title", data={"title": "Mine", "year": ""},
                          headers=auth.headers())
    assert refused.status_code == 404
