"""The errors the domain raises on purpose; `handlers.py` turns them into HTTP responses.

No Flask here: the domain (uploads, catalogue, accounts, storage) raises these and stays
importable and testable without a web framework. Each class carries the HTTP status its
handler answers with, the one piece of HTTP the domain knows.
"""

from __future__ import annotations


class MovieVaultError(Exception):
    """Base class of every error the domain raises on purpose."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(MovieVaultError):
    """The request's data does not meet the rules (type, range, format)."""

    status = 400


class NotFound(MovieVaultError):
    """No such thing for this user (another user's ids are not found either)."""

    status = 404


class Conflict(MovieVaultError):
    """The request clashes with work already under way (e.g. an upload being completed)."""

    status = 409


class UploadMismatch(MovieVaultError):
    """What was stored does not match what the client declared (size, parts, hash)."""

    status = 422


class StorageRejected(MovieVaultError):
    """The store refused what the client sent (bad part, unknown upload, part too small)."""

    status = 422


class AccessDenied(StorageRejected):
    """A storage URL that is tampered with, expired or used for something else."""

    status = 403


class NoSuchKey(StorageRejected):
    """A signed GET for an object that is not (or no longer) stored."""

    status = 404


class NoSuchUpload(StorageRejected):
    """A part sent to a multipart upload that was completed, aborted or never existed."""

    status = 404


class StorageUnavailable(MovieVaultError):
    """The store could not be reached or failed on its side; nothing was recorded."""

    status = 503


class ProbeFailed(MovieVaultError):
    """A stored file cannot be read as a movie: not a video, truncated or corrupt.

    `reason` says so in words a person understands; the file stays downloadable.
    """

    status = 422

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProbeTimeout(ProbeFailed):
    """Reading the movie took longer than its time limit (a stuck store, a pathological file)."""


class SubtitleInvalid(MovieVaultError):
    """A subtitle file that cannot be read as SubRip, WebVTT or SubStation Alpha cues."""

    status = 422


class SubtitleTooLarge(SubtitleInvalid):
    """A subtitle file larger than any real one (see media/subtitle_files.MAX_SIZE)."""

    status = 413


class CatalogueUnavailable(MovieVaultError):
    """The database could not be written (disk full, locked too long); nothing changed."""

    status = 503


class QuotaExceeded(MovieVaultError):
    """The upload would take the user past a limit: their quota or their pending uploads."""

    status = 413


class InsufficientStorage(MovieVaultError):
    """The store's disk is down to its free-space reserve; new uploads must wait."""

    status = 507


class TooManyAttempts(MovieVaultError):
    """Login throttled: too many failed attempts for this username or address."""

    status = 429


class ImportRefused(MovieVaultError):
    """A file cannot be imported as asked: a hard link across filesystems, `--link` on a
    bucket, a file that changed while it was being imported."""

    status = 422


class TokenRejected(MovieVaultError):
    """An API token that is unknown, revoked or expired.

    `guessed` is True for a secret no token ever had: only those count towards the login
    throttle (a revoked or expired token was once given out; using it is no guess).
    """

    status = 401

    def __init__(self, message: str, *, guessed: bool) -> None:
        super().__init__(message)
        self.guessed = guessed
