"""The one place that turns errors into HTTP responses: JSON for the API, pages for people."""

from __future__ import annotations

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from movievault.errors import MovieVaultError


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


def _handle_domain(error: MovieVaultError) -> ResponseReturnValue:
    """Map a domain error to JSON for the API and a page for people."""
    if wants_json():
        return json_error(error.message, error.status)
    return _error_page(error.message, error.status)


def _handle_csrf(error: CSRFError) -> ResponseReturnValue:
    """A missing or stale CSRF token: refuse with a message that says how to recover."""
    if request.path.startswith("/api/") and not current_user.is_authenticated:
        # Signed out, a CSRF token could not help: the API's answer is the sign-in it needs.
        return json_error("Sign in first: this API needs a session.", 401)
    message = f"CSRF check failed ({error.description}). Reload the page and try again."
    if wants_json() or request.headers.get("HX-Request"):
        return json_error(message, 400)
    return _error_page(message, 400)


def _handle_http(error: HTTPException) -> ResponseReturnValue:
    """Keep HTTP errors (404, 405, 413...) in the same shape as domain errors."""
    status = error.code or 500
    message = error.description or error.name
    if wants_json():
        response = json_error(message, status)
        if "Allow" in dict(error.get_headers()):  # a 405 says which methods there are
            response.headers["Allow"] = dict(error.get_headers())["Allow"]
        return response
    return _error_page(message, status)


def _handle_unexpected(error: Exception) -> ResponseReturnValue:
    """Never show a traceback; log it and answer a plain 500."""
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
