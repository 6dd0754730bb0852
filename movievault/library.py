"""The file catalogue: look-ups, search, rename and delete, always within one owner's files."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, func, select

from movievault import validation
from movievault.errors import InvalidInput, NotFound
from movievault.models import FilePublic, StoredFile, isoformat
from movievault.storage import Storage

SORTS: dict[str, ColumnElement[Any]] = {
    "name": func.lower(col(StoredFile.name)).asc(),
    "-name": func.lower(col(StoredFile.name)).desc(),
    "created": col(StoredFile.created_at).asc(),
    "-created": col(StoredFile.created_at).desc(),
    "size": col(StoredFile.size).asc(),
    "-size": col(StoredFile.size).desc(),
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


def public(stored: StoredFile) -> dict[str, Any]:
    """Return a file as the API shows it."""
    assert stored.id is not None
    return FilePublic(
        id=stored.id,
        name=stored.name,
        size=stored.size,
        sha256=stored.sha256,
        content_type=stored.content_type,
        created_at=isoformat(stored.created_at),
    ).model_dump()


def get_owned_file(*, session: Session, owner_id: int, file_id: int) -> StoredFile:
    """Return the owner's file, or NotFound (also for other users' files)."""
    stored = session.get(StoredFile, file_id)
    if stored is None or stored.owner_id != owner_id:
        raise NotFound("No such file.")
    return stored


def find_by_sha256(*, session: Session, owner_id: int, sha256: str) -> StoredFile | None:
    """Return the owner's file with that content, if any."""
    return session.exec(
        select(StoredFile).where(StoredFile.owner_id == owner_id, StoredFile.sha256 == sha256)
    ).first()


def check_duplicates(*, session: Session, owner_id: int, items: Any) -> list[dict[str, Any]]:
    """Answer, for each `{"sha256", "size"}`, whether the owner already has that file."""
    if not isinstance(items, list):
        raise InvalidInput("files must be a list of {sha256, size} objects.")
    if len(items) > MAX_CHECK:
        raise InvalidInput(f"files may list at most {MAX_CHECK} entries per request.")
    hashes = []
    for item in items:
        item = validation.require_object(item, "each entry of files")
        hashes.append(validation.sha256_hex(item.get("sha256")))
    found: dict[str, StoredFile] = {}
    for start in range(0, len(hashes), 500):  # stay under SQLite's bound-parameter limit
        batch = hashes[start : start + 500]
        for stored in session.exec(
            select(StoredFile).where(
                StoredFile.owner_id == owner_id, col(StoredFile.sha256).in_(batch)
            )
        ):
            found[stored.sha256] = stored
    return [
        {
            "sha256": sha,
            "duplicate": sha in found,
            "file": public(found[sha]) if sha in found else None,
        }
        for sha in hashes
    ]


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
    conditions = [StoredFile.owner_id == owner_id]
    if query:
        pattern = f"%{_escape_like(query)}%"
        conditions.append(col(StoredFile.name).ilike(pattern, escape="\\"))
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
        files=files, total=total, total_size=total_size, page=page, pages=pages,
        query=query, sort=sort,
    )


def rename_file(*, session: Session, owner_id: int, file_id: int, name: Any) -> StoredFile:
    """Rename the owner's file (the object key never changes)."""
    stored = get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    stored.name = validation.file_name(name)
    session.add(stored)
    session.commit()
    return stored


def delete_file(*, session: Session, storage: Storage, owner_id: int, file_id: int) -> None:
    """Delete the object first, then the row: if the store is down, nothing changes."""
    stored = get_owned_file(session=session, owner_id=owner_id, file_id=file_id)
    storage.delete(stored.key)
    session.delete(stored)
    session.commit()
