"""The documents name only tests that exist: a claim in docs/SECURITY.md points at the
test that shows it, and a test removed or renamed must take the claim's reference along."""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

from tests.support import ROOT

DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
# `tests/x.py`, `tests/x.py::test_y`, and `::test_z` for another test of the file named last.
REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`|`::(\w+)`")


@cache
def functions(path: Path) -> frozenset[str]:
    """The names of the functions a test module defines at its top level."""
    tree = ast.parse(path.read_text())
    return frozenset(node.name for node in tree.body if isinstance(node, ast.FunctionDef))


def references(document: Path) -> list[tuple[str, str | None]]:
    """Every (test file, test name or None) the document names, in order."""
    found: list[tuple[str, str | None]] = []
    current = None
    for match in REFERENCE.finditer(document.read_text()):
        path, name, short = match.groups()
        if path:
            current = path
            found.append((path, name))
        else:
            assert current, f"{document.name}: `::{short}` before any test file is named"
            found.append((current, short))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_test_a_document_names_exists(document: Path) -> None:
    missing = [
        f"{path}::{name}" if name else path
        for path, name in references(document)
        if not (ROOT / path).is_file() or (name and name not in functions(ROOT / path))
    ]
    assert missing == [], f"{document.name} names tests that do not exist"


def test_the_security_page_names_its_tests() -> None:
    # Guards the check above: the page's references are found at all.
    assert len(references(ROOT / "docs" / "SECURITY.md")) > 100
