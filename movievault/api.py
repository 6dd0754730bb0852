"""The JSON API: thin views over the upload protocol and the catalogue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from movievault import completion, db, library, probing, subtitles, uploads
from movievault.backends import get_storage
from movievault.background import wake_probe_worker
from movievault.config import settings
from movievault.errors import InvalidInput
from movievault.models import FilePublic, StoredFile, StoredPartPublic, shown

bp = Blueprint("api", __name__, url_prefix="/api")

# Control-plane requests are small; the largest is a 1,000-file duplicate check.
MAX_JSON_BYTES = 1024 * 1024


@bp.before_request
def _limit_body() -> None:
    """Refuse oversized JSON bodies before reading them."""
    request.max_content_length = MAX_JSON_BYTES


def _json_body() -> Any:
    """Parse the request body as JSON, or raise a 400 that says what is wrong."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # `silent` only covers ValueError; a few thousand nested brackets exhaust the stack.
        raise InvalidInput("The request body is nested too deeply.") from None
    if data is None:
        raise InvalidInput("The request body must be valid JSON (Content-Type: application/json).")
    return data


def _upload_settings() -> uploads.UploadSettings:
    """The upload protocol's settings."""
    return settings().uploads


def _owner() -> int:
    """The signed-in user's id."""
    return int(current_user.id)


def _public(stored: StoredFile) -> FilePublic:
    """A file as the API shows it; its poster URL under the app's own path."""
    return library.public(stored, root=request.script_root)


def _int_arg(name: str, default: int) -> int:
    """Read a positive integer query argument, falling back to `default`."""
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


@bp.post("/files/check")
@login_required
def check_files() -> ResponseReturnValue:
    """Tell which of the listed hashes the user already has."""
    data = _json_body()
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object with a files list.")
    results = library.check_duplicates(
        session=db.session(), owner_id=_owner(), items=data.get("files")
    )
    return jsonify(results=[shown(result) for result in results])


@bp.post("/uploads")
@login_required
def create_upload() -> ResponseReturnValue:
    """Start an upload, resume the pending one, or report a duplicate."""
    storage = get_storage()
    result = uploads.start_upload(
        session=db.session(), storage=storage, settings=_upload_settings(), owner_id=_owner(),
        data=_json_body(),
    )
    if result.status == "duplicate":
        assert result.file is not None
        return jsonify(duplicate=True, file=shown(_public(result.file))), 200
    assert result.upload is not None
    body = uploads.describe(result.upload, storage=storage, settings=_upload_settings())
    return jsonify(upload=shown(body)), 201 if result.status == "created" else 200


@bp.get("/uploads/<upload_id>")
@login_required
def get_upload(upload_id: str) -> ResponseReturnValue:
    """Show an upload and the parts the store already holds (to resume)."""
    storage = get_storage()
    upload = uploads.get_owned_upload(session=db.session(), owner_id=_owner(), upload_id=upload_id)
    parts = uploads.uploaded_parts(storage=storage, upload=upload)
    return jsonify(
        upload=shown(uploads.describe(upload, storage=storage, settings=_upload_settings())),
        uploaded_parts=[
            shown(StoredPartPublic(part_number=p.part_number, etag=p.etag, size=p.size))
            for p in parts
        ],
    )


@bp.post("/uploads/<upload_id>/parts")
@login_required
def sign_parts(upload_id: str) -> ResponseReturnValue:
    """Sign PUT URLs for up to 100 parts."""
    parts = uploads.part_urls(
        session=db.session(), storage=get_storage(), settings=_upload_settings(), owner_id=_owner(),
        upload_id=upload_id, data=_json_body(),
    )
    return jsonify(parts=[shown(part) for part in parts])


@bp.post("/uploads/<upload_id>/complete")
@login_required
def complete_upload(upload_id: str) -> ResponseReturnValue:
    """Verify the stored object and record the file."""
    result = completion.complete_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id,
        data=_json_body(),
    )
    if result.subtitle is not None:
        # A subtitle upload: what was attached, and its movie with its subtitle list.
        movie = shown(_public(result.file))
        attached = next(
            entry for entry in movie["media"]["subtitles"] if entry.get("id") == result.subtitle.id
        )
        status = 200 if result.duplicate else 201
        return jsonify(duplicate=result.duplicate, subtitle=attached, file=movie), status
    if result.duplicate:
        return jsonify(duplicate=True, file=shown(_public(result.file))), 200
    # The file's probe job was recorded with it: the worker picks it up now, while this
    # answer goes out (it never waits for the probe).
    wake_probe_worker()
    return jsonify(file=shown(_public(result.file))), 201


@bp.delete("/uploads/<upload_id>")
@login_required
def cancel_upload(upload_id: str) -> ResponseReturnValue:
    """Abort an upload and forget it."""
    uploads.cancel_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id
    )
    return "", 204


@bp.get("/files")
@login_required
def list_files() -> ResponseReturnValue:
    """Search, sort and page through the user's files."""
    page = library.list_files(
        session=db.session(),
        owner_id=_owner(),
        query=request.args.get("q", ""),
        sort=request.args.get("sort", ""),
        page=_int_arg("page", 1),
        page_size=settings().page_size,
    )
    return jsonify(shown(library.public_page(page, root=request.script_root)))


@bp.get("/files/<int:file_id>")
@login_required
def get_file(file_id: int) -> ResponseReturnValue:
    """Show one file."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return jsonify(file=shown(_public(stored)))


@bp.patch("/files/<int:file_id>")
@login_required
def update_file(file_id: int) -> ResponseReturnValue:
    """Change a file's name, title or year."""
    stored = library.update_file(
        session=db.session(), owner_id=_owner(), file_id=file_id, data=_json_body()
    )
    return jsonify(file=shown(_public(stored)))


@bp.post("/files/<int:file_id>/poster")
@login_required
def set_poster(file_id: int) -> ResponseReturnValue:
    """Make the poster from the frame `at` seconds in (replacing the old one)."""
    stored = probing.pick_poster_frame(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id,
        data=_json_body(), timeout=settings().probe_timeout,
    )
    return jsonify(file=shown(_public(stored)))


@bp.post("/files/<int:file_id>/subtitles")
@login_required
def create_subtitle_upload(file_id: int) -> ResponseReturnValue:
    """Start the upload of a subtitle file for a movie (completed like any upload)."""
    storage = get_storage()
    upload, created = subtitles.start_upload(
        session=db.session(), storage=storage, settings=_upload_settings(), owner_id=_owner(),
        file_id=file_id, data=_json_body(),
    )
    body = uploads.describe(upload, storage=storage, settings=_upload_settings())
    return jsonify(upload=shown(body)), 201 if created else 200


@bp.delete("/files/<int:file_id>/subtitles/<int:subtitle_id>")
@login_required
def delete_subtitle(file_id: int, subtitle_id: int) -> ResponseReturnValue:
    """Detach a subtitle from a movie and remove its objects."""
    subtitles.remove(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id,
        subtitle_id=subtitle_id,
    )
    return "", 204


@bp.delete("/files/<int:file_id>")
@login_required
def delete_file(file_id: int) -> ResponseReturnValue:
    """Delete a file and its object."""
    library.delete_file(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id
    )
    return "", 204
