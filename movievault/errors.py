"""Domain errors, and the one place that turns them into HTTP responses."""

from __future__ import annotations

from flask import Flask, Response, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException


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


def wants_json() -> bool:
    """Whether this request should get JSON errors rather than an HTML page."""
    return request.path.startswith("/api/") or request.path.startswith("/storage/")


def json_error(message: str, status: int) -> Response:
    """Build the API's error body `{"error": message}` with `status`."""
    response = jsonify(error=message)
    response.status_code = status
    return response


def _error_page(message: str, status: int) -> tuple[str, int]:
    """Render a readable error page."""
    return render_template("errors/error.html", message=message, status=status), status


def _handle_domain(error: MovieVaultError) -> Response | tuple[str, int]:
    """Map a domain error to JSON for the API and a page for people."""
    if wants_json():
        return json_error(error.message, error.status)
    return _error_page(error.message, error.status)


def _handle_csrf(error: CSRFError) -> Response | tuple[str, int]:
    """A missing or stale CSRF token: refuse with a message that says how to recover."""
    message = f"CSRF check failed ({error.description}). Reload the page and try again."
    if wants_json() or request.headers.get("HX-Request"):
        return json_error(message, 400)
    return _error_page(message, 400)


def _handle_http(error: HTTPException) -> Response | tuple[str, int]:
    """Keep HTTP errors (404, 405, 413...) in the same shape as domain errors."""
    status = error.code or 500
    message = error.description or error.name
    if wants_json():
        return json_error(message, status)
    return _error_page(message, status)


def _handle_unexpected(error: Exception) -> Response | tuple[str, int]:
    """Never show a traceback; log it and answer a plain 500."""
    from flask import current_app

    current_app.logger.exception("unhandled error: %s", error)
    message = "Something went wrong on the server. The error was logged."
    if wants_json():
        return json_error(message, 500)
    return _error_page(message, 500)


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(MovieVaultError, _handle_domain)
    app.register_error_handler(CSRFError, _handle_csrf)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
