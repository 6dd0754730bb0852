"""A browser's processes and their memory, read from /proc (Linux), for the tests that
check memory and for the benchmarks under bench/."""

from __future__ import annotations

import os
from pathlib import Path

#: Processes under a WebDriver browser's root that are not the browser's own memory.
NOT_THE_BROWSER = frozenset({"Xvfb", "WebKitWebDriver"})
#: The process names (comm, 15 characters at most) of the page's own renderer.
TAB = frozenset({"WebKitWebProces", "Isolated Web Co", "Web Content"})


def children() -> dict[int, list[int]]:
    """Parent pid -> child pids, for every process we can see."""
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after it.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def descendants(root: int) -> list[tuple[int, str]]:
    """(pid, name) of every process under `root`, and `root` itself."""
    tree = children()
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        stack.extend(tree.get(pid, []))
        try:
            found.append((pid, Path(f"/proc/{pid}/comm").read_text().strip()))
        except OSError:
            continue
    return found


def rss_bytes(pid: int) -> int:
    """Resident memory of one process, from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def rss_by_pid(root: int, names: set[str] | frozenset[str] | None = None, *,
               leave_out: frozenset[str] = frozenset()) -> dict[int, int]:
    """RSS of each of the browser's processes under `root` (only those called `names`, if
    given; never those in `leave_out`)."""
    found: dict[int, int] = {}
    for pid, name in descendants(root):
        if name in NOT_THE_BROWSER | leave_out or (names is not None and name not in names):
            continue
        try:
            found[pid] = rss_bytes(pid)
        except OSError:
            continue
    return found


def browser_rss(root: int, names: set[str] | frozenset[str] | None = None) -> int:
    """Summed RSS of the browser's processes under `root` (only those called `names`)."""
    return sum(rss_by_pid(root, names).values())
