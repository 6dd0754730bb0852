"""Subtitle files attached to a movie: uploaded by the upload protocol, kept as WebVTT.

A subtitle goes up like a movie, straight to the store: `start_upload` plans a pending
upload sent whole (it is small) that names its movie (`PendingUpload.subtitle_for`), and
the usual `complete` verifies it and then calls `attach`, which reads the original back
(a few KB), converts it to WebVTT and stores that beside it. Keys are the server's:
`subtitles/<owner id>/<file id>-<random>` for the original and the same with `-vtt` for
its WebVTT (the local store's keys hold no dots). Both belong to the movie's row, go
with it, and gc knows them.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from movievault import claims, library, quotas, validation
from movievault.errors import (
    Conflict,
    InvalidInput,
    MovieVaultError,
    NoSuchKey,
    NotFound,
    SubtitleTooLarge,
    UploadMismatch,
)
from movievault.locking import begin_write, owner_scope
from movievault.media.subtitle_files import MAX_SIZE, parse_name, subtitle_format, to_webvtt
from movievault.models import MAX_ID, PendingUpload, StoredFile, Subtitle, utcnow
from movievault.storage import Storage
from movievault.uploads import UploadSettings

log = logging.getLogger(__name__)

PREFIX = "subtitles/"
VTT_TYPE = "text/vtt"


def _new_key(*, owner_id: int, file_id: int) -> str:
    """A fresh key for a subtitle's original; its WebVTT takes the same key + `-vtt`."""
    return f"{PREFIX}{owner_id}/{file_id}-{secrets.token_hex(12)}"


@dataclass
class SubtitleStart:
    """What starting a subtitle's upload came to, for the owner's `movie`: an upload to
    send (new or resumed), or the subtitle the movie already has from the same file."""

    movie: StoredFile
    upload: PendingUpload | None = None
    created: bool = False
    attached: Subtitle | None = None


def already_attached(
    *, session: Session, storage: Storage, movie_id: int, name: str, size: int, sha256: str
) -> Subtitle | None:
    """The movie's subtitle uploaded from this very file (same name, size and bytes)."""
    same = session.exec(select(Subtitle).where(
        Subtitle.file_id == movie_id, Subtitle.name == name, Subtitle.source_size == size,
    )).all()
    for subtitle in same:  # rarely more than one; the original is a few KB to read back
        try:
            original = storage.read_range(subtitle.source_key, 0, size)
        except NoSuchKey:
            continue  # its original is lost: uploading the file again is the repair
        if hashlib.sha256(original).hexdigest() == sha256:
            return subtitle
    return None


def start_upload(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int,
    file_id: int, data: Any,
) -> SubtitleStart:
    """Plan the upload of a subtitle file for the owner's movie, resume the pending one of
    the same content for it, or find it attached already (a repeated run of a script).

    Takes what `POST /api/uploads` takes (`name`, `size`, `sha256`, `content_type`); the
    file must be .srt, .vtt, .ass or .ssa and at most MAX_SIZE bytes.
    """
    movie = library.get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    data = validation.require_object(data)
    name = validation.file_name(data.get("name"))
    subtitle_format(name)
    size = data.get("size")
    if isinstance(size, int) and not isinstance(size, bool) and size > MAX_SIZE:
        raise SubtitleTooLarge(
            f"{name} has {size:,} bytes; subtitle files are limited to {MAX_SIZE // 2**20} MiB."
        )
    size = validation.file_size(size, maximum=MAX_SIZE)
    if data.get("sha256") is None:
        raise InvalidInput("sha256 is required for subtitle files.")
    sha256 = validation.sha256_hex(data["sha256"])
    content_type = validation.content_type(data.get("content_type"))
    assert movie.id is not None
    # Before the reachability check: reading an attached original back answers it too.
    attached = already_attached(session=session, storage=storage, movie_id=movie.id,
                                name=name, size=size, sha256=sha256)
    if attached is not None:
        return SubtitleStart(movie=movie, attached=attached)
    storage.ping()

    pending = session.exec(
        select(PendingUpload).where(
            PendingUpload.owner_id == owner_id, PendingUpload.sha256 == sha256
        )
    ).first()
    if pending is not None:
        live = pending.expires_at > utcnow() and pending.size == size
        if live and pending.subtitle_for == movie.id:
            pending.expires_at = utcnow() + timedelta(seconds=settings.ttl(pending.method))
            session.add(pending)
            session.commit()
            return SubtitleStart(movie=movie, upload=pending)
        if live:
            raise Conflict("This file is being uploaded already; try again when it is done.")
        if not claims.claim_and_discard(session=session, storage=storage, upload=pending):
            raise Conflict("An earlier upload of this file is being completed; try again.")
    # Refuse early what the limits will refuse anyway; the check that counts is repeated
    # in the write transaction below.
    quotas.check_room(
        session=session, owner_id=owner_id, size=size, max_pending=settings.max_pending_uploads
    )
    storage.check_capacity(size)
    method = storage.upload_method()  # "post" or "put": a subtitle always goes up whole
    upload = PendingUpload(
        id=secrets.token_urlsafe(16), owner_id=owner_id, sha256=sha256, size=size,
        name=name, content_type=content_type, key=_new_key(owner_id=owner_id, file_id=movie.id),
        method=method, subtitle_for=movie.id,
        expires_at=utcnow() + timedelta(seconds=settings.ttl(method)),
    )
    # The owner's lock, as for a movie's upload: two starts racing for the last pending
    # slot (or the quota's last bytes) would otherwise both pass the check.
    begin_write(session, owner_scope(owner_id))
    quotas.check_room_to_write(
        session=session, owner_id=owner_id, size=size, max_pending=settings.max_pending_uploads
    )
    session.add(upload)
    try:
        session.commit()
    except IntegrityError:
        # The same file was started by another request meanwhile, or the movie deleted.
        session.rollback()
        raise Conflict("This file is being uploaded already; try again when it is done.") from None
    return SubtitleStart(movie=movie, upload=upload, created=True)


def attach(
    *, session: Session, storage: Storage, upload: PendingUpload, claim: claims.Claim
) -> Subtitle:
    """Convert a verified subtitle upload to WebVTT, store it, and record the subtitle.

    The caller (`completion.complete_upload`) holds the upload's `claim` and has checked the
    stored object's size and hash. SubtitleInvalid (not a subtitle file) stores nothing:
    the caller then discards the upload.
    """
    assert upload.subtitle_for is not None
    original = storage.read_range(upload.key, 0, upload.size)
    if len(original) != upload.size:
        raise UploadMismatch(f"The store returned {len(original)} of {upload.size} bytes.")
    # Not every store checks the hash itself; a subtitle is small enough to check here.
    if hashlib.sha256(original).hexdigest() != upload.sha256:
        raise UploadMismatch("The stored bytes' SHA-256 differs from the declared sha256.")
    vtt = to_webvtt(original, name=upload.name).encode("utf-8")
    vtt_key = f"{upload.key}-vtt"
    storage.put(key=vtt_key, stream=io.BytesIO(vtt), size=len(vtt), content_type=VTT_TYPE)
    described = parse_name(upload.name)
    subtitle = Subtitle(
        file_id=upload.subtitle_for, language=described.language, label=described.label,
        name=upload.name, source_key=upload.key, source_size=upload.size, vtt_key=vtt_key,
        vtt_size=len(vtt), upload_id=upload.id,
    )
    gone = NotFound("The movie this subtitle was for has been deleted.")
    # The movie may have been deleted while its subtitle was read and converted (and a
    # catalogue edited by hand may have given its id to another user's file): it must still
    # be the uploader's, checked in the transaction that attaches.
    begin_write(session, owner_scope(upload.owner_id))
    if not _owns(session, owner_id=upload.owner_id, file_id=upload.subtitle_for):
        session.rollback()
        _discard_objects(storage=storage, keys=[vtt_key])
        raise gone
    session.add(subtitle)
    try:
        claims.forget(session=session, claim=claim)
        session.commit()
    except IntegrityError:
        # The movie was deleted meanwhile (on PostgreSQL, whose writers run side by side).
        session.rollback()
        _discard_objects(storage=storage, keys=[vtt_key])
        raise gone from None
    return subtitle


def _owns(session: Session, *, owner_id: int, file_id: int) -> bool:
    """Whether the file `file_id` exists and is `owner_id`'s."""
    found = session.exec(
        select(StoredFile.id).where(StoredFile.id == file_id, StoredFile.owner_id == owner_id)
    ).first()
    return found is not None


def attached_by(*, session: Session, owner_id: int, upload_id: str) -> Subtitle | None:
    """The subtitle an upload already became, if it did (a repeated `complete`)."""
    return session.exec(
        select(Subtitle).join(StoredFile, col(StoredFile.id) == col(Subtitle.file_id)).where(
            StoredFile.owner_id == owner_id, Subtitle.upload_id == upload_id
        )
    ).first()


def get_owned_subtitle(
    *, session: Session, owner_id: int, file_id: int, subtitle_id: int
) -> Subtitle:
    """The subtitle of the owner's movie, or NotFound (also for other users' movies)."""
    library.get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    subtitle = session.get(Subtitle, subtitle_id) if 0 < subtitle_id <= MAX_ID else None
    if subtitle is None or subtitle.file_id != file_id:
        raise NotFound("No such subtitle.")
    return subtitle


def read_vtt(*, storage: Storage, subtitle: Subtitle) -> bytes:
    """The subtitle's WebVTT (small: the app serves it itself, see pages.subtitle_track)."""
    return storage.read_range(subtitle.vtt_key, 0, subtitle.vtt_size)


def _discard_objects(*, storage: Storage, keys: list[str]) -> None:
    """Remove objects no row names any more; a failure leaves them to gc, logged."""
    for key in keys:
        try:
            storage.delete(key)
        except MovieVaultError as error:
            log.warning("could not remove %s (gc will): %s", key, error.message)


def remove(*, session: Session, storage: Storage, owner_id: int, file_id: int,
           subtitle_id: int) -> None:
    """Detach a subtitle from the owner's movie, and remove its objects."""
    subtitle = get_owned_subtitle(
        session=session, owner_id=owner_id, file_id=file_id, subtitle_id=subtitle_id
    )
    keys = [subtitle.source_key, subtitle.vtt_key]
    session.delete(subtitle)
    session.commit()
    _discard_objects(storage=storage, keys=keys)
