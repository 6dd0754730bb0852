"""Changing a running app's settings in a test, as if it had been started with them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Flask

from movievault.config import settings


def override_settings(app: Flask, **changes: Any) -> None:
    """Replace settings of `app` (lower-case names, e.g. url_expires=2) from now on."""
    app.extensions["movievault.settings"] = replace(settings(app), **changes)
    for name, value in changes.items():  # Flask's own view, for anything that reads it
        app.config[name.upper()] = value
