"""P3: SHA-256 throughput of the page's hashing of a 1 GiB file in headless Chromium.

The page's hashing is the app's own code: static/js/hash-pool.js driving
static/js/hash-worker.js (hash-wasm in a module worker, slices read by a nested worker).
In the same browser, on the same file (random bytes, warm in the page cache), each round
also measures hash-wasm over data already in memory (the ceiling: how well is reading
hidden behind hashing?) and reading the file by 8 MiB slices without hashing; Python's
hashlib hashes the same file too. Ratios are taken within each round, then the median.
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import chromium, static_origin  # noqa: E402
from common import GIB, MIB, Result, main_for, median, random_file, temp_dir  # noqa: E402

TARGET = 0.9
SLICE = 8 * MIB
#: Other settings of the page's own hashing (HashPool options), measured beside the default.
VARIANTS = {
    "16 MiB slices": {"sliceSize": 16 * MIB},
    "4 MiB slices, 4 reads ahead": {"sliceSize": 4 * MIB, "readAhead": 4},
}


def hashlib_file(path: Path) -> tuple[float, str]:
    """Python's hashlib over the file read in 8 MiB chunks: (seconds, hex digest)."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(SLICE):
            digest.update(chunk)
    return time.perf_counter() - started, digest.hexdigest()


def run(*, quick: bool = False) -> Result:
    """Measure the page's hashing against the references, several rounds."""
    size = 128 * MIB if quick else 1 * GIB
    rounds = 2 if quick else 5
    result = Result("P3", "In-browser SHA-256 throughput")
    names = ("page", "memory", "read", "hashlib", *VARIANTS)
    speeds: dict[str, list[float]] = {k: [] for k in names}
    with temp_dir() as work:
        path = random_file(work / "movie.bin", size)
        _, expected = hashlib_file(path)  # also warms the page cache
        with static_origin() as origin, chromium() as browser:
            page = browser.new_page()
            page.goto(f"{origin}/bench/p3.html")
            page.set_input_files("#file", str(path))
            page.wait_for_function("document.getElementById('status').textContent === 'ready'")
            for _ in range(rounds):
                memory = page.evaluate("s => reference('memory', s)", SLICE)["ms"]
                app = page.evaluate("() => hashWithApp()")
                if app["sha256"] != expected:
                    raise RuntimeError("the page computed another SHA-256 than hashlib")
                read = page.evaluate("s => reference('read', s)", SLICE)["ms"]
                for name, options in VARIANTS.items():
                    variant = page.evaluate("o => hashWithApp(o)", options)
                    if variant["sha256"] != expected:
                        raise RuntimeError(f"{name}: another SHA-256 than hashlib")
                    speeds[name].append(size / variant["ms"] / 1e3)
                seconds, _ = hashlib_file(path)
                speeds["memory"].append(size / memory / 1e3)
                speeds["page"].append(size / app["ms"] / 1e3)
                speeds["read"].append(size / read / 1e3)
                speeds["hashlib"].append(size / seconds / 1e6)
    ratio = {
        k: median([v / m for v, m in zip(speeds[k], speeds["memory"], strict=True)])
        for k in speeds
    }
    mb = {k: median(v) for k, v in speeds.items()}
    result.raw = {"size": size, "speeds_MBps": speeds, "ratios_to_memory": ratio}
    result.row(
        f"page hashing of a {size // MIB} MiB file ÷ hash-wasm in memory "
        f"({mb['page']:.0f} / {mb['memory']:.0f} MB/s)",
        f"{ratio['page']:.2f}", f"≥ {TARGET}", ratio["page"] >= TARGET,
    )
    result.row(
        f"page hashing ÷ reading the file by 8 MiB slices, no hashing ({mb['read']:.0f} MB/s)",
        f"{median([p / r for p, r in zip(speeds['page'], speeds['read'], strict=True)]):.2f}",
    )
    result.row(
        f"page hashing ÷ Python hashlib over the same file ({mb['hashlib']:.0f} MB/s)",
        f"{median([p / h for p, h in zip(speeds['page'], speeds['hashlib'], strict=True)]):.2f}",
    )
    for name in VARIANTS:
        result.row(
            f"page hashing with {name} ÷ in memory ({mb[name]:.0f} MB/s)",
            f"{ratio[name]:.2f}",
        )
    result.notes.append(
        f"MB/s = 10^6 bytes/s; {rounds} rounds, each measuring in-memory, page and read "
        "side by side; the file is warm in the page cache, as it is right after a user picks "
        "a file they just copied (a cold disk would bound every browser figure alike)."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
