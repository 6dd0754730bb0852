"""Server-rendered pages: the library (full page or htmx fragment), a movie, downloads."""

from __future__ import annotations

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

from movievault import db, library, subtitles
from movievault.backends import get_storage
from movievault.config import settings
from movievault.errors import InvalidInput, NotFound
from movievault.posters import CONTENT_TYPE as POSTER_TYPE

bp = Blueprint("pages", __name__)


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


def _render_list(status: int = 200) -> Response:
    """Render the catalogue: the whole page, or only the list fragment for htmx."""
    page = _current_page()
    template = "library/_file_list.html" if _is_htmx() else "library/index.html"
    response = make_response(render_template(template, page=page), status)
    # The same URL answers with two bodies; caches must keep them apart.
    response.vary.add("HX-Request")
    return response


@bp.get("/", endpoint="library")
@login_required
def library_page() -> ResponseReturnValue:
    """The library: uploader, search, sort, pages of files."""
    return _render_list()


@bp.get("/files/<int:file_id>")
@login_required
def movie(file_id: int) -> ResponseReturnValue:
    """A movie's page: the player, its details, download."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return render_template(
        "library/movie.html", file=stored, embedded=library.embedded_subtitles(stored),
        subtitle_url=library.subtitle_url,
    )


@bp.get("/files/<int:file_id>/row")
@login_required
def file_row(file_id: int) -> ResponseReturnValue:
    """One row of the list (htmx: leaving rename mode)."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return render_template("library/_file_row.html", file=stored)


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
def download(file_id: int) -> ResponseReturnValue:
    """Redirect to a presigned GET that saves the file under its name."""
    return _signed_redirect(file_id, inline=False)


@bp.get("/files/<int:file_id>/stream")
@login_required
def stream(file_id: int) -> ResponseReturnValue:
    """Redirect to a presigned GET for playing in place (Range requests seek)."""
    return _signed_redirect(file_id, inline=True)


@bp.get("/files/<int:file_id>/poster")
@login_required
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
