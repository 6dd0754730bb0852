"""SQLModel tables: users, the file catalogue, subtitles, probe jobs, pending uploads,
login attempts and API tokens."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    Text,
    UniqueConstraint,
    inspect,
    text,
)
from sqlalchemy.orm import relationship
from sqlmodel import Field, SQLModel, col


def utcnow() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


#: The largest id a table holds: ids are INTEGER, 32-bit on PostgreSQL (64-bit on SQLite).
MAX_ID = 2**31 - 1


def as_utc(moment: datetime) -> datetime:
    """The moment as an aware UTC datetime: stored times come back naive (the columns are
    TIMESTAMP WITHOUT TIME ZONE, in UTC; see db.make_engine for PostgreSQL's session)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def isoformat(moment: datetime) -> str:
    """Render a UTC datetime as ISO 8601 with a Z suffix, to the second."""
    return as_utc(moment).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class User(SQLModel, table=True):
    """An account; every file and upload belongs to exactly one user."""

    __table_args__ = (
        # "Carol" and "carol" are one account: they share a login throttle and a sign-in.
        Index("uq_user_username_lower", text("lower(username)"), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(index=True, unique=True, max_length=64)
    password_hash: str
    created_at: datetime = Field(default_factory=utcnow)
    # Sessions carry the generation they were signed in with; bumping it (sign-out, "sign
    # out everywhere", a new password) ends every older session at its next request.
    session_generation: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # Bytes this user may keep, unfinished uploads included; None means no limit.
    quota_bytes: int | None = Field(default=None, sa_type=BigInteger)


class FileBase(SQLModel):
    """Fields shared by a stored file and its public representation."""

    name: str = Field(max_length=255)
    # Byte counts are BIGINT: PostgreSQL's INTEGER stops at 2 GiB (SQLite's is 64-bit).
    size: int = Field(sa_type=BigInteger)
    sha256: str = Field(min_length=64, max_length=64)
    content_type: str = Field(max_length=255)


class Subtitle(SQLModel, table=True):
    """A subtitle file attached to a movie: the original as uploaded, and its WebVTT."""

    __tablename__ = "subtitle"
    __table_args__ = (
        # gc looks both keys up among the objects it lists.
        Index("uq_subtitle_source_key", "source_key", unique=True),
        Index("uq_subtitle_vtt_key", "vtt_key", unique=True),
        # SQLite would give a deleted row's id to the next one (see revision 0009).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    # Deleting a file takes its subtitles along (library.delete_file removes their objects).
    file_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("file.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    language: str | None = Field(default=None, max_length=35)  # BCP 47: "en", "pt-BR"
    label: str = Field(max_length=100)
    source: str = Field(default="file", max_length=16)  # "file": uploaded by its owner
    name: str = Field(max_length=255)  # the uploaded file's name
    source_key: str = Field(max_length=255)  # the original, as uploaded
    source_size: int = Field(sa_type=BigInteger)
    vtt_key: str = Field(max_length=255)  # its cues as WebVTT, what `<track>` loads
    vtt_size: int = Field(sa_type=BigInteger)
    # The upload it came from, so a repeated `complete` answers with it again.
    upload_id: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class StoredFile(FileBase, table=True):
    """A movie in the catalogue: who owns it, what it is and where its bytes live."""

    __tablename__ = "file"
    __table_args__ = (
        # The final guard against two racing uploads of the same file by one user.
        UniqueConstraint("owner_id", "sha256", name="uq_file_owner_sha256"),
        # The fingerprint pre-check looks files up by size; the list sorts by size with it.
        Index("ix_file_owner_size", "owner_id", "size"),
        # The list's other sorts: walking these indexes in order, a page of 50 is read
        # without sorting every file the owner has (10,000 files: 27 ms -> under 1 ms).
        Index("ix_file_owner_created", "owner_id", "created_at"),
        Index("ix_file_owner_lower_name", "owner_id", text("lower(name)")),
        Index("ix_file_owner_lower_title", "owner_id", text("lower(title)")),
        Index("ix_file_owner_year", "owner_id", "year"),
        Index("ix_file_owner_duration", "owner_id", "duration"),
        # gc looks poster keys up among the objects it lists; no two files share one.
        Index("uq_file_poster_key", "poster_key", unique=True),
        # SQLite would give the id of the newest file, once deleted, to the next one
        # recorded, whoever's it is (see revision 0009).
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    owner_id: int = Field(foreign_key="user.id", index=True)
    key: str = Field(unique=True, max_length=255)
    # SHA-256 of the first and last MiB (see library.could_be_duplicate); None if unknown.
    fingerprint: str | None = Field(default=None, max_length=64)
    # The pending upload this file came from, so a late second `complete` is a duplicate.
    upload_id: str | None = Field(default=None, index=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    # The film's title and year: parsed from the name when the file is recorded
    # (media/names.py), then the owner's to edit; renaming the file leaves them alone.
    title: str = Field(default="", max_length=200, sa_column_kwargs={"server_default": ""})
    year: int | None = None
    # What probing found: "pending" until the file's probe job has run, then "ready"
    # (media_info holds MediaInfo.to_json() as JSON text) or "failed" (media_error says why).
    media_status: str = Field(
        default="pending", max_length=16, sa_column_kwargs={"server_default": "pending"}
    )
    media_error: str | None = Field(default=None, max_length=500)
    media_info: str | None = Field(default=None, sa_type=Text)
    # Copied out of media_info, so the library can sort and filter by them.
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    hdr: str | None = Field(default=None, max_length=16)  # "HDR10", "HLG" or None
    # The poster's object in the same store as the movie (see posters.py), if it has one.
    poster_key: str | None = Field(default=None, max_length=255)
    # Subtitle files attached to it, loaded with it (one query for a whole page of files);
    # mapped below, after Subtitle.
    subtitles: ClassVar[list[Subtitle]]


# Mapped by SQLAlchemy itself: SQLModel's Relationship cannot read `list[Subtitle]` from a
# postponed annotation and would map a single subtitle.
inspect(StoredFile).add_property(
    "subtitles",
    relationship(
        Subtitle, lazy="selectin", order_by=col(Subtitle.id), cascade="all, delete-orphan",
        passive_deletes=True,
    ),
)


class ProbeJob(SQLModel, table=True):
    """A file waiting to be probed: one per file, claimed by one worker at a time."""

    __tablename__ = "probe_job"
    __table_args__ = (Index("uq_probe_job_file_id", "file_id", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    # Deleting a file takes its job along (library.delete_file also does it by hand).
    file_id: int = Field(
        sa_column=Column(Integer, ForeignKey("file.id", ondelete="CASCADE"), nullable=False)
    )
    # Claims so far, the current one included: a probe that crashes its process counts.
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # When the job may run (now, or later after a failure: see jobs.BACKOFF).
    due_at: datetime = Field(default_factory=utcnow, index=True)
    # A worker holds the job until then; past it, the job is taken to have died with it.
    leased_until: datetime | None = None
    # Which claim holds the lease: a worker whose lease was taken over records nothing.
    lease: str | None = Field(default=None, max_length=32)
    last_error: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


# --- what the API shows: every JSON shape it answers with, declared side by side ---------


def shown(model: SQLModel) -> dict[str, Any]:
    """A shape as JSON: the fields that were set, so each variant shows only its own (a
    form upload has `post` and no `part_size`; a check by hash has no `needs_sha256`)."""
    return model.model_dump(exclude_unset=True)


class VideoPublic(SQLModel):
    """The video stream of a file, with FFmpeg's names for codec, profile and pixels."""

    codec: str
    profile: str | None
    level: int | None
    width: int
    height: int
    fps: float | None
    pix_fmt: str | None
    hdr: str | None  # "HDR10", "HLG" or None


class AudioPublic(SQLModel):
    """One audio stream."""

    codec: str
    channels: int | None
    language: str | None


class SubtitlePublic(SQLModel):
    """One subtitle: a stream inside the file, or a subtitle file attached to it (those
    have an `id`, a `label` and the `url` of their WebVTT)."""

    language: str | None
    codec: str
    source: str  # "embedded" or "file"
    id: int | None = None
    label: str | None = None
    url: str | None = None


class MediaPublic(SQLModel):
    """What probing found: everything but `status` is empty until it is "ready"."""

    status: str  # "pending", "ready" or "failed"
    error: str | None
    duration: float | None
    container: str | None
    bitrate: int | None
    video: VideoPublic | None
    audio: list[AudioPublic]
    subtitles: list[SubtitlePublic]
    poster_url: str | None


class FilePublic(FileBase):
    """A file as the API shows it."""

    id: int
    created_at: str
    title: str
    year: int | None
    media: MediaPublic


class FilePagePublic(SQLModel):
    """One page of the user's files, with the totals of everything that matched."""

    files: list[FilePublic]
    total: int
    total_size: int
    page: int
    pages: int


class PostFormPublic(SQLModel):
    """A form upload: POST `fields`, then the file (last), to `url`."""

    url: str
    fields: dict[str, str]


class PutRequestPublic(SQLModel):
    """A single PUT upload: send the file's bytes to `url` with exactly these `headers`."""

    url: str
    headers: dict[str, str]


class UploadPublic(SQLModel):
    """A pending upload: `post` for a form upload, `put` for one PUT, `part_size` and
    `part_count` (and `checksum`, when each part carries its SHA-256) for multipart."""

    id: str
    method: str  # "post", "put" or "multipart"
    name: str
    size: int
    sha256: str | None
    fingerprint: str | None
    content_type: str
    created_at: str
    expires_at: str
    post: PostFormPublic | None = None
    put: PutRequestPublic | None = None
    part_size: int | None = None
    part_count: int | None = None
    checksum: str | None = None  # "sha256": ask for part URLs with each part's SHA-256


class PartUrlPublic(SQLModel):
    """Where to PUT one part of a multipart upload, and the headers to send with it."""

    part_number: int
    url: str
    headers: dict[str, str]


class StoredPartPublic(SQLModel):
    """A part the store already holds (to resume a multipart upload)."""

    part_number: int
    etag: str
    size: int


class DuplicateCheckPublic(SQLModel):
    """One answer of the duplicate check: by hash, or by fingerprint (hash while uploading)."""

    sha256: str | None = None
    fingerprint: str | None = None
    size: int | None = None
    duplicate: bool
    file: FilePublic | None
    needs_sha256: bool | None = None


class PendingUpload(SQLModel, table=True):
    """An upload the browser has started but not yet completed."""

    __tablename__ = "pending_upload"
    __table_args__ = (
        # One pending upload per file and user, so adding the same file again resumes it.
        UniqueConstraint("owner_id", "sha256", name="uq_pending_owner_sha256"),
        # The same for uploads that hash while uploading (their sha256 is still unknown).
        Index(
            "uq_pending_owner_fingerprint",
            "owner_id",
            "fingerprint",
            "size",
            unique=True,
            sqlite_where=text("sha256 IS NULL"),
            postgresql_where=text("sha256 IS NULL"),
        ),
        # Counting the owner's live uploads and their bytes (quotas) reads this index alone.
        Index("ix_pending_upload_owner_usage", "owner_id", "expires_at", "size"),
    )

    id: str = Field(primary_key=True, max_length=64)
    owner_id: int = Field(foreign_key="user.id", index=True)
    # None while a client hashes during the upload; it sends the hash at complete.
    sha256: str | None = Field(default=None, min_length=64, max_length=64)
    fingerprint: str | None = Field(default=None, max_length=64)
    size: int = Field(sa_type=BigInteger)
    name: str = Field(max_length=255)
    content_type: str = Field(max_length=255)
    key: str = Field(unique=True, max_length=255)
    method: str = Field(max_length=16)  # "post", "put" or "multipart"
    multipart_id: str | None = Field(default=None, max_length=1024)
    part_size: int | None = Field(default=None, sa_type=BigInteger)  # S3 allows 5 GiB
    # "sha256" when the multipart upload was created for parts that carry their SHA-256
    # (the store then refuses a part without it); None for uploads without checksums.
    checksum: str | None = Field(default=None, max_length=16)
    # The movie a subtitle upload attaches to; None for a movie (see subtitles.py).
    # library.delete_file discards these uploads with their movie.
    subtitle_for: int | None = Field(default=None, foreign_key="file.id")
    # Set while one request completes the upload, so a racing second one waits for it.
    completing_since: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime = Field(index=True)


class LoginAttempt(SQLModel, table=True):
    """A sign-in attempt, counted per account and per address to throttle guessing."""

    __tablename__ = "login_attempt"

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(index=True, max_length=300)  # "user:<id>", "name:<name>", "addr:<ip>"
    at: datetime = Field(default_factory=utcnow, index=True)
    # Recorded before the password is checked: True until the check has failed (or for
    # good, if the check never ended; see throttle.IN_FLIGHT_LIMIT).
    in_flight: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})


class ApiToken(SQLModel, table=True):
    """A personal API token: its owner, a name, and the SHA-256 of its secret (never the
    secret itself, which is shown once when the token is made)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(index=True, unique=True, min_length=64, max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    # Updated at most once a minute (see api_tokens.LAST_USED_PRECISION).
    last_used_at: datetime | None = None
    expires_at: datetime | None = None  # None: until revoked
    # Revoked tokens are kept (not deleted), so a script using one is told it was revoked.
    revoked_at: datetime | None = None
