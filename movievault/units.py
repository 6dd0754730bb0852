"""Sizes for people: used by the pages and by messages the domain writes (no Flask)."""

from __future__ import annotations

_UNITS = ("bytes", "KB", "MB", "GB", "TB")


def human_size(size: int) -> str:
    """Format a byte count the way file managers do (1,000-based, one decimal)."""
    value = float(size)
    for unit in _UNITS:
        if value < 1000 or unit == _UNITS[-1]:
            if unit == "bytes":
                return f"{int(value)} byte" + ("" if int(value) == 1 else "s")
            return f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
