"""The JSON API: thin views over the upload protocol and the catalogue."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from movievault import completion, db, library, openapi, probing, subtitles, uploads
from movievault.api_schema import (
    ATTRIBUTE,
    CheckAnswer,
    CheckRequest,
    CompleteRequest,
    DuplicateAnswer,
    FileAnswer,
    FileChange,
    Operation,
    PartsAnswer,
    PartsRequest,
    PosterRequest,
    Shape,
    SubtitleAnswer,
    SubtitleRequest,
    UploadAnswer,
    UploadRequest,
    UploadStatusAnswer,
    answer,
    operation,
    parse,
)
from movievault.backends import get_storage
from movievault.background import wake_probe_worker
from movievault.config import settings
from movievault.errors import InvalidInput
from movievault.models import (
    FilePagePublic,
    FilePublic,
    StoredFile,
    StoredPartPublic,
)

bp = Blueprint("api", __name__, url_prefix="/api")

# Control-plane requests are small; the largest is a 1,000-file duplicate check.
MAX_JSON_BYTES = 1024 * 1024


@bp.before_request
def _limit_body() -> None:
    """Refuse oversized JSON bodies before reading them."""
    request.max_content_length = MAX_JSON_BYTES


def _json_body() -> Any:
    """The request body as JSON, or a 400 that says what is wrong."""
    try:
        data = request.get_json(silent=True)
    except RecursionError:
        # `silent` only covers ValueError; a few thousand nested brackets exhaust the stack.
        raise InvalidInput("The request body is nested too deeply.") from None
    if data is None:
        raise InvalidInput("The request body must be valid JSON (Content-Type: application/json).")
    return data


def _body() -> dict[str, Any]:
    """The request body, checked against the shape this view declares (api_schema)."""
    spec: Operation = getattr(current_app.view_functions[request.endpoint or ""], ATTRIBUTE)
    shape: type[Shape] | None = spec.body
    assert shape is not None, f"{request.endpoint} declares no request body"
    return parse(shape, _json_body()).fields()


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


@bp.get("/openapi.json")
def openapi_document() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API, made from the shapes the views use."""
    return jsonify(openapi.document(current_app, root=request.script_root))


@bp.get("/docs")
def docs() -> ResponseReturnValue:
    """The API's reference, rendered from its OpenAPI document."""
    return render_template("api_docs.html")


BODY = (400, 413)  # malformed body, or one past MAX_JSON_BYTES
WRITES = (503,)  # the store or the catalogue failing


@bp.post("/files/check")
@login_required
@operation(Operation(
    summary="Which of these files are in the library already",
    body=CheckRequest, answers={200: CheckAnswer}, errors=(*BODY, *WRITES),
))
def check_files() -> ResponseReturnValue:
    """Tell which of the listed hashes the user already has."""
    results = library.check_duplicates(
        session=db.session(), owner_id=_owner(), items=_body()["files"]
    )
    return jsonify(answer(CheckAnswer(results=results)))


@bp.post("/uploads")
@login_required
@operation(Operation(
    summary="Start an upload (or resume the pending one, or find the duplicate)",
    body=UploadRequest, tags=("uploads",),
    answers={201: UploadAnswer, 200: UploadAnswer | DuplicateAnswer},
    errors=(*BODY, 409, 413, *WRITES, 507),
))
def create_upload() -> ResponseReturnValue:
    """Start an upload, resume the pending one, or report a duplicate."""
    storage = get_storage()
    result = uploads.start_upload(
        session=db.session(), storage=storage, settings=_upload_settings(), owner_id=_owner(),
        data=_body(),
    )
    if result.status == "duplicate":
        assert result.file is not None
        return jsonify(answer(DuplicateAnswer(duplicate=True, file=_public(result.file)))), 200
    assert result.upload is not None
    body = uploads.describe(result.upload, storage=storage, settings=_upload_settings())
    return jsonify(answer(UploadAnswer(upload=body))), 201 if result.status == "created" else 200


@bp.get("/uploads/<upload_id>")
@login_required
@operation(Operation(
    summary="An upload, and the parts the store holds (to resume)", tags=("uploads",),
    answers={200: UploadStatusAnswer}, errors=(404, *WRITES),
))
def get_upload(upload_id: str) -> ResponseReturnValue:
    """Show an upload and the parts the store already holds (to resume)."""
    storage = get_storage()
    upload = uploads.get_owned_upload(session=db.session(), owner_id=_owner(), upload_id=upload_id)
    parts = uploads.uploaded_parts(storage=storage, upload=upload)
    return jsonify(answer(UploadStatusAnswer(
        upload=uploads.describe(upload, storage=storage, settings=_upload_settings()),
        uploaded_parts=[
            StoredPartPublic(part_number=p.part_number, etag=p.etag, size=p.size) for p in parts
        ],
    )))


@bp.post("/uploads/<upload_id>/parts")
@login_required
@operation(Operation(
    summary="Signed PUT URLs for up to 100 parts of a multipart upload", tags=("uploads",),
    body=PartsRequest, answers={200: PartsAnswer}, errors=(*BODY, 404, *WRITES),
))
def sign_parts(upload_id: str) -> ResponseReturnValue:
    """Sign PUT URLs for up to 100 parts."""
    parts = uploads.part_urls(
        session=db.session(), storage=get_storage(), settings=_upload_settings(), owner_id=_owner(),
        upload_id=upload_id, data=_body(),
    )
    return jsonify(answer(PartsAnswer(parts=parts)))


@bp.post("/uploads/<upload_id>/complete")
@login_required
@operation(Operation(
    summary="Verify what the store holds and record the file", tags=("uploads",),
    body=CompleteRequest, answers={201: FileAnswer | SubtitleAnswer,
                                   200: DuplicateAnswer | SubtitleAnswer},
    errors=(*BODY, 404, 409, 413, 422, *WRITES),
))
def complete_upload(upload_id: str) -> ResponseReturnValue:
    """Verify the stored object and record the file."""
    result = completion.complete_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id,
        data=_body(),
    )
    if result.subtitle is not None:
        assert result.subtitle.id is not None
        return jsonify(_subtitle_answer(result.file, result.subtitle.id,
                                        duplicate=result.duplicate)), \
            200 if result.duplicate else 201
    if result.duplicate:
        return jsonify(answer(DuplicateAnswer(duplicate=True, file=_public(result.file)))), 200
    # The file's probe job was recorded with it: the worker picks it up now, while this
    # answer goes out (it never waits for the probe).
    wake_probe_worker()
    return jsonify(answer(FileAnswer(file=_public(result.file)))), 201


def _subtitle_answer(movie: StoredFile, subtitle_id: int, *, duplicate: bool) -> dict[str, Any]:
    """A subtitle attached to its movie, and the movie with its subtitle list."""
    shown = _public(movie)
    attached = next(entry for entry in shown.media.subtitles if entry.id == subtitle_id)
    return answer(SubtitleAnswer(duplicate=duplicate, subtitle=attached, file=shown))


@bp.delete("/uploads/<upload_id>")
@login_required
@operation(Operation(
    summary="Abort an upload and forget it", tags=("uploads",),
    answers={204: None}, errors=(400, 404, 409, *WRITES),
))
def cancel_upload(upload_id: str) -> ResponseReturnValue:
    """Abort an upload and forget it."""
    uploads.cancel_upload(
        session=db.session(), storage=get_storage(), owner_id=_owner(), upload_id=upload_id
    )
    return "", 204


@bp.get("/files")
@login_required
@operation(Operation(
    summary="Search, sort and page through the library",
    answers={200: FilePagePublic}, errors=WRITES,
    extra={"parameters": openapi.LIST_PARAMETERS},
))
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
    return jsonify(answer(library.public_page(page, root=request.script_root)))


@bp.get("/files/<int:file_id>")
@login_required
@operation(Operation(
    summary="One file", answers={200: FileAnswer}, errors=(404, *WRITES),
))
def get_file(file_id: int) -> ResponseReturnValue:
    """Show one file."""
    stored = library.get_owned_file(session=db.session(), owner_id=_owner(), file_id=file_id)
    return jsonify(answer(FileAnswer(file=_public(stored))))


@bp.patch("/files/<int:file_id>")
@login_required
@operation(Operation(
    summary="Change a file's name, title or year", body=FileChange,
    answers={200: FileAnswer}, errors=(*BODY, 404, *WRITES),
))
def update_file(file_id: int) -> ResponseReturnValue:
    """Change a file's name, title or year."""
    stored = library.update_file(
        session=db.session(), owner_id=_owner(), file_id=file_id, data=_body()
    )
    return jsonify(answer(FileAnswer(file=_public(stored))))


@bp.post("/files/<int:file_id>/poster")
@login_required
@operation(Operation(
    summary="Make the poster from the frame `at` seconds in", body=PosterRequest,
    answers={200: FileAnswer}, errors=(*BODY, 404, 422, *WRITES),
))
def set_poster(file_id: int) -> ResponseReturnValue:
    """Make the poster from the frame `at` seconds in (replacing the old one)."""
    stored = probing.pick_poster_frame(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id,
        data=_body(), timeout=settings().probe_timeout,
    )
    return jsonify(answer(FileAnswer(file=_public(stored))))


@bp.post("/files/<int:file_id>/subtitles")
@login_required
@operation(Operation(
    summary="Start the upload of a subtitle file for a movie", tags=("subtitles",),
    body=SubtitleRequest, answers={201: UploadAnswer, 200: UploadAnswer | SubtitleAnswer},
    errors=(*BODY, 404, 409, 422, *WRITES, 507),
))
def create_subtitle_upload(file_id: int) -> ResponseReturnValue:
    """Start the upload of a subtitle file for a movie (completed like any upload), or
    find the same file attached already."""
    storage = get_storage()
    started = subtitles.start_upload(
        session=db.session(), storage=storage, settings=_upload_settings(), owner_id=_owner(),
        file_id=file_id, data=_body(),
    )
    if started.attached is not None:
        assert started.attached.id is not None
        return jsonify(_subtitle_answer(started.movie, started.attached.id, duplicate=True)), 200
    assert started.upload is not None
    body = uploads.describe(started.upload, storage=storage, settings=_upload_settings())
    return jsonify(answer(UploadAnswer(upload=body))), 201 if started.created else 200


@bp.delete("/files/<int:file_id>/subtitles/<int:subtitle_id>")
@login_required
@operation(Operation(
    summary="Detach a subtitle and remove its objects", tags=("subtitles",),
    answers={204: None}, errors=(400, 404, *WRITES),
))
def delete_subtitle(file_id: int, subtitle_id: int) -> ResponseReturnValue:
    """Detach a subtitle from a movie and remove its objects."""
    subtitles.remove(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id,
        subtitle_id=subtitle_id,
    )
    return "", 204


@bp.delete("/files/<int:file_id>")
@login_required
@operation(Operation(
    summary="Delete a file and its objects", answers={204: None}, errors=(400, 404, *WRITES),
))
def delete_file(file_id: int) -> ResponseReturnValue:
    """Delete a file and its object."""
    library.delete_file(
        session=db.session(), storage=get_storage(), owner_id=_owner(), file_id=file_id
    )
    return "", 204
