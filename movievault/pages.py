"""Server-rendered pages: the library (full page or htmx fragment), a movie, downloads."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from flask import (
    Blueprint,
    Response,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.wrappers import Response as WerkzeugResponse

from movievault import db, display, library, subtitles
from movievault.api_schema import Operation, operation
from movievault.backends import get_storage
from movievault.config import settings
from movievault.errors import InvalidInput, NotFound
from movievault.models import StoredFile
from movievault.posters import CONTENT_TYPE as POSTER_TYPE

bp = Blueprint("pages", __name__)

#: The library shows a poster grid or the list; the choice is remembered in this cookie so
#: that the first render of the next visit is already the right one (no flash of the other).
VIEW_COOKIE = "movievault_view"
VIEWS = ("grid", "list")
DEFAULT_VIEW = "grid"
VIEW_COOKIE_AGE = 365 * 24 * 3600


def _owner() -> int:
    """The signed-in user's id."""
    return int(current_user.id)


def _is_htmx() -> bool:
    """Whether htmx made this request (it then wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"


def _current_page() -> library.Page:
    """The page of files the query string asks for."""
    try:
        number = int(request.values.get("page", 1))
    except ValueError:
        number = 1
    return library.list_files(
        session=db.session(),
        owner_id=_owner(),
        query=request.values.get("q", ""),
        sort=request.values.get("sort", ""),
        page=number,
        page_size=settings().page_size,
    )


def _asked_view() -> str | None:
    """The view the request asks for (`?view=grid|list`), if it names a known one."""
    view = request.values.get("view")
    return view if view in VIEWS else None


def _current_view() -> str:
    """The view to show: the one asked for, else the remembered one, else the grid."""
    remembered = request.cookies.get(VIEW_COOKIE)
    return _asked_view() or (remembered if remembered in VIEWS else DEFAULT_VIEW)


def _render_list(status: int = 200) -> Response:
    """Render the catalogue: the whole page, or only the list fragment for htmx."""
    page = _current_page()
    view = _current_view()
    template = "library/_file_list.html" if _is_htmx() else "library/index.html"
    response = make_response(render_template(template, page=page, view=view), status)
    # The same URL answers with two bodies; caches must keep them apart.
    response.vary.add("HX-Request")
    asked = _asked_view()
    if asked and asked != request.cookies.get(VIEW_COOKIE):
        response.set_cookie(
            VIEW_COOKIE, asked, max_age=VIEW_COOKIE_AGE, path=request.script_root or "/",
            secure=request.is_secure, httponly=True, samesite="Lax",
        )
    return response


@bp.get("/", endpoint="library")
@login_required
def library_page() -> ResponseReturnValue:
    """The library: uploader, search, sort, pages of files."""
    return _render_list()


def _owned(file_id: int) -> StoredFile:
    """The signed-in user's file, or NotFound."""
    return library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)


@bp.get("/files/<int:file_id>")
@login_required
def movie(file_id: int) -> ResponseReturnValue:
    """A movie's page: the player, its details, download."""
    stored = _owned(file_id)
    expires = settings().url_expires
    # For players outside the browser (VLC, mpv), which carry no session cookie: the
    # signed URL itself, absolute, as the download route would redirect to it.
    url = get_storage().download_url(
        key=stored.key, filename=stored.name, content_type=stored.content_type, inline=True,
        expires=expires,
    )
    return render_template(
        "library/movie.html", file=stored, stream_url=urljoin(request.host_url, url),
        stream_valid_for=display.running_time(expires),
        embedded=library.embedded_subtitles(stored), subtitle_url=library.subtitle_url,
    )


@bp.get("/files/<int:file_id>/row")
@login_required
def file_row(file_id: int) -> ResponseReturnValue:
    """One row of the list (htmx: leaving rename mode, or polling while it is analysed)."""
    return render_template("library/_file_row.html", file=_owned(file_id))


@bp.get("/files/<int:file_id>/card")
@login_required
def file_card(file_id: int) -> ResponseReturnValue:
    """One card of the poster grid (htmx: polling while the movie is analysed)."""
    return render_template("library/_file_card.html", file=_owned(file_id))


@bp.get("/files/<int:file_id>/facts")
@login_required
def movie_facts(file_id: int) -> ResponseReturnValue:
    """The movie page's details (htmx: polling while the movie is analysed)."""
    return render_template("library/_movie_facts.html", file=_owned(file_id))


@bp.get("/files/<int:file_id>/head")
@login_required
def movie_head(file_id: int) -> ResponseReturnValue:
    """The movie page's title and year (htmx: leaving the title form)."""
    return render_template("library/_movie_head.html", file=_owned(file_id))


@bp.get("/files/<int:file_id>/title")
@login_required
def edit_title(file_id: int) -> ResponseReturnValue:
    """The movie page's title and year as a form (htmx)."""
    return render_template("library/_movie_head_edit.html", file=_owned(file_id))


def _year_field(text: str) -> Any:
    """The year form field as the catalogue takes it: empty is none, digits a number."""
    text = text.strip()
    if not text:
        return None
    return int(text) if text.isascii() and text.isdigit() else text


@bp.post("/files/<int:file_id>/title")
@login_required
def save_title(file_id: int) -> ResponseReturnValue:
    """Save the title and year; a bad value re-renders the form with the reason (422)."""
    session = db.session()
    title, year = request.form.get("title", ""), request.form.get("year", "")
    try:
        stored = library.update_file(
            session=session, owner_id=_owner(), file_id=file_id,
            data={"title": title, "year": _year_field(year)},
        )
    except InvalidInput as error:
        return render_template(
            "library/_movie_head_edit.html", file=_owned(file_id), error=error.message,
            title=title, year=year,
        ), 422
    if _is_htmx():
        return render_template("library/_movie_head.html", file=stored, retitle=True)
    flash("Saved the title.", "info")
    return redirect(url_for("pages.movie", file_id=file_id))


@bp.get("/files/<int:file_id>/edit")
@login_required
def edit_row(file_id: int) -> ResponseReturnValue:
    """One row in rename mode (htmx)."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return render_template("library/_file_edit.html", file=stored)


@bp.post("/files/<int:file_id>/rename")
@login_required
def rename(file_id: int) -> ResponseReturnValue:
    """Rename from the list's inline form; a bad name re-renders the form with the reason."""
    session = db.session()
    name = request.form.get("name", "")
    try:
        stored = library.rename_file(session=session, owner_id=_owner(), file_id=file_id, name=name)
    except InvalidInput as error:
        stored = library.get_owned_file(session=session, owner_id=_owner(), file_id=file_id)
        return render_template(
            "library/_file_edit.html", file=stored, error=error.message, name=name
        ), 422
    if _is_htmx():
        return render_template("library/_file_row.html", file=stored)
    flash(f"Renamed to {stored.name}.", "info")
    return redirect(url_for("pages.movie", file_id=file_id))


@bp.post("/files/<int:file_id>/delete")
@login_required
def delete(file_id: int) -> ResponseReturnValue:
    """Delete a file; htmx gets the refreshed list, a plain form goes back to the library."""
    session = db.session()
    stored = library.get_owned_file(session=session, owner_id=_owner(), file_id=file_id)
    name = stored.name
    library.delete_file(session=session, storage=get_storage(), owner_id=_owner(), file_id=file_id)
    if _is_htmx():
        return _render_list()
    flash(f"Deleted {name}.", "info")
    return redirect(url_for("pages.library"))


def _redirect_to_store(
    *, key: str, filename: str, content_type: str, inline: bool
) -> WerkzeugResponse:
    """Send the browser to a time-limited URL on the store for the object at `key`."""
    url = get_storage().download_url(
        key=key,
        filename=filename,
        content_type=content_type,
        inline=inline,
        expires=settings().url_expires,
    )
    response = redirect(url, code=302)
    # The URL is a bearer credential until it expires: keep it out of shared caches.
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _signed_redirect(file_id: int, *, inline: bool) -> WerkzeugResponse:
    """Check ownership, then send the browser to the movie's signed URL."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return _redirect_to_store(
        key=stored.key, filename=stored.name, content_type=stored.content_type, inline=inline
    )


@bp.get("/files/<int:file_id>/download")
@login_required
@operation(Operation(
    summary="Download: a redirect to the store, saving under the file's name",
    tags=("downloads",), page=True, answers={302: "the file, as an attachment"}, errors=(404,)))
def download(file_id: int) -> ResponseReturnValue:
    """Redirect to a presigned GET that saves the file under its name."""
    return _signed_redirect(file_id, inline=False)


@bp.get("/files/<int:file_id>/stream")
@login_required
@operation(Operation(
    summary="Play: a redirect to the store, inline, for <video> (Range requests seek)",
    tags=("downloads",), page=True, answers={302: "the file, inline"}, errors=(404,)))
def stream(file_id: int) -> ResponseReturnValue:
    """Redirect to a presigned GET for playing in place (Range requests seek)."""
    return _signed_redirect(file_id, inline=True)


@bp.get("/files/<int:file_id>/poster")
@login_required
@operation(Operation(
    summary="The poster: a redirect to the store (404 while there is none)",
    tags=("downloads",), page=True, answers={302: "image/webp"}, errors=(404,)))
def poster(file_id: int) -> ResponseReturnValue:
    """Redirect to a signed GET of the movie's poster (WebP); 404 while it has none."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    if stored.poster_key is None:
        raise NotFound("This movie has no poster yet.")
    return _redirect_to_store(
        key=stored.poster_key, filename=f"{stored.title}.webp", content_type=POSTER_TYPE,
        inline=True,
    )


@bp.get("/files/<int:file_id>/subtitles/<int:subtitle_id>.vtt")
@login_required
@operation(Operation(
    summary="A subtitle's WebVTT, served by the app",
    tags=("downloads",), page=True, answers={200: "text/vtt"}, errors=(404,)))
def subtitle_track(file_id: int, subtitle_id: int) -> ResponseReturnValue:
    """A subtitle's WebVTT for the player's `<track>`.

    Served by the app rather than by a redirect to the store: a `<track>` on another
    origin needs CORS, and with it `crossorigin` on the video, which would then need the
    store's CORS for the movie as well. A WebVTT is a few dozen KB, read once per view.
    """
    session = db.session()
    subtitle = subtitles.get_owned_subtitle(
        session=session, owner_id=_owner(), file_id=file_id, subtitle_id=subtitle_id
    )
    response = make_response(subtitles.read_vtt(storage=get_storage(), subtitle=subtitle))
    response.headers["Content-Type"] = "text/vtt; charset=utf-8"
    # The URL names this subtitle's version (see library.subtitle_url): it never changes.
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.post("/files/<int:file_id>/subtitles/<int:subtitle_id>/delete")
@login_required
def delete_subtitle(file_id: int, subtitle_id: int) -> ResponseReturnValue:
    """Remove a subtitle from the movie page's list, then show the page again."""
    subtitles.remove(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id,
        subtitle_id=subtitle_id,
    )
    flash("Subtitle removed.", "info")
    return redirect(url_for("pages.movie", file_id=file_id))
