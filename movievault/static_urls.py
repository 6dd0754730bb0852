"""Static files under versioned URLs, cached for a year: /static/<version>/js/app.js.

The version is a digest of the whole static folder, so any change to any file gives every
file a new URL. The whole folder, not each file: the ES modules import one another by
relative URLs (`./api.js`), which a per-file version could not reach, while under one
versioned folder they resolve inside it. A request for an unversioned path, or for another
version (a page from before a deploy), is served the current file without the long cache.

The Lambda function turns this on (movievault/serverless.py): there every request for a
static file is an invocation, paid for, and browsers and a CDN should keep them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from flask import Flask, Response, g, request

#: A year: the URL changes whenever a file does.
MAX_AGE = 365 * 24 * 3600
_EXTENSION = "movievault.static_version"


def folder_version(folder: Path) -> str:
    """A short digest of every file's path and bytes under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def static_version(app: Flask) -> str | None:
    """The version in `app`'s static URLs (None when they are not versioned)."""
    version: str | None = app.extensions.get(_EXTENSION)
    return version


def init_app(app: Flask) -> None:
    """Version `url_for('static', ...)`, accept versioned paths, and cache them long."""
    if app.static_folder is None:
        return
    version = folder_version(Path(app.static_folder))
    app.extensions[_EXTENSION] = version

    def add_version(endpoint: str, values: dict[str, Any]) -> None:
        """Put the version in front of a static file's name when a URL is built."""
        if endpoint == "static" and "filename" in values:
            values["filename"] = f"{version}/{values['filename']}"

    def strip_version(endpoint: str | None, values: dict[str, Any] | None) -> None:
        """Take a version off the requested name (any version: files stay reachable)."""
        if endpoint != "static" or not values or "filename" not in values:
            return
        first, _, rest = str(values["filename"]).partition("/")
        if rest and len(first) == len(version) and all(c in "0123456789abcdef" for c in first):
            values["filename"] = rest
            g.static_current = first == version

    def cache_long(response: Response) -> Response:
        """A year, and never revalidated, for a file asked for under the current version."""
        if request.endpoint == "static" and g.get("static_current") and response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}, immutable"
        return response

    app.url_defaults(add_version)
    app.url_value_preprocessor(strip_version)
    app.after_request(cache_long)
