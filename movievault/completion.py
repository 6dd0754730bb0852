"""Completing an upload: check what the store holds against the declaration, then record.

A mismatch (size, parts, ETags, hash) discards the upload and records nothing; a store
that fails keeps it, so the client can call `complete` again. A recorded file comes with
its title and year from its name, and a probe job in the same transaction: the probe
itself runs later, in the background (see probing.py), never while `complete` waits.
A subtitle upload (see subtitles.py) is verified the same way, then attached to its movie.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from movievault import claims, jobs, library, locking, subtitles, uploads, validation
from movievault.errors import (
    Conflict,
    InvalidInput,
    NoSuchUpload,
    NotFound,
    StorageRejected,
    SubtitleInvalid,
    UploadMismatch,
)
from movievault.media.names import parse_title
from movievault.models import PendingUpload, StoredFile, Subtitle
from movievault.storage import Storage, StoredPart

COMPLETION_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class CompleteResult:
    """The recorded file, and whether it already existed (a racing or repeated upload).

    For a subtitle upload, `subtitle` is what was attached and `file` its movie.
    """

    file: StoredFile
    duplicate: bool
    subtitle: Subtitle | None = None


def _file_from_upload(*, session: Session, owner_id: int, upload_id: str) -> StoredFile | None:
    """Return the file an upload already became, if it did."""
    return session.exec(
        select(StoredFile).where(
            StoredFile.owner_id == owner_id, StoredFile.upload_id == upload_id
        )
    ).first()


def _already_recorded(
    *, session: Session, owner_id: int, upload_id: str
) -> CompleteResult | None:
    """What the upload became, as a repeated complete answers it: the movie, or the subtitle
    and its movie; None if it became neither."""
    done = _file_from_upload(session=session, owner_id=owner_id, upload_id=upload_id)
    if done is not None:
        return CompleteResult(file=done, duplicate=True)
    attached = subtitles.attached_by(session=session, owner_id=owner_id, upload_id=upload_id)
    if attached is None:
        return None
    movie = library.get_owned_file(session=session, owner_id=owner_id, file_id=attached.file_id)
    return CompleteResult(file=movie, duplicate=True, subtitle=attached)


def _declared_parts(
    upload: PendingUpload, data: dict[str, Any]
) -> list[tuple[int, str]] | None:
    """Parse `parts` into sorted (number, etag) pairs; raise 400 for malformed input.

    None when a multipart upload is completed without a list: then the parts the store
    holds are used, each still checked for its size. (The list only echoes the ETags the
    store answered, and grows with the file: 56 bytes per part.)
    """
    if upload.method != "multipart":
        return []
    parts = data.get("parts")
    if parts is None:
        return None
    if not isinstance(parts, list):
        raise InvalidInput("parts must be a list of {part_number, etag} objects.")
    pairs: dict[int, str] = {}
    for part in parts:
        part = validation.require_object(part, "each entry of parts")
        number = validation.positive_int(
            part.get("part_number"), name="part_number", maximum=uploads.part_count(upload)
        )
        etag = part.get("etag")
        if etag is None:
            etag = ""  # declared without its ETag: a mismatch, refused in _verify_parts
        if not isinstance(etag, str) or len(etag) > 256:
            raise InvalidInput("Each part's etag must be the string the store returned.")
        pairs[number] = etag
    return sorted(pairs.items())


def _verify_parts(
    upload: PendingUpload, declared: list[tuple[int, str]], stored: list[StoredPart]
) -> None:
    """Raise UploadMismatch unless every part is present, with its ETag and its size."""
    count = uploads.part_count(upload)
    numbers = [n for n, _ in declared]
    if numbers != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(numbers))
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        raise UploadMismatch(
            f"Completing needs all {count} parts" + (f"; missing: {shown}." if missing else ".")
        )
    held = {part.part_number: part for part in stored}
    for number, etag in declared:
        if not etag.strip('"'):
            raise UploadMismatch(
                f"Part {number} was declared without its ETag. Browsers can read ETags only "
                "when the bucket's CORS rules expose them (movievault setup-bucket does)."
            )
        part = held.get(number)
        if part is None:
            raise UploadMismatch(f"Part {number} was never uploaded.")
        if part.etag.strip('"') != etag.strip('"'):
            raise UploadMismatch(f"Part {number}'s ETag does not match what the store holds.")
        expected = uploads.expected_part_size(upload, number)
        if part.size != expected:
            raise UploadMismatch(
                f"Part {number} holds {part.size} bytes; {expected} were expected."
            )


def _wait_for_other_completion(
    *, session: Session, owner_id: int, upload_id: str, sha256: str
) -> StoredFile | None:
    """Wait while another request completes this upload; return its file, or None to retry."""
    deadline = time.monotonic() + COMPLETION_WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(0.2)
        session.expire_all()
        done = _file_from_upload(session=session, owner_id=owner_id, upload_id=upload_id)
        if done is not None:
            return done
        upload = session.get(PendingUpload, upload_id)
        if upload is None:
            # It ended as a duplicate of a file recorded through another upload.
            done = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
            if done is not None:
                return done
            raise UploadMismatch(
                "The upload was cancelled, or failed while it was being completed; start again."
            )
        if upload.completing_since is None:
            return None
    raise Conflict("This upload is still being completed by another request; try again.")


def complete_upload(
    *, session: Session, storage: Storage, owner_id: int, upload_id: str, data: Any
) -> CompleteResult:
    """Verify what the store holds against the declaration, then record the file."""
    data = validation.require_object(data)
    while True:
        try:
            upload = uploads.get_owned_upload(
                session=session, owner_id=owner_id, upload_id=upload_id
            )
        except NotFound:
            # A second tab or a retried request: the upload already became a file.
            recorded = _already_recorded(
                session=session, owner_id=owner_id, upload_id=upload_id
            )
            if recorded is not None:
                return recorded
            raise
        declared = _declared_parts(upload, data)
        # Uploads started with a fingerprint learn their hash only now.
        sha256 = upload.sha256 or validation.sha256_hex(data.get("sha256"))
        held = claims.claim(session=session, upload_id=upload.id)
        if held is not None:
            break
        done = _wait_for_other_completion(
            session=session, owner_id=owner_id, upload_id=upload_id, sha256=sha256
        )
        if done is not None:
            return CompleteResult(file=done, duplicate=True)

    try:
        return _complete_claimed(
            session=session, storage=storage, upload=upload, claim=held, declared=declared,
            sha256=sha256,
        )
    except claims.ClaimLost:
        # This request's claim ran out and another took the upload over: what that one made
        # of it, or 409 while it is still at work.
        session.rollback()
        recorded = _already_recorded(session=session, owner_id=owner_id, upload_id=upload_id)
        if recorded is not None:
            return recorded
        raise
    except (UploadMismatch, SubtitleInvalid):
        raise  # discarded: there is no upload left to release
    except BaseException:
        # The store was down or refused one call: keep the upload so the client can retry.
        # (By its id: after a rollback, the row may be gone with its movie.)
        claims.release(session=session, claim=held)
        raise


def _complete_claimed(
    *,
    session: Session,
    storage: Storage,
    upload: PendingUpload,
    claim: claims.Claim,
    declared: list[tuple[int, str]] | None,
    sha256: str,
) -> CompleteResult:
    """Finish an upload this request holds the claim on."""
    if upload.sha256 is None:
        existing = library.find_by_sha256(
            session=session, owner_id=upload.owner_id, sha256=sha256
        )
        if existing is not None:
            # Hashing while uploading found a file the user already has: keep one.
            claims.discard(session=session, storage=storage, upload=upload, claim=claim)
            return CompleteResult(file=existing, duplicate=True)
        # End the look-up's transaction: the store may take minutes to join the parts, and
        # PostgreSQL may end a session left idle in a transaction that long.
        session.commit()
    try:
        with claims.kept(session=session, claim=claim):
            _check_stored(storage=storage, upload=upload, declared=declared, sha256=sha256)
        return _record(session=session, storage=storage, upload=upload, claim=claim,
                       sha256=sha256)
    except (UploadMismatch, SubtitleInvalid):
        # The client's declaration was wrong, or a subtitle holds no cues: remove what it
        # left behind, record nothing.
        claims.discard(session=session, storage=storage, upload=upload, claim=claim)
        raise


def _check_stored(
    *, storage: Storage, upload: PendingUpload, declared: list[tuple[int, str]] | None,
    sha256: str,
) -> None:
    """Join a multipart upload's parts, then check the object against the declaration."""
    if upload.method == "multipart":
        _join_parts(storage=storage, upload=upload, declared=declared)
    size = storage.object_size(upload.key)
    if size is None:
        raise UploadMismatch("No object was uploaded for this upload.")
    if size != upload.size:
        raise UploadMismatch(f"The stored object has {size} bytes; {upload.size} were declared.")
    actual = storage.object_sha256(upload.key)
    if actual is not None and actual != sha256:
        raise UploadMismatch("The stored bytes' SHA-256 differs from the declared sha256.")


def _join_parts(
    *, storage: Storage, upload: PendingUpload, declared: list[tuple[int, str]] | None
) -> None:
    """Check every part against the declaration and have the store join them, unless an
    earlier complete joined them already (then the object is checked as it stands)."""
    assert upload.multipart_id
    try:
        stored = uploads.parts_or_joined(storage=storage, upload=upload)
    except NoSuchUpload as error:
        raise UploadMismatch(
            "The upload's parts are gone, and no object of its size took their place: it was "
            "cancelled."
        ) from error
    if stored is None:
        return
    if declared is None:
        declared = sorted((part.part_number, part.etag) for part in stored)
    _verify_parts(upload, declared, stored)
    try:
        # S3 wants each part's SHA-256 back for uploads created with checksums.
        checksums = {part.part_number: part.checksum for part in stored if part.checksum}
        storage.complete_multipart(
            key=upload.key, upload_id=upload.multipart_id, parts=declared,
            checksums=checksums,
        )
    except NoSuchUpload:
        # Joined since they were listed, by a complete whose claim ran out (S3 accepts a
        # second join; the local store has removed the parts): the object is checked next.
        return
    except StorageRejected as error:
        raise UploadMismatch(f"The store refused the parts: {error.message}") from error


def _record(
    *, session: Session, storage: Storage, upload: PendingUpload, claim: claims.Claim,
    sha256: str,
) -> CompleteResult:
    """Record the verified upload: attach the subtitle, or add the movie to the catalogue."""
    claims.confirm(session=session, claim=claim)  # a whole lease ahead of what follows
    if upload.subtitle_for is not None:
        subtitle = subtitles.attach(
            session=session, storage=storage, upload=upload, claim=claim
        )
        movie = library.get_owned_file(
            session=session, owner_id=upload.owner_id, file_id=subtitle.file_id
        )
        return CompleteResult(file=movie, duplicate=False, subtitle=subtitle)

    title, year = parse_title(upload.name)
    stored_file = StoredFile(
        owner_id=upload.owner_id,
        name=upload.name,
        size=upload.size,
        sha256=sha256,
        fingerprint=upload.fingerprint,
        content_type=upload.content_type,
        key=upload.key,
        upload_id=upload.id,
        title=title,
        year=year,
    )
    # A failed insert expires `upload`, whose row may be gone by then: its values, kept.
    owner_id, key = upload.owner_id, upload.key
    # Not while a create of this owner looks for the file and then plans another upload.
    locking.lock(session, locking.owner_scope(owner_id))
    session.add(stored_file)
    try:
        session.flush()  # the insert: a clash surfaces here, and the file gets its id
        assert stored_file.id is not None
        jobs.enqueue(session=session, file_id=stored_file.id)
        claims.forget(session=session, claim=claim)
        session.commit()
    except IntegrityError:
        # The user finished the same content through another upload meanwhile.
        session.rollback()
        existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
        if existing is None:
            raise
        claims.forget(session=session, claim=claim)
        session.commit()
        if existing.key != key:
            storage.delete(key)  # after: a delete that fails leaves an orphan for gc
        return CompleteResult(file=existing, duplicate=True)
    return CompleteResult(file=stored_file, duplicate=False)
