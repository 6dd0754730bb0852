"""The upload protocol: plan, sign, verify and record direct-to-storage uploads.

The app never sees a movie byte. It hands the browser signed instructions, and at the end
checks what the store holds before anything enters the catalogue.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, delete, or_, select

from movievault import library, quotas, validation
from movievault.errors import (
    Conflict,
    InvalidInput,
    MovieVaultError,
    NotFound,
    QuotaExceeded,
    StorageRejected,
    UploadMismatch,
)
from movievault.locking import begin_write
from movievault.models import (
    PartUrlPublic,
    PendingUpload,
    PostFormPublic,
    StoredFile,
    UploadPublic,
    isoformat,
    utcnow,
)
from movievault.storage import Storage, StoredPart, part_size_for

MAX_PART_URLS = 100
#: Every object of a movie lives under this prefix; `collect_garbage` looks nowhere else.
OBJECT_PREFIX = "movies/"
# A claim (complete or discard under way) that has not ended in this long is taken to
# have died with its worker.
COMPLETION_LEASE = timedelta(minutes=10)
#: Objects no catalogue row refers to are removed by `collect_garbage` once this old.
ORPHAN_GRACE = timedelta(hours=24)
COMPLETION_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class UploadSettings:
    """The knobs of the protocol (`Settings.uploads` makes them from the app's settings)."""

    url_expires: int
    upload_ttl: int
    multipart_threshold: int
    part_size: int
    max_file_size: int
    #: A form upload is sent whole or not at all, so there is nothing to resume for days:
    #: its row (and any object a client sent without completing) goes much sooner.
    form_upload_ttl: int
    max_pending_uploads: int

    def ttl(self, method: str) -> int:
        """Seconds an unfinished upload of this kind (form or multipart) is kept."""
        return min(self.form_upload_ttl, self.upload_ttl) if method == "post" else self.upload_ttl


@dataclass(frozen=True)
class StartResult:
    """What `start_upload` decided: a new upload, a resumed one, or a duplicate file."""

    status: str  # "created", "resumed" or "duplicate"
    upload: PendingUpload | None = None
    file: StoredFile | None = None


@dataclass(frozen=True)
class CompleteResult:
    """The recorded file, and whether it already existed (a racing or repeated upload)."""

    file: StoredFile
    duplicate: bool


def part_count(upload: PendingUpload) -> int:
    """Number of parts a multipart upload is split into."""
    assert upload.part_size
    return math.ceil(upload.size / upload.part_size)


def expected_part_size(upload: PendingUpload, part_number: int) -> int:
    """Size of part `part_number`: full parts, then the remainder."""
    assert upload.part_size
    if part_number < part_count(upload):
        return upload.part_size
    return upload.size - upload.part_size * (part_count(upload) - 1)


def describe(
    upload: PendingUpload, *, storage: Storage, settings: UploadSettings
) -> UploadPublic:
    """Return the upload as the API shows it, with fresh form fields for POST uploads."""
    shown = UploadPublic(
        id=upload.id,
        method=upload.method,
        name=upload.name,
        size=upload.size,
        sha256=upload.sha256,
        fingerprint=upload.fingerprint,
        content_type=upload.content_type,
        created_at=isoformat(upload.created_at),
        expires_at=isoformat(upload.expires_at),
    )
    if upload.method == "post":
        form = storage.post_form(
            key=upload.key,
            size=upload.size,
            content_type=upload.content_type,
            expires=settings.url_expires,
        )
        shown.post = PostFormPublic(url=form.url, fields=form.fields)
    else:
        shown.part_size = upload.part_size
        shown.part_count = part_count(upload)
    return shown


def get_owned_upload(*, session: Session, owner_id: int, upload_id: str) -> PendingUpload:
    """Return the owner's pending upload, or NotFound (also for other users' uploads)."""
    upload = session.get(PendingUpload, upload_id) if isinstance(upload_id, str) else None
    if upload is None or upload.owner_id != owner_id:
        raise NotFound("No such upload. It may have finished, been cancelled or expired.")
    return upload


def _find_pending(
    *, session: Session, owner_id: int, sha256: str | None, size: int, fingerprint: str | None
) -> PendingUpload | None:
    """Return the owner's pending upload of that content (by hash, or by fingerprint)."""
    query = select(PendingUpload).where(PendingUpload.owner_id == owner_id)
    if sha256 is not None:
        query = query.where(PendingUpload.sha256 == sha256)
    else:
        query = query.where(
            col(PendingUpload.sha256).is_(None),
            PendingUpload.fingerprint == fingerprint,
            PendingUpload.size == size,
        )
    return session.exec(query).first()


def _extend(upload: PendingUpload, *, session: Session, settings: UploadSettings) -> bool:
    """Keep an upload the client is still working on from expiring under it.

    Returns False when the upload is gone: another request (maybe in another worker)
    completed or cancelled it since it was read. A plain UPDATE says so by its row count,
    where the ORM would raise StaleDataError.
    """
    expires = utcnow() + timedelta(seconds=settings.ttl(upload.method))
    result = session.exec(
        update(PendingUpload).where(col(PendingUpload.id) == upload.id).values(expires_at=expires)
    )
    session.commit()
    if result.rowcount != 1:
        return False
    set_committed_value(upload, "expires_at", expires)
    return True


#: How often create starts over when the upload it lost a race to vanished meanwhile.
CREATE_ATTEMPTS = 3


class _RaceLost(Exception):
    """Another create of this content won the insert, then was cancelled: start over."""


def start_upload(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int, data: Any
) -> StartResult:
    """Plan an upload, or resume the pending one for this content, or report a duplicate.

    A create that loses the insert to another create of the same content resumes that
    one; if that one is cancelled in between, it starts over (a few times) rather than
    failing a request that did nothing wrong.
    """
    for _ in range(CREATE_ATTEMPTS):
        try:
            return _start_upload_once(
                session=session, storage=storage, settings=settings, owner_id=owner_id,
                data=data,
            )
        except _RaceLost:
            continue
    raise Conflict("Another upload of this file keeps changing; try again.")


def _start_upload_once(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int, data: Any
) -> StartResult:
    """One attempt of `start_upload`.

    With a `sha256` the client has hashed the whole file. With only a `fingerprint` it
    wants to hash while uploading; that is allowed only when no file of the owner's could
    be the same (see `library.could_be_duplicate`), so duplicates are still caught first.
    """
    data = validation.require_object(data)
    size = validation.file_size(data.get("size"), maximum=settings.max_file_size)
    fingerprint = validation.optional_digest(data.get("fingerprint"), "fingerprint")
    if data.get("sha256") is None and fingerprint is None:
        raise InvalidInput("sha256 is required (or a fingerprint, to hash while uploading).")
    sha256 = validation.sha256_hex(data["sha256"]) if data.get("sha256") is not None else None
    name = validation.file_name(data.get("name"))
    content_type = validation.content_type(data.get("content_type"))
    method = "post" if size <= settings.multipart_threshold else "multipart"

    if sha256 is not None:
        existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
        if existing is not None:
            return StartResult(status="duplicate", file=existing)
    elif library.could_be_duplicate(
        session=session, owner_id=owner_id, size=size, fingerprint=fingerprint
    ):
        raise Conflict(
            "A file like this one may already be in your library: hash the whole file and "
            "send its sha256 instead of a fingerprint."
        )
    # Form uploads and resumes are planned without a store call: make sure it answers first,
    # so a store outage is a clear 503 now rather than a failed transfer in the browser.
    storage.ping()
    pending = _find_pending(
        session=session, owner_id=owner_id, sha256=sha256, size=size, fingerprint=fingerprint
    )
    if pending is not None:
        if pending.size == size and pending.expires_at > utcnow():
            if _extend(pending, session=session, settings=settings):
                return StartResult(status="resumed", upload=pending)
            # Completed meanwhile by another request: then it is a file now.
            if sha256 is not None:
                existing = library.find_by_sha256(
                    session=session, owner_id=owner_id, sha256=sha256
                )
                if existing is not None:
                    return StartResult(status="duplicate", file=existing)
        else:
            # Expired, or declared with another size (a lie or a bug): start over cleanly.
            if not claim_and_discard(session=session, storage=storage, upload=pending):
                raise Conflict("An earlier upload of this file is being completed; try again.")
    # Refuse early what the limits will refuse anyway, before the store is asked for
    # anything; the check that counts is repeated in the write transaction below.
    quotas.check_room(
        session=session, owner_id=owner_id, size=size, max_pending=settings.max_pending_uploads
    )
    storage.check_capacity(size)

    key = f"{OBJECT_PREFIX}{owner_id}/{secrets.token_hex(16)}"
    upload = PendingUpload(
        id=secrets.token_urlsafe(16),
        owner_id=owner_id,
        sha256=sha256,
        fingerprint=fingerprint,
        size=size,
        name=name,
        content_type=content_type,
        key=key,
        method=method,
        expires_at=utcnow() + timedelta(seconds=settings.ttl(method)),
    )
    if upload.method == "multipart":
        upload.part_size = part_size_for(size, settings.part_size)
        upload.multipart_id = storage.start_multipart(key=key, content_type=content_type)
    # Look for a file of this content again and insert in one write transaction. An upload
    # of it may have become a file since the look-up above; a row committed now and
    # discarded after could meanwhile be resumed by a third request, which would then
    # find its upload gone.
    begin_write(session)
    if sha256 is not None:
        existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
        if existing is not None:
            session.rollback()
            if upload.multipart_id:
                storage.abort_multipart(key=key, upload_id=upload.multipart_id)
            return StartResult(status="duplicate", file=existing)
    try:
        quotas.check_room(
            session=session, owner_id=owner_id, size=size,
            max_pending=settings.max_pending_uploads,
        )
    except QuotaExceeded:
        session.rollback()
        if upload.multipart_id:
            storage.abort_multipart(key=key, upload_id=upload.multipart_id)
        raise
    session.add(upload)
    try:
        session.commit()
    except IntegrityError:
        # Another request started the same file first: resume that one, drop ours.
        session.rollback()
        if upload.multipart_id:
            storage.abort_multipart(key=key, upload_id=upload.multipart_id)
        if sha256 is not None:
            existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
            if existing is not None:
                return StartResult(status="duplicate", file=existing)
        winner = _find_pending(
            session=session, owner_id=owner_id, sha256=sha256, size=size,
            fingerprint=fingerprint,
        )
        if winner is None:
            raise _RaceLost() from None
        return StartResult(status="resumed", upload=winner)
    return StartResult(status="created", upload=upload)


def part_urls(
    *,
    session: Session,
    storage: Storage,
    settings: UploadSettings,
    owner_id: int,
    upload_id: str,
    data: Any,
) -> list[PartUrlPublic]:
    """Sign PUT URLs for the requested parts of a multipart upload."""
    upload = get_owned_upload(session=session, owner_id=owner_id, upload_id=upload_id)
    if upload.method != "multipart":
        raise InvalidInput("This upload is a single form POST; it has no parts.")
    numbers = validation.require_object(data).get("part_numbers")
    if not isinstance(numbers, list) or not 1 <= len(numbers) <= MAX_PART_URLS:
        raise InvalidInput(f"part_numbers must be a list of 1 to {MAX_PART_URLS} part numbers.")
    count = part_count(upload)
    checked = [validation.positive_int(n, name="part number", maximum=count) for n in numbers]
    assert upload.multipart_id
    storage.ping()  # signing is offline; say now if the parts could not be sent anyway
    if not _extend(upload, session=session, settings=settings):
        raise NotFound("No such upload. It may have finished, been cancelled or expired.")
    return [
        PartUrlPublic(
            part_number=number,
            url=storage.part_url(
                key=upload.key,
                upload_id=upload.multipart_id,
                part_number=number,
                size=expected_part_size(upload, number),
                expires=settings.url_expires,
            ),
        )
        for number in dict.fromkeys(checked)
    ]


def uploaded_parts(*, storage: Storage, upload: PendingUpload) -> list[StoredPart]:
    """Return the parts the store already holds (none for form uploads)."""
    if upload.method != "multipart" or not upload.multipart_id:
        return []
    return storage.list_parts(key=upload.key, upload_id=upload.multipart_id)


def discard(*, session: Session, storage: Storage, upload: PendingUpload) -> None:
    """Free what the store holds for a pending upload, then forget the upload.

    The caller holds the upload's claim (see `_claim`), so no `complete` can record the
    file while its bytes are being removed.
    """
    if upload.method == "multipart" and upload.multipart_id:
        storage.abort_multipart(key=upload.key, upload_id=upload.multipart_id)
    # A form upload may already have stored its object; a failed multipart never does.
    storage.delete(upload.key)
    session.exec(delete(PendingUpload).where(col(PendingUpload.id) == upload.id))
    session.commit()


def _claim(*, session: Session, upload_id: str) -> bool:
    """Atomically mark the upload as taken by this request; False when another holds it.

    Complete, cancel, and the discards in create and gc all claim before touching the
    store: a cancel racing a complete would otherwise delete the bytes of a file the
    complete is recording.
    """
    now = utcnow()
    result = session.exec(
        update(PendingUpload)
        .where(
            col(PendingUpload.id) == upload_id,
            or_(
                col(PendingUpload.completing_since).is_(None),
                col(PendingUpload.completing_since) < now - COMPLETION_LEASE,
            ),
        )
        .values(completing_since=now)
    )
    session.commit()
    return result.rowcount == 1


def _release(*, session: Session, upload_id: str) -> None:
    """Let the next `complete` try again after a failure that kept the upload."""
    session.rollback()
    session.exec(
        update(PendingUpload)
        .where(col(PendingUpload.id) == upload_id)
        .values(completing_since=None)
    )
    session.commit()


def claim_and_discard(*, session: Session, storage: Storage, upload: PendingUpload) -> bool:
    """Claim the upload and discard it; False (nothing done) when another request holds it.

    If the store fails, the claim is released and the upload kept, so nothing is orphaned.
    """
    if not _claim(session=session, upload_id=upload.id):
        return False
    try:
        discard(session=session, storage=storage, upload=upload)
    except BaseException:
        _release(session=session, upload_id=upload.id)
        raise
    return True


def _file_from_upload(*, session: Session, owner_id: int, upload_id: str) -> StoredFile | None:
    """Return the file an upload already became, if it did."""
    return session.exec(
        select(StoredFile).where(
            StoredFile.owner_id == owner_id, StoredFile.upload_id == upload_id
        )
    ).first()


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
            part.get("part_number"), name="part_number", maximum=part_count(upload)
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
    count = part_count(upload)
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
        if part.size != expected_part_size(upload, number):
            raise UploadMismatch(
                f"Part {number} holds {part.size} bytes; {expected_part_size(upload, number)} "
                "were expected."
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
            upload = get_owned_upload(session=session, owner_id=owner_id, upload_id=upload_id)
        except NotFound:
            # A second tab or a retried request: the upload already became a file.
            done = _file_from_upload(session=session, owner_id=owner_id, upload_id=upload_id)
            if done is not None:
                return CompleteResult(file=done, duplicate=True)
            raise
        declared = _declared_parts(upload, data)
        # Uploads started with a fingerprint learn their hash only now.
        sha256 = upload.sha256 or validation.sha256_hex(data.get("sha256"))
        if _claim(session=session, upload_id=upload.id):
            break
        done = _wait_for_other_completion(
            session=session, owner_id=owner_id, upload_id=upload_id, sha256=sha256
        )
        if done is not None:
            return CompleteResult(file=done, duplicate=True)

    try:
        if upload.sha256 is None:
            existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
            if existing is not None:
                # Hashing while uploading found a file the user already has: keep one.
                discard(session=session, storage=storage, upload=upload)
                return CompleteResult(file=existing, duplicate=True)
        return _complete_claimed(
            session=session, storage=storage, upload=upload, declared=declared, sha256=sha256
        )
    except UploadMismatch:
        # The client's declaration was wrong: remove what it left behind, record nothing.
        try:
            discard(session=session, storage=storage, upload=upload)
        except BaseException:
            _release(session=session, upload_id=upload.id)
            raise
        raise
    except BaseException:
        # The store was down or refused one call: keep the upload so the client can retry.
        _release(session=session, upload_id=upload.id)
        raise


def _complete_claimed(
    *,
    session: Session,
    storage: Storage,
    upload: PendingUpload,
    declared: list[tuple[int, str]] | None,
    sha256: str,
) -> CompleteResult:
    """Finish an upload this request holds the claim on."""
    if upload.method == "multipart":
        assert upload.multipart_id
        stored = storage.list_parts(key=upload.key, upload_id=upload.multipart_id)
        if declared is None:
            declared = sorted((part.part_number, part.etag) for part in stored)
        _verify_parts(upload, declared, stored)
        try:
            storage.complete_multipart(
                key=upload.key, upload_id=upload.multipart_id, parts=declared
            )
        except StorageRejected as error:
            raise UploadMismatch(f"The store refused the parts: {error.message}") from error
    size = storage.object_size(upload.key)
    if size is None:
        raise UploadMismatch("No object was uploaded for this upload.")
    if size != upload.size:
        raise UploadMismatch(f"The stored object has {size} bytes; {upload.size} were declared.")
    actual = storage.object_sha256(upload.key)
    if actual is not None and actual != sha256:
        raise UploadMismatch("The stored bytes' SHA-256 differs from the declared sha256.")

    stored_file = StoredFile(
        owner_id=upload.owner_id,
        name=upload.name,
        size=upload.size,
        sha256=sha256,
        fingerprint=upload.fingerprint,
        content_type=upload.content_type,
        key=upload.key,
        upload_id=upload.id,
    )
    session.add(stored_file)
    try:
        # This statement flushes the insert first, so a clash can surface here too.
        session.exec(delete(PendingUpload).where(col(PendingUpload.id) == upload.id))
        session.commit()
    except IntegrityError:
        # The user finished the same content through another upload meanwhile.
        session.rollback()
        existing = library.find_by_sha256(
            session=session, owner_id=upload.owner_id, sha256=sha256
        )
        if existing is None:
            raise
        if existing.key != upload.key:
            storage.delete(upload.key)
        session.exec(delete(PendingUpload).where(col(PendingUpload.id) == upload.id))
        session.commit()
        return CompleteResult(file=existing, duplicate=True)
    return CompleteResult(file=stored_file, duplicate=False)


def cancel_upload(*, session: Session, storage: Storage, owner_id: int, upload_id: str) -> None:
    """Abort the owner's upload and forget it."""
    upload = get_owned_upload(session=session, owner_id=owner_id, upload_id=upload_id)
    if not claim_and_discard(session=session, storage=storage, upload=upload):
        raise Conflict("This upload is being completed and can no longer be cancelled.")


def accepts_object_write(*, session: Session, key: str) -> bool:
    """Whether a signed upload may still write `key`: its upload is pending, unclaimed, live.

    A form upload's signature stays valid until it expires; without this, replaying it
    after complete, cancel or delete would overwrite a recorded movie or leave an object
    that no row refers to.
    """
    now = utcnow()
    found = session.exec(
        select(PendingUpload.id).where(
            PendingUpload.key == key,
            col(PendingUpload.expires_at) > now,
            or_(
                col(PendingUpload.completing_since).is_(None),
                col(PendingUpload.completing_since) < now - COMPLETION_LEASE,
            ),
        )
    ).first()
    return found is not None


@dataclass
class GarbageReport:
    """What `collect_garbage` removed, and what it could not."""

    expired_uploads: int = 0
    orphans: int = 0
    failures: list[str] = field(default_factory=list)


def collect_garbage(
    *, session: Session, storage: Storage, now: datetime | None = None
) -> GarbageReport:
    """Discard expired uploads, then objects no file or upload refers to (after a grace).

    Orphans come from a client that wrote with a signed URL and never completed, or from
    a crash between the store and the catalogue. The store is listed before the catalogue
    is read: an object recorded meanwhile is then found in the catalogue, never deleted.
    """
    now = now or utcnow()
    report = GarbageReport()
    expired = session.exec(select(PendingUpload).where(col(PendingUpload.expires_at) < now)).all()
    for upload in expired:
        try:
            if claim_and_discard(session=session, storage=storage, upload=upload):
                report.expired_uploads += 1
        except Exception as error:  # one bad upload must not stop the sweep
            session.rollback()
            report.failures.append(f"{upload.id}: {error}")
    try:
        candidates = [
            item.key for item in storage.iter_objects()
            if item.key.startswith(OBJECT_PREFIX) and item.modified < now - ORPHAN_GRACE
        ]
    except MovieVaultError as error:
        report.failures.append(f"listing the store: {error.message}")
        return report
    for start in range(0, len(candidates), 500):  # SQLite's bound-parameter limit
        batch = candidates[start : start + 500]
        known = set(session.exec(select(StoredFile.key).where(col(StoredFile.key).in_(batch))))
        known |= set(
            session.exec(select(PendingUpload.key).where(col(PendingUpload.key).in_(batch)))
        )
        for key in batch:
            if key in known:
                continue
            try:
                storage.delete(key)
                report.orphans += 1
            except MovieVaultError as error:
                report.failures.append(f"{key}: {error.message}")
    return report
