"""The file catalogue: look-ups, search, edits and delete, always within one owner's files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, bindparam
from sqlmodel import Session, col, delete, func, or_, select

from movievault import jobs, posters, validation
from movievault.errors import InvalidInput, NotFound
from movievault.media.probe import MediaInfo, SubtitleInfo
from movievault.models import (
    MAX_ID,
    AudioPublic,
    DuplicateCheckPublic,
    FilePagePublic,
    FilePublic,
    MediaPublic,
    PendingUpload,
    StoredFile,
    Subtitle,
    SubtitlePublic,
    VideoPublic,
    isoformat,
)
from movievault.storage import Storage

SORTS: dict[str, ColumnElement[Any]] = {
    "name": func.lower(col(StoredFile.name)).asc(),
    "-name": func.lower(col(StoredFile.name)).desc(),
    "created": col(StoredFile.created_at).asc(),
    "-created": col(StoredFile.created_at).desc(),
    "size": col(StoredFile.size).asc(),
    "-size": col(StoredFile.size).desc(),
    "title": func.lower(col(StoredFile.title)).asc(),
    "-title": func.lower(col(StoredFile.title)).desc(),
    # Unknown years and durations sort as the smallest, as SQLite has them by default
    # (PostgreSQL's default is the opposite); SQLite still walks its index for these.
    "year": col(StoredFile.year).asc().nulls_first(),
    "-year": col(StoredFile.year).desc().nulls_last(),
    "duration": col(StoredFile.duration).asc().nulls_first(),
    "-duration": col(StoredFile.duration).desc().nulls_last(),
}
DEFAULT_SORT = "-created"
MAX_CHECK = 1000


@dataclass(frozen=True)
class Page:
    """One page of a user's files, with the totals the page header shows."""

    files: list[StoredFile]
    total: int
    total_size: int
    page: int
    pages: int
    query: str
    sort: str


def subtitle_url(subtitle: Subtitle, *, root: str = "") -> str:
    """Where the app serves a subtitle's WebVTT; the key's random part rides along, so a
    browser's cached copy is never another subtitle's."""
    version = subtitle.vtt_key.rsplit("/", 1)[-1].split("-")[1]
    return f"{root}/files/{subtitle.file_id}/subtitles/{subtitle.id}.vtt?v={version}"


def embedded_subtitles(stored: StoredFile) -> list[SubtitleInfo]:
    """The subtitle streams inside the file, as probing found them (none until it has)."""
    if stored.media_status != "ready" or not stored.media_info:
        return []
    return MediaInfo.from_json(json.loads(stored.media_info)).subtitles


def media_public(stored: StoredFile, *, root: str = "") -> MediaPublic:
    """What probing found about a file, as the API shows it."""
    poster_url = posters.poster_url(stored, root=root)
    attached = [
        SubtitlePublic(
            language=sub.language, codec="webvtt", source="file", id=sub.id, label=sub.label,
            url=subtitle_url(sub, root=root),
        )
        for sub in stored.subtitles
    ]
    empty = MediaPublic(
        status=stored.media_status, error=stored.media_error, duration=None, container=None,
        bitrate=None, video=None, audio=[], subtitles=attached, poster_url=poster_url,
    )
    if stored.media_status != "ready" or not stored.media_info:
        return empty
    info = MediaInfo.from_json(json.loads(stored.media_info))
    video = info.video
    return MediaPublic(
        status=stored.media_status,
        error=None,
        duration=info.duration,
        container=info.container,
        bitrate=info.bitrate,
        video=None if video is None else VideoPublic(
            codec=video.codec, profile=video.profile, level=video.level, width=video.width,
            height=video.height, fps=video.fps, pix_fmt=video.pix_fmt, hdr=video.hdr,
        ),
        audio=[
            AudioPublic(codec=a.codec, channels=a.channels, language=a.language)
            for a in info.audio
        ],
        subtitles=[
            SubtitlePublic(language=s.language, codec=s.codec, source="embedded")
            for s in info.subtitles
        ] + attached,
        poster_url=poster_url,
    )


def public(stored: StoredFile, *, root: str = "") -> FilePublic:
    """Return a file as the API shows it (`root`: the app's path, for the poster's URL)."""
    assert stored.id is not None
    return FilePublic(
        id=stored.id,
        name=stored.name,
        size=stored.size,
        sha256=stored.sha256,
        content_type=stored.content_type,
        created_at=isoformat(stored.created_at),
        title=stored.title,
        year=stored.year,
        media=media_public(stored, root=root),
    )


def public_page(page: Page, *, root: str = "") -> FilePagePublic:
    """Return a page of files as the API shows it."""
    return FilePagePublic(
        files=[public(stored, root=root) for stored in page.files],
        total=page.total, total_size=page.total_size, page=page.page, pages=page.pages,
    )


def get_owned_file(*, session: Session, owner_id: int, file_id: int) -> StoredFile:
    """Return the owner's file, or NotFound (also for other users' files)."""
    # A bigger id from the URL would overflow the column (and the driver): no such file.
    if not 0 < file_id <= MAX_ID:
        raise NotFound("No such file.")
    stored = session.get(StoredFile, file_id)
    if stored is None or stored.owner_id != owner_id:
        raise NotFound("No such file.")
    return stored


# Every create looks its content up twice, and mostly finds nothing: the look-up is a Core
# statement built once (an ORM select of this wide table costs about three times as much),
# and only a match is loaded as a file.
_ID_BY_SHA256 = select(StoredFile.id).where(
    col(StoredFile.owner_id) == bindparam("owner_id"),
    col(StoredFile.sha256) == bindparam("sha256"),
)


def find_by_sha256(*, session: Session, owner_id: int, sha256: str) -> StoredFile | None:
    """Return the owner's file with that content, if any."""
    params = {"owner_id": owner_id, "sha256": sha256}
    file_id = session.connection().execute(_ID_BY_SHA256, params).scalar()
    return None if file_id is None else session.get(StoredFile, file_id)


def could_be_duplicate(
    *, session: Session, owner_id: int, size: int, fingerprint: str | None
) -> bool:
    """Whether any of the owner's files might hold the same bytes as a file of `size`
    whose first and last MiB hash to `fingerprint` (files without one always might)."""
    match: ColumnElement[bool] = col(StoredFile.fingerprint).is_(None)
    if fingerprint is not None:
        match = or_(match, StoredFile.fingerprint == fingerprint)
    query = select(StoredFile.id).where(
        StoredFile.owner_id == owner_id, StoredFile.size == size, match
    )
    return session.exec(query.limit(1)).first() is not None


# The duplicate check is the most frequent request: its statement is built once, with the
# owner and the hashes bound at each call (SQLAlchemy caches its compiled form). Like
# find_by_sha256, it asks for ids only; the few files found are then loaded in one query.
_IDS_BY_HASHES = select(StoredFile.id).where(
    col(StoredFile.owner_id) == bindparam("owner_id"),
    col(StoredFile.sha256).in_(bindparam("hashes", expanding=True)),
)


def check_duplicates(
    *, session: Session, owner_id: int, items: Any
) -> list[DuplicateCheckPublic]:
    """Answer each entry: `{"sha256", "size"}` is it a duplicate; `{"fingerprint", "size"}`
    must the client hash the whole file first (`needs_sha256`) or may it hash while uploading."""
    if not isinstance(items, list):
        raise InvalidInput("files must be a list of {sha256, size} objects.")
    if len(items) > MAX_CHECK:
        raise InvalidInput(f"files may list at most {MAX_CHECK} entries per request.")
    entries = [validation.require_object(item, "each entry of files") for item in items]
    hashes = [
        validation.sha256_hex(e.get("sha256")) for e in entries if e.get("fingerprint") is None
    ]
    ids: list[int] = []
    for start in range(0, len(hashes), 500):  # stay under SQLite's bound-parameter limit
        params = {"owner_id": owner_id, "hashes": hashes[start : start + 500]}
        ids.extend(session.connection().execute(_IDS_BY_HASHES, params).scalars())
    found = {
        stored.sha256: stored
        for start in range(0, len(ids), 500)
        for stored in session.exec(
            select(StoredFile).where(col(StoredFile.id).in_(ids[start : start + 500]))
        )
    }
    results: list[DuplicateCheckPublic] = []
    for entry in entries:
        if entry.get("fingerprint") is None:
            sha = validation.sha256_hex(entry.get("sha256"))
            match = found.get(sha)
            results.append(DuplicateCheckPublic(
                sha256=sha, duplicate=match is not None, file=public(match) if match else None,
            ))
            continue
        fingerprint = validation.optional_digest(entry["fingerprint"], "fingerprint")
        size = validation.file_size(entry.get("size"), maximum=2**63 - 1)
        needs = could_be_duplicate(
            session=session, owner_id=owner_id, size=size, fingerprint=fingerprint
        )
        results.append(DuplicateCheckPublic(
            fingerprint=fingerprint, size=size, duplicate=False, file=None, needs_sha256=needs,
        ))
    return results


def _escape_like(text: str) -> str:
    """Escape LIKE wildcards so a search for '100%' means the text."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_files(
    *, session: Session, owner_id: int, query: str = "", sort: str = "", page: int = 1,
    page_size: int = 50,
) -> Page:
    """Return one page of the owner's files matching `query`, sorted by `sort`."""
    query = (query or "").strip()[:200]
    sort = sort if sort in SORTS else DEFAULT_SORT
    conditions: list[ColumnElement[bool]] = [col(StoredFile.owner_id) == owner_id]
    if query:
        pattern = f"%{_escape_like(query)}%"
        conditions.append(or_(
            col(StoredFile.name).ilike(pattern, escape="\\"),
            col(StoredFile.title).ilike(pattern, escape="\\"),
        ))
    total, total_size = session.exec(
        select(func.count(), func.coalesce(func.sum(StoredFile.size), 0)).where(*conditions)
    ).one()
    pages = max(1, math.ceil(total / page_size))
    page = min(max(1, page), pages)
    files = list(
        session.exec(
            select(StoredFile)
            .where(*conditions)
            .order_by(SORTS[sort], col(StoredFile.id).desc())
            .offset((page - 1) * page_size)
            .limit(page_size)
        )
    )
    return Page(
        # PostgreSQL sums BIGINTs as NUMERIC (a Decimal here).
        files=files, total=total, total_size=int(total_size), page=page, pages=pages,
        query=query, sort=sort,
    )


def rename_file(*, session: Session, owner_id: int, file_id: int, name: Any) -> StoredFile:
    """Rename the owner's file (the object key never changes)."""
    return update_file(session=session, owner_id=owner_id, file_id=file_id, data={"name": name})


#: What an edit may change; the rest of a file is what its bytes are.
EDITABLE = ("name", "title", "year")


def update_file(*, session: Session, owner_id: int, file_id: int, data: Any) -> StoredFile:
    """Change the owner's file's name, title and/or year: all checked first, then saved."""
    if not isinstance(data, dict) or not any(field in data for field in EDITABLE):
        raise InvalidInput("The request body must be a JSON object with name, title or year.")
    stored = get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    changes: dict[str, Any] = {}
    if "name" in data:
        changes["name"] = validation.file_name(data["name"])
    if "title" in data:
        changes["title"] = validation.title(data["title"])
    if "year" in data:
        changes["year"] = validation.year(data["year"])
    for field, value in changes.items():
        setattr(stored, field, value)
    session.add(stored)
    session.commit()
    return stored


def delete_file(*, session: Session, storage: Storage, owner_id: int, file_id: int) -> None:
    """Delete the object first, then the row: if the store is down, nothing changes.

    The poster goes too, its subtitles, and the probe job; a poster or subtitle the store
    fails to remove is left for gc, which removes objects no row names.
    """
    stored = get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    storage.delete(stored.key)
    posters.discard(storage=storage, key=stored.poster_key)
    # Its subtitles (rows cascade) and unfinished subtitle uploads go with it.
    pending = session.exec(
        select(PendingUpload).where(PendingUpload.subtitle_for == file_id)
    ).all()
    extra = [key for sub in stored.subtitles for key in (sub.source_key, sub.vtt_key)]
    for key in extra + [upload.key for upload in pending]:
        posters.discard(storage=storage, key=key)
    session.exec(delete(PendingUpload).where(col(PendingUpload.subtitle_for) == file_id))
    jobs.forget(session=session, file_id=file_id)
    session.delete(stored)
    session.commit()
