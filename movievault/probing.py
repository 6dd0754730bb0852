"""Probing a file: read a few ranged MB of it, record what it is, and make its poster.

One claimed job (see jobs.py) at a time: the background worker and `movievault rescan`
both run `run_job`. A file that is not a video, or is truncated or corrupt, is recorded as
failed with the reason at once; a store that fails, or a probe cut off by its time limit,
is tried again later, and recorded as failed once the tries are used up.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

from sqlalchemy import update
from sqlmodel import Session, col, select

from movievault import jobs, library, posters
from movievault.errors import (
    InvalidInput,
    MovieVaultError,
    NoSuchKey,
    NotFound,
    ProbeFailed,
    ProbeTimeout,
)
from movievault.jobs import Claim, ProbeSettings
from movievault.media.poster import frame_poster, make_poster
from movievault.media.probe import MediaInfo, probe
from movievault.media.reader import open_ranged
from movievault.models import StoredFile
from movievault.storage import Storage

log = logging.getLogger(__name__)

Outcome = Literal["ready", "failed", "retry", "lost"]
Scope = Literal["missing", "failed", "all"]


@dataclass(frozen=True)
class _Target:
    """What a probe needs to know of the file, read before the (long) probe starts."""

    owner_id: int
    key: str
    size: int
    has_poster: bool


class _Retry(Exception):
    """A failure that may pass: the store, the time limit, or a bug (logged)."""


def _examine(
    storage: Storage, target: _Target, *, file_id: int, deadline: float
) -> tuple[MediaInfo, str | None]:
    """Probe the file's streams, then make its poster, through one ranged reader (which
    keeps what the probe read, so the poster does not fetch the index again).

    ProbeFailed says the file is no movie; _Retry that the failure may pass.
    """
    try:
        with open_ranged(storage, target.key, target.size, deadline=deadline) as reader:
            info = probe(reader)
            poster_key = _poster(storage, reader, target, info, file_id=file_id)
            log.info("probed %s: %d bytes in %d ranged reads", target.key,
                     reader.raw.bytes_read, reader.raw.requests)  # type: ignore[attr-defined]
            return info, poster_key
    except ProbeTimeout as error:
        raise _Retry(f"Reading the file took longer than the time limit: {error.reason}") from error
    except ProbeFailed:
        raise
    except NoSuchKey as error:
        raise _Retry(f"The file's object is missing from the store: {error.message}") from error
    except MovieVaultError as error:
        raise _Retry(error.message) from error
    except Exception as error:  # a bug must not stop the worker: logged, tried again
        log.exception("probing %s failed unexpectedly", target.key)
        raise _Retry(f"Unexpected error while probing: {error}") from error


def _poster(
    storage: Storage, reader: BinaryIO, target: _Target, info: MediaInfo, *, file_id: int
) -> str | None:
    """Make and store the poster of a file that has none; its key, or None.

    Best effort: a file whose frames cannot be decoded still has its metadata, and the
    owner can pick a frame later.
    """
    if target.has_poster or info.video is None:
        return None
    try:
        image = make_poster(reader, duration=info.duration)
        if image is None:
            return None
        return posters.store(
            storage=storage, owner_id=target.owner_id, file_id=file_id, image=image
        )
    except MovieVaultError as error:  # ProbeFailed included
        log.warning("no poster for %s: %s", target.key, error.message)
    except Exception:
        log.exception("making the poster of %s failed unexpectedly", target.key)
    return None


def _record_ready(
    *, session: Session, storage: Storage, claim: Claim, info: MediaInfo,
    poster_key: str | None,
) -> Outcome:
    """Record the probe's result, if this claim still holds the job; commit."""
    if not jobs.take_done(session=session, claim=claim):
        session.rollback()
        posters.discard(storage=storage, key=poster_key)
        return "lost"
    video = info.video
    session.exec(
        update(StoredFile)
        .where(col(StoredFile.id) == claim.file_id)
        .values(
            media_status="ready", media_error=None, media_info=json.dumps(info.to_json()),
            duration=info.duration,
            width=video.width if video else None,
            height=video.height if video else None,
            hdr=video.hdr if video else None,
        )
    )
    kept = False
    if poster_key is not None:
        # The owner may have picked a frame meanwhile: theirs wins.
        kept = session.exec(
            update(StoredFile)
            .where(col(StoredFile.id) == claim.file_id, col(StoredFile.poster_key).is_(None))
            .values(poster_key=poster_key)
        ).rowcount == 1
    session.commit()
    if not kept:
        posters.discard(storage=storage, key=poster_key)
    return "ready"


def record_failure(*, session: Session, claim: Claim, reason: str) -> Outcome:
    """Record the file as failed with `reason`, if this claim still holds the job; commit."""
    if not jobs.take_done(session=session, claim=claim):
        session.rollback()
        return "lost"
    session.exec(
        update(StoredFile)
        .where(col(StoredFile.id) == claim.file_id)
        .values(media_status="failed", media_error=reason[:500])
    )
    session.commit()
    return "failed"


def run_job(
    *, session: Session, storage: Storage, settings: ProbeSettings, claim: Claim
) -> Outcome:
    """Probe the claimed job's file and record what happened (see the module's summary)."""
    if claim.attempts > jobs.MAX_ATTEMPTS:
        # Every try so far was claimed and never ended: it crashed its worker or hung.
        return record_failure(
            session=session, claim=claim,
            reason=f"Probing was stopped {claim.attempts - 1} times before it finished.",
        )
    stored = session.get(StoredFile, claim.file_id)
    if stored is None:
        return "lost"  # deleted: its job went with it
    target = _Target(
        owner_id=stored.owner_id, key=stored.key, size=stored.size,
        has_poster=stored.poster_key is not None,
    )
    session.rollback()  # hold no transaction open while the probe reads
    deadline = time.monotonic() + settings.timeout
    try:
        info, poster_key = _examine(storage, target, file_id=claim.file_id, deadline=deadline)
    except ProbeFailed as error:
        return record_failure(session=session, claim=claim, reason=error.reason)
    except _Retry as error:
        reason = str(error)
        if jobs.retry_delay(claim.attempts) is None:
            return record_failure(session=session, claim=claim, reason=reason)
        log.info("probing %s failed (try %d), retrying later: %s",
                 target.key, claim.attempts, reason)
        return "retry" if jobs.retry_later(session=session, claim=claim, error=reason) else "lost"
    return _record_ready(
        session=session, storage=storage, claim=claim, info=info, poster_key=poster_key
    )


def run_next(*, session: Session, storage: Storage, settings: ProbeSettings) -> Outcome | None:
    """Claim the next due job and run it; None when no job is due."""
    claim = jobs.claim(session=session, lease=settings.lease)
    if claim is None:
        return None
    return run_job(session=session, storage=storage, settings=settings, claim=claim)


# --- a frame the owner picks --------------------------------------------------------------


def _seconds(value: Any, duration: float | None) -> float:
    """A time in the film, in seconds from its start; raise InvalidInput when it is none."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidInput("at must be a number of seconds from the start of the movie.")
    if value < 0:
        raise InvalidInput("at must be 0 seconds or later.")
    if duration is not None and value > duration:
        raise InvalidInput(f"at must be within the movie's {duration:g} seconds.")
    return float(value)


def pick_poster_frame(
    *, session: Session, storage: Storage, owner_id: int, file_id: int, data: Any,
    timeout: float,
) -> StoredFile:
    """Make the owner's file's poster from the frame `data["at"]` seconds in, replacing
    the old one; ProbeFailed (422) when that frame cannot be read.

    The new poster is stored and recorded before the old one is removed, so the file
    always has a poster that exists; the old object, if its removal fails, is gc's.
    """
    stored = library.get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    if not isinstance(data, dict):
        raise InvalidInput("The request body must be a JSON object with at (seconds).")
    at = _seconds(data.get("at"), stored.duration)
    key, size, old = stored.key, stored.size, stored.poster_key
    session.rollback()  # hold no transaction open while the frame is read
    try:
        with open_ranged(storage, key, size, deadline=time.monotonic() + timeout) as source:
            image = frame_poster(source, at=at)
    except ProbeTimeout as error:
        raise ProbeTimeout(f"Reading that frame took too long ({error.reason}).") from error
    except ProbeFailed as error:
        raise ProbeFailed(f"No poster could be made from that frame: {error.reason}") from error
    new = posters.store(storage=storage, owner_id=owner_id, file_id=file_id, image=image)
    # Only on the same file still: it may have been deleted meanwhile, and a catalogue
    # edited by hand may have given its id to another file (see docs/DATABASE.md, "ids").
    recorded = session.exec(
        update(StoredFile)
        .where(col(StoredFile.id) == file_id, col(StoredFile.owner_id) == owner_id,
               col(StoredFile.key) == key)
        .values(poster_key=new)
    )
    session.commit()
    if recorded.rowcount != 1:
        posters.discard(storage=storage, key=new)
        raise NotFound("No such file.")
    posters.discard(storage=storage, key=old)
    return library.get_owned_file(session=session, owner_id=owner_id, file_id=file_id)


# --- movievault rescan ----------------------------------------------------------------------


def files_to_rescan(
    *, session: Session, scope: Scope, owner_id: int | None = None
) -> list[int]:
    """The ids of the files `rescan` probes: never probed (missing), failed, or all."""
    query = select(StoredFile.id)
    if scope == "missing":
        query = query.where(StoredFile.media_status == "pending")
    elif scope == "failed":
        query = query.where(StoredFile.media_status == "failed")
    if owner_id is not None:
        query = query.where(StoredFile.owner_id == owner_id)
    found = [file_id for file_id in session.exec(query.order_by(col(StoredFile.id))) if file_id]
    session.rollback()
    return found


def rescan(
    *, session: Session, storage: Storage, settings: ProbeSettings, file_ids: list[int]
) -> Iterator[tuple[int, Outcome | Literal["busy"]]]:
    """Probe each file now, in this process; yield (file id, outcome) as each one ends.

    Each file gets a job (or keeps the one it has) and this process claims it like a
    worker would, so a server running meanwhile never probes the same file at once: a file
    whose job it holds is reported "busy" and left to it. A file that fails for a reason
    that may pass keeps its job for the background worker to retry.
    """
    for start in range(0, len(file_ids), 500):
        jobs.enqueue_many(session=session, file_ids=file_ids[start : start + 500])
        session.commit()
    for file_id in file_ids:
        claim = jobs.claim(session=session, lease=settings.lease, file_id=file_id)
        if claim is None:
            yield file_id, "busy"
            continue
        yield file_id, run_job(session=session, storage=storage, settings=settings, claim=claim)
