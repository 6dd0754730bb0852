"""The JSON API: thin views over the upload protocol and the catalogue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from flask_login import current_user, login_required

from movievault import db, library, uploads
from movievault.backends import get_storage
from movievault.errors import InvalidInput

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


def settings() -> uploads.UploadSettings:
    """Read the upload protocol's settings from the app config."""
    config = current_app.config
    return uploads.UploadSettings(
        url_expires=config["URL_EXPIRES"],
        upload_ttl=config["UPLOAD_TTL"],
        multipart_threshold=config["MULTIPART_THRESHOLD"],
        part_size=config["PART_SIZE"],
        max_file_size=config["MAX_FILE_SIZE"],
        form_upload_ttl=config["FORM_UPLOAD_TTL"],
        max_pending_uploads=config["MAX_PENDING_UPLOADS"],
    )


def _owner() -> int:
    """The signed-in user's id."""
    return int(current_user.id)


def _int_arg(name: str, default: int) -> int:
    """Read a positive integer query argument, falling back to `default`."""
    try:
        return max(1, int(request.args.get(name, default)))
    except ValueError:
        return default


@bp.post("/files/check")
@login_required
def check_files() -> Response:
    """Tell which of the listed hashes the user already has."""
    data = _json_body()
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object with a files list.")
    results = library.check_duplicates(
        session=db.session(), owner_id=_owner(), items=data.get("files")
    )
    return jsonify(results=results)


@bp.post("/uploads")
@login_required
def create_upload() -> tuple[Response, int]:
    """Start an upload, resume the pending one, or report a duplicate."""
    storage = get_storage()
    result = uploads.start_upload(
        session=db.session(), storage=storage, settings=settings(), owner_id=_owner(),
        data=_json_body(),
    )
    if result.status == "duplicate":
        assert result.file is not None
        return jsonify(duplicate=True, file=library.public(result.file)), 200
    assert result.upload is not None
    body = uploads.describe(result.upload, storage=storage, settings=settings())
    return jsonify(upload=body), 201 if result.status == "created" else 200


@bp.get("/uploads/<upload_id>")
@login_required
def get_upload(upload_id: str) -> Response:
    """Show an upload and the parts the store already holds (to resume)."""
    storage = get_storage()
    upload = uploads.get_owned_upload(session=db.session(), owner_id=_owner(), upload_id=upload_id)
    parts = uploads.uploaded_parts(storage=storage, upload=upload)
    return jsonify(
        upload=uploads.describe(upload, storage=storage, settings=settings()),
        uploaded_parts=[
            {"part_number": p.part_number, "etag": p.etag, "size": p.size} for p in parts
        ],
    )


@bp.post("/uploads/<upload_id>/parts")
@login_required
def sign_parts(upload_id: str) -> Response:
    """Sign PUT URLs for up to 100 parts."""
    parts = uploads.part_urls(
        session=db.session(), storage=get_storage(), settings=settings(), owner_id=_owner(),
        upload_id=upload_id, data=_json_body(),
    )
    return jsonify(parts=parts)


@bp.post("/uploads/<upload_id>/complete")
@login_required
def complete_upload(upload_id: str) -> tuple[Response, int]:
    """Verify the stored object and record the file."""
    result = uploads.complete_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id,
        data=_json_body(),
    )
    if result.duplicate:
        return jsonify(duplicate=True, file=library.public(result.file)), 200
    return jsonify(file=library.public(result.file)), 201


@bp.delete("/uploads/<upload_id>")
@login_required
def cancel_upload(upload_id: str) -> tuple[str, int]:
    """Abort an upload and forget it."""
    uploads.cancel_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id
    )
    return "", 204


@bp.get("/files")
@login_required
def list_files() -> Response:
    """Search, sort and page through the user's files."""
    page = library.list_files(
        session=db.session(),
        owner_id=_owner(),
        query=request.args.get("q", ""),
        sort=request.args.get("sort", ""),
        page=_int_arg("page", 1),
        page_size=current_app.config["PAGE_SIZE"],
    )
    return jsonify(
        files=[library.public(f) for f in page.files],
        total=page.total,
        total_size=page.total_size,
        page=page.page,
        pages=page.pages,
    )


@bp.get("/files/<int:file_id>")
@login_required
def get_file(file_id: int) -> Response:
    """Show one file."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return jsonify(file=library.public(stored))


@bp.patch("/files/<int:file_id>")
@login_required
def rename_file(file_id: int) -> Response:
    """Rename a file."""
    data = _json_body()
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object with a name.")
    stored = library.rename_file(
        session=db.session(), owner_id=_owner(), file_id=file_id, name=data.get("name")
    )
    return jsonify(file=library.public(stored))


@bp.delete("/files/<int:file_id>")
@login_required
def delete_file(file_id: int) -> tuple[str, int]:
    """Delete a file and its object."""
    library.delete_file(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id
    )
    return "", 204
