"""The upload protocol: plan, sign, verify and record direct-to-storage uploads.

The app never sees a movie byte. It hands the browser signed instructions, and at the end
checks what the store holds before anything enters the catalogue.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from movievault import claims, library, quotas, validation
from movievault.errors import (
    Conflict,
    InvalidInput,
    NoSuchUpload,
    NotFound,
    QuotaExceeded,
)
from movievault.locking import begin_write, owner_scope
from movievault.models import (
    PartUrlPublic,
    PendingUpload,
    PostFormPublic,
    PutRequestPublic,
    StoredFile,
    UploadPublic,
    isoformat,
    utcnow,
)
from movievault.storage import (
    Storage,
    StoredPart,
    checksum_headers,
    part_size_for,
    put_headers,
)

MAX_PART_URLS = 100

#: Every object of a movie lives under this prefix; `collect_garbage` looks nowhere else.
OBJECT_PREFIX = "movies/"


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
        """Seconds an unfinished upload of this kind (sent whole, or multipart) is kept."""
        if method == "multipart":
            return self.upload_ttl
        return min(self.form_upload_ttl, self.upload_ttl)


@dataclass(frozen=True)
class StartResult:
    """What `start_upload` decided: a new upload, a resumed one, or a duplicate file."""

    status: str  # "created", "resumed" or "duplicate"
    upload: PendingUpload | None = None
    file: StoredFile | None = None


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
    """Return the upload as the API shows it, with fresh form fields or a fresh PUT URL for
    uploads sent whole."""
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
    elif upload.method == "put":
        # The hash, when known, is signed in: the store itself then refuses other bytes.
        sha256 = upload.sha256 if storage.sha256_checksums() else None
        url = storage.put_url(
            key=upload.key, size=upload.size, content_type=upload.content_type,
            sha256=sha256, expires=settings.url_expires,
        )
        shown.put = PutRequestPublic(url=url, headers=put_headers(upload.content_type, sha256))
    else:
        shown.part_size = upload.part_size
        shown.part_count = part_count(upload)
        if upload.checksum:
            shown.checksum = upload.checksum
    return shown


def get_owned_upload(*, session: Session, owner_id: int, upload_id: str) -> PendingUpload:
    """Return the owner's pending upload, or NotFound (also for other users' uploads)."""
    upload = session.get(PendingUpload, upload_id) if isinstance(upload_id, str) else None
    if upload is None or upload.owner_id != owner_id:
        raise NotFound("No such upload. It may have finished, been cancelled or expired.")
    return upload


# Every create looks for a pending upload of its content: built once (see library._BY_HASHES).
_PENDING_BY_SHA256 = select(PendingUpload).where(
    col(PendingUpload.owner_id) == bindparam("owner_id"),
    col(PendingUpload.sha256) == bindparam("sha256"),
)


def _find_pending(
    *, session: Session, owner_id: int, sha256: str | None, size: int, fingerprint: str | None
) -> PendingUpload | None:
    """Return the owner's pending upload of that content (by hash, or by fingerprint)."""
    if sha256 is not None:
        params = {"owner_id": owner_id, "sha256": sha256}
        return session.exec(_PENDING_BY_SHA256, params=params).first()
    return session.exec(
        select(PendingUpload).where(
            PendingUpload.owner_id == owner_id,
            col(PendingUpload.sha256).is_(None),
            PendingUpload.fingerprint == fingerprint,
            PendingUpload.size == size,
        )
    ).first()


def _extend(
    upload: PendingUpload, *, session: Session, settings: UploadSettings,
    method: str | None = None,
) -> bool:
    """Keep an upload the client is still working on from expiring under it (and switch
    an upload sent whole to `method`, when given).

    Returns False when the upload is gone: another request (maybe in another worker)
    completed or cancelled it since it was read, or gc is removing it (expired, claimed).
    A plain UPDATE says so by its row count, where the ORM would raise StaleDataError.
    """
    method = method or upload.method
    now = utcnow()
    expires = now + timedelta(seconds=settings.ttl(method))
    result = session.exec(
        update(PendingUpload)
        .where(col(PendingUpload.id) == upload.id, claims.not_being_discarded(now))
        .values(expires_at=expires, method=method)
    )
    session.commit()
    if result.rowcount != 1:
        return False
    set_committed_value(upload, "expires_at", expires)
    set_committed_value(upload, "method", method)
    return True

#: A movie's upload asks for part URLs every few seconds; its expiry moves with them at
#: most this often, so most of those requests write nothing (on SQLite, they would each
#: wait for their turn to write).
EXTEND_EVERY = timedelta(minutes=1)


def _keep_alive(upload: PendingUpload, *, session: Session, settings: UploadSettings) -> bool:
    """`_extend` the upload, unless it was extended moments ago and no request has claimed
    it since (then the row just read says it is live); False when it is gone."""
    ttl = timedelta(seconds=settings.ttl(upload.method))
    left = upload.expires_at - utcnow()
    if upload.completing_since is None and left > ttl - min(EXTEND_EVERY, ttl / 2):
        return True
    return _extend(upload, session=session, settings=settings)


#: How often create starts over when the upload it lost a race to vanished meanwhile.
CREATE_ATTEMPTS = 3


class _RaceLost(Exception):
    """Another create of this content won the insert, then was cancelled: start over."""


def start_upload(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int, data: Any,
    whole: bool = False,
) -> StartResult:
    """Plan an upload, or resume the pending one for this content, or report a duplicate.

    A create that loses the insert to another create of the same content resumes that
    one; if that one is cancelled in between, it starts over (a few times) rather than
    failing a request that did nothing wrong. `whole` plans an upload sent whole whatever
    its size: `movievault import` stores the object itself (see importer.py).
    """
    for _ in range(CREATE_ATTEMPTS):
        try:
            return _start_upload_once(
                session=session, storage=storage, settings=settings, owner_id=owner_id,
                data=data, whole=whole,
            )
        except _RaceLost:
            continue
    raise Conflict("Another upload of this file keeps changing; try again.")


def _start_upload_once(
    *, session: Session, storage: Storage, settings: UploadSettings, owner_id: int, data: Any,
    whole: bool,
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
    whole = whole or size <= settings.multipart_threshold
    method = storage.upload_method() if whole else "multipart"

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
    pending = _find_pending(
        session=session, owner_id=owner_id, sha256=sha256, size=size, fingerprint=fingerprint
    )
    if pending is not None or method != "multipart":
        # Form uploads and their resumes are planned without a store call: make sure it
        # answers first, so a store outage is a clear 503 now rather than a failed transfer
        # in the browser (a multipart resume lists its parts below anyway). An answer of the
        # last few seconds stands (any failed store call ends that trust), so a batch of
        # small files costs one round trip, not one each. A new multipart upload starts
        # with a store call, which tells anyway.
        storage.ping_recent()
    if pending is not None:
        if (
            pending.size == size and pending.expires_at > utcnow()
            and not _parts_gone(storage=storage, upload=pending)
        ):
            # An upload sent whole has nothing stored in parts: it follows the store's
            # method of today (S3_UPLOAD_METHOD may have changed since it began).
            whole = "multipart" not in (pending.method, method)
            switch = method if whole else None
            if _extend(pending, session=session, settings=settings, method=switch):
                return StartResult(status="resumed", upload=pending)
            # Completed meanwhile by another request: then it is a file now.
            if sha256 is not None:
                existing = library.find_by_sha256(
                    session=session, owner_id=owner_id, sha256=sha256
                )
                if existing is not None:
                    return StartResult(status="duplicate", file=existing)
        else:
            # Expired, its parts gone (the store's clean-up of old uploads aborted them), or
            # declared with another size (a lie or a bug): start over cleanly.
            if not claims.claim_and_discard(session=session, storage=storage, upload=pending):
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
        upload.checksum = "sha256" if storage.sha256_checksums() else None
        upload.multipart_id = storage.start_multipart(
            key=key, content_type=content_type, checksums=upload.checksum is not None
        )
    # Look for a file of this content again and insert in one write transaction. An upload
    # of it may have become a file since the look-up above; a row committed now and
    # discarded after could meanwhile be resumed by a third request, which would then
    # find its upload gone. (Completion takes the same owner's lock to record a file.)
    begin_write(session, owner_scope(owner_id))
    if sha256 is not None:
        existing = library.find_by_sha256(session=session, owner_id=owner_id, sha256=sha256)
        if existing is not None:
            session.rollback()
            if upload.multipart_id:
                storage.abort_multipart(key=key, upload_id=upload.multipart_id)
            return StartResult(status="duplicate", file=existing)
    try:
        quotas.check_room_to_write(
            session=session, owner_id=owner_id, size=size,
            max_pending=settings.max_pending_uploads,
        )
    except QuotaExceeded:
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
    """Sign PUT URLs for the requested parts of a multipart upload.

    For an upload whose parts carry their SHA-256, each URL signs its part's hash, and the
    client sends it in the header the answer lists: the store refuses other bytes.
    """
    upload = get_owned_upload(session=session, owner_id=owner_id, upload_id=upload_id)
    if upload.method != "multipart":
        raise InvalidInput("This upload is sent whole (one form POST or PUT); it has no parts.")
    wanted = validation.part_requests(
        data, count=part_count(upload), limit=MAX_PART_URLS, need_sha256=bool(upload.checksum)
    )
    assert upload.multipart_id
    # Signing is offline; say now if the parts could not be sent anyway. A store that has
    # just answered is trusted to: the page asks for part URLs often, a few at a time.
    storage.ping_recent()
    if not _keep_alive(upload, session=session, settings=settings):
        raise NotFound("No such upload. It may have finished, been cancelled or expired.")
    signed: list[PartUrlPublic] = []
    for number, sha256 in wanted.items():
        # Only an upload created with checksums takes them: S3 refuses a part's checksum
        # at complete when the upload was created without the algorithm.
        sha256 = sha256 if upload.checksum else None
        url = storage.part_url(
            key=upload.key, upload_id=upload.multipart_id, part_number=number,
            size=expected_part_size(upload, number), expires=settings.url_expires,
            sha256=sha256,
        )
        signed.append(
            PartUrlPublic(part_number=number, url=url, headers=checksum_headers(sha256))
        )
    return signed


def uploaded_parts(*, storage: Storage, upload: PendingUpload) -> list[StoredPart]:
    """Return the parts the store already holds (none for form uploads); every part, without
    its ETag, once the store has joined them (see `parts_or_joined`)."""
    if upload.method != "multipart" or not upload.multipart_id:
        return []
    parts = parts_or_joined(storage=storage, upload=upload)
    if parts is None:
        return [
            StoredPart(part_number=number, etag="", size=expected_part_size(upload, number))
            for number in range(1, part_count(upload) + 1)
        ]
    return parts


def _parts_gone(*, storage: Storage, upload: PendingUpload) -> bool:
    """Whether a multipart upload lost its parts without being joined (a store call; only
    when an upload is resumed)."""
    if upload.method != "multipart" or not upload.multipart_id:
        return False
    try:
        parts_or_joined(storage=storage, upload=upload)
    except NoSuchUpload:
        return True
    return False


def parts_or_joined(*, storage: Storage, upload: PendingUpload) -> list[StoredPart] | None:
    """The parts the store holds for a multipart upload, or None when it has joined them.

    A complete that joined the parts and then could not record the file (its process was
    stopped, or it lost its claim) leaves the upload pending with its object whole: the
    next complete records that object, checked like one sent whole. Raises NoSuchUpload
    when the parts are gone and no such object is there (the upload was aborted).
    """
    assert upload.multipart_id
    try:
        return storage.list_parts(key=upload.key, upload_id=upload.multipart_id)
    except NoSuchUpload:
        if storage.object_size(upload.key) == upload.size:
            return None
        raise


def cancel_upload(*, session: Session, storage: Storage, owner_id: int, upload_id: str) -> None:
    """Abort the owner's upload and forget it."""
    upload = get_owned_upload(session=session, owner_id=owner_id, upload_id=upload_id)
    if not claims.claim_and_discard(session=session, storage=storage, upload=upload):
        raise Conflict("This upload is being completed and can no longer be cancelled.")
