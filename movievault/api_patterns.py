"""Pieces of JSON Schema the API's shapes (api_schema.py) use: required groups, fields
that are never null, and the patterns of names and titles, made from the Unicode data
their checks use rather than written out by hand."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from movievault.media.names import is_dropped


def one_of(*fields: tuple[str, ...]) -> dict[str, Any]:
    """JSON Schema: at least one of these groups of fields is present and not null."""
    return {"anyOf": [
        {"required": list(group), "properties": {name: {"not": {"type": "null"}} for name in group}}
        for group in fields
    ]}


def char_class(pick: Callable[[str], bool], *, negated: bool = False) -> str:
    """A regex class of the characters of the Basic Multilingual Plane that `pick` takes,
    as \\uXXXX ranges (a syntax every regex dialect of JSON Schema tools reads).

    Past the BMP there is no syntax all dialects share, so a negated class takes every
    character there; the checks agree except for the few format and private-use ones
    (tags from U+E0000, planes 15 and 16), which they drop.
    """
    ranges: list[list[int]] = []
    for point in range(0x10000):
        if pick(chr(point)):
            if ranges and ranges[-1][1] == point - 1:
                ranges[-1][1] = point
            else:
                ranges.append([point, point])
    body = "".join(
        f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges
    )
    return f"[{'^' if negated else ''}{body}]"


@cache
def visible_pattern() -> str:
    """A title: at least one character that is neither dropped nor whitespace."""
    return char_class(lambda char: is_dropped(char) or char.isspace(), negated=True)


@cache
def file_name_pattern() -> str:
    """A file name: its last part (after any / or \\), once cleaned, is neither empty nor
    "." nor "..": it holds a visible character other than a dot, or two dots with more
    dots or spaces between them. The classes are made from the Unicode data the check uses."""
    other = char_class(lambda c: is_dropped(c) or c.isspace() or c in "./\\", negated=True)
    space = char_class(lambda c: not is_dropped(c) and c.isspace())
    part = r"[^/\\]*"
    # A lookahead for the end, not `$`: some dialects let `$` match before a final newline.
    return (rf"^(?:[\s\S]*[/\\])?{part}(?:{other}|\.{part}(?:\.|{space}){part}\.)"
            rf"{part}(?![\s\S])")


def pattern_of(make: Callable[[], str]) -> Callable[[dict[str, Any]], None]:
    """Set the string option's pattern when the document is made (it is large: made once)."""

    def extra(schema: dict[str, Any]) -> None:
        for option in schema.get("anyOf", [schema]):
            if option.get("type") == "string":
                option["pattern"] = make()

    return extra


def both(*extras: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    """Several changes to a field's schema, in order."""

    def extra(schema: dict[str, Any]) -> None:
        for change in extras:
            change(schema)

    return extra


def not_null(schema: dict[str, Any]) -> None:
    """A field that may be left out but, when sent, is never null: only its type stays."""
    options = [option for option in schema.pop("anyOf", []) if option.get("type") != "null"]
    if options:
        schema.update(options[0])
    schema.pop("default", None)
