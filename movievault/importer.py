"""`movievault import`: files already on the server enter the library by the upload protocol.

Each movie is an upload like any other: `uploads.start_upload` plans it (duplicates and
quotas as for the page), the store receives the bytes from the file itself
(`Storage.import_file`: a copy, a hard link or a multipart transfer), and
`completion.complete_upload` checks the size and records the file, its title and its probe
job. Subtitle files beside a movie go through `subtitles.start_upload` the same way. When a
file fails or the import is interrupted, its upload is discarded: object and row.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from movievault import claims, completion, library, subtitles, uploads
from movievault.collection import Candidate
from movievault.completion import CompleteResult
from movievault.errors import Conflict, MovieVaultError
from movievault.models import PendingUpload, StoredFile
from movievault.storage import Storage
from movievault.uploads import UploadSettings


@dataclass
class Imported:
    """What became of one movie, and of the subtitle files beside it."""

    file: StoredFile
    duplicate: bool
    subtitles: list[str] = field(default_factory=list)
    subtitle_failures: list[tuple[str, str]] = field(default_factory=list)


class InProgress(Conflict):
    """The same content is being uploaded in parts from a browser or `movievault upload`."""


def _declaration(item: Candidate) -> dict[str, object]:
    """What `POST /api/uploads` would be sent for the file."""
    return {"name": item.name, "size": item.size, "sha256": item.sha256,
            "content_type": item.content_type}


def abandon(*, session: Session, storage: Storage, upload_id: str) -> None:
    """Discard an upload this import began (object and row), unless it became a file."""
    session.rollback()
    # A claim of its complete was released by it; one another request holds stays (a
    # browser sending the same file): then the upload is theirs to finish.
    row = session.get(PendingUpload, upload_id)
    if row is not None:
        claims.claim_and_discard(session=session, storage=storage, upload=row)


def _store_and_complete(
    *, session: Session, storage: Storage, owner_id: int, upload: PendingUpload,
    item: Candidate, link: bool,
) -> CompleteResult:
    """Have the store take the file, then record it as `complete` does; all or nothing."""
    assert item.sha256 is not None
    try:
        storage.import_file(
            key=upload.key, path=str(item.path), size=item.size,
            content_type=upload.content_type, sha256=item.sha256, link=link,
        )
        return completion.complete_upload(
            session=session, storage=storage, owner_id=owner_id, upload_id=upload.id, data={}
        )
    except BaseException:
        # Ctrl-C too: the caller keeps further interrupts away while this runs.
        abandon(session=session, storage=storage, upload_id=upload.id)
        raise


def import_movie(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int,
    item: Candidate, link: bool = False,
) -> Imported:
    """Bring one hashed movie into the owner's library (or find it there already), with the
    subtitle files beside it."""
    assert item.sha256 is not None
    started = uploads.start_upload(
        session=session, storage=storage, settings=settings, owner_id=owner_id,
        data=_declaration(item), whole=True,
    )
    if started.status == "duplicate":
        assert started.file is not None
        result = Imported(file=started.file, duplicate=True)
    else:
        upload = started.upload
        assert upload is not None
        if upload.method == "multipart":
            raise InProgress(
                "the same file is being uploaded in parts (from a browser or `movievault "
                "upload`); let it finish or cancel it, then import again"
            )
        done = _store_and_complete(session=session, storage=storage, owner_id=owner_id,
                                   upload=upload, item=item, link=link)
        result = Imported(file=done.file, duplicate=done.duplicate)
    for subtitle in item.subtitles:
        try:
            if attach_subtitle(session=session, storage=storage, settings=settings,
                               owner_id=owner_id, movie=result.file, item=subtitle):
                result.subtitles.append(subtitle.name)
        except MovieVaultError as error:
            result.subtitle_failures.append((str(subtitle.path), error.message))
    return result


def attach_subtitle(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int,
    movie: StoredFile, item: Candidate,
) -> bool:
    """Attach a subtitle file to the movie; False when the movie has it from this file."""
    assert movie.id is not None
    started = subtitles.start_upload(
        session=session, storage=storage, settings=settings, owner_id=owner_id,
        file_id=movie.id, data=_declaration(item),
    )
    if started.attached is not None:
        return False
    assert started.upload is not None
    # A subtitle is small: a copy, never a link (its WebVTT is made from the copy).
    _store_and_complete(session=session, storage=storage, owner_id=owner_id,
                        upload=started.upload, item=item, link=False)
    return True


def owned(*, session: Session, owner_id: int, sha256: str) -> StoredFile | None:
    """The owner's file of this content, if any (what `--dry-run` asks)."""
    return library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
