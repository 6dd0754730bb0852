"""Template helpers: sizes and dates for people, and what every page needs to know."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, request

from movievault import display
from movievault.backends import get_storage
from movievault.models import StoredFile
from movievault.units import human_size


def human_date(moment: datetime) -> str:
    """Format a stored UTC datetime as a short, unambiguous date and time."""
    return moment.strftime("%Y-%m-%d %H:%M") + " UTC"


def page_window(current: int, pages: int, around: int = 2) -> list[int | None]:
    """Page numbers to link: the first, the last and those near `current`; None is a gap."""
    near = range(max(1, current - around), min(pages, current + around) + 1)
    numbers: list[int | None] = []
    previous = 0
    for number in sorted({1, pages, *near}):
        if number - previous > 1:
            numbers.append(None)
        numbers.append(number)
        previous = number
    return numbers


def _page_context() -> dict[str, Any]:
    """Values every template can use: the store's warning (memory only, a missing disk)."""
    return {"storage_warning": get_storage().notice()}


def movie_facts(stored: StoredFile) -> display.MovieFacts:
    """What the pages show of a movie, with URLs under the app's path."""
    return display.movie_facts(stored, root=request.script_root)


def init_app(app: Flask) -> None:
    """Register the filters and the context."""
    app.add_template_filter(human_size, "filesize")
    app.add_template_filter(human_date, "date")
    app.add_template_global(page_window, "page_window")
    app.add_template_global(movie_facts, "movie_facts")
    app.context_processor(_page_context)
