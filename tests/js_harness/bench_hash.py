"""Hashing throughput in headless Chromium (benchmark P3), measured side by side.

Run: python tests/js_harness/bench_hash.py [--size-mib 1024] [--rounds 5]

Each round measures, in the same browser and on the same file (warm in the page cache):
the app's hash worker, hash-wasm over data already in memory, reading the file by slices
without hashing, and a naive read-then-hash loop. Medians over the rounds are printed, with
the app's throughput as a ratio of the in-memory figure (P3 target: >= 0.9).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

from harness import chromium, origins, serve

MiB = 1024 * 1024


def write_file(path: Path, size: int) -> str:
    """A file of pseudo-random bytes (repeated 64 MiB block); returns its SHA-256."""
    import os

    block = os.urandom(min(size, 64 * MiB))
    digest = hashlib.sha256()
    with path.open("wb") as f:
        left = size
        while left:
            chunk = block[: min(left, len(block))]
            f.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def hashlib_speed(path: Path) -> float:
    """Python's hashlib over the same file, in MB/s."""
    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(8 * MiB):
            digest.update(chunk)
    return path.stat().st_size / (time.perf_counter() - t0) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--slice-mib", type=float, default=8)
    parser.add_argument(
        "--read-ahead",
        type=int,
        nargs="*",
        default=[],
        help="also measure the app with these read-ahead depths",
    )
    args = parser.parse_args()
    size = args.size_mib * MiB
    slice_size = int(args.slice_mib * MiB)

    variants = {
        "app (reader worker)": ("app", {"sliceSize": slice_size}),
        "app, reads on hash thread": ("app", {"inline": True, "sliceSize": slice_size}),
        **{
            f"app, read-ahead {n}": ("app", {"readAhead": n, "sliceSize": slice_size})
            for n in args.read_ahead
        },
        "hash-wasm in memory": ("bench", {"mode": "memory", "sliceSize": slice_size}),
        "read slices only": ("bench", {"mode": "read", "sliceSize": slice_size}),
        "naive read-then-hash": ("bench", {"mode": "naive", "sliceSize": slice_size}),
    }
    speeds: dict[str, list[float]] = {name: [] for name in variants}

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.bin"
        expected = write_file(path, size)
        speeds["Python hashlib"] = [hashlib_speed(path) for _ in range(args.rounds)]
        with serve() as port, chromium() as browser:
            page = browser.new_page()
            page.goto(f"{origins(port)['plain-http']}/harness/hash.html")
            page.wait_for_function("document.getElementById('status').textContent === 'ready'")
            page.set_input_files("#file", str(path))
            for round_no in range(args.rounds):
                for name, (kind, opts) in variants.items():
                    if kind == "app":
                        got = page.evaluate("o => hashChosen(o)", opts)
                        assert got["sha256"] == expected, "the app's hash is wrong"
                        ms = got["wallMs"]
                    else:
                        got = page.evaluate("([m, o]) => benchRun(m, o)", [opts["mode"], opts])
                        ms = got["ms"]
                    speeds[name].append(size / ms / 1e3)
                figures = ", ".join(f"{n}={s[-1]:.0f}" for n, s in speeds.items())
                print(f"round {round_no + 1}: {figures}", flush=True)

    # Ratios are taken within each round (same load on this noisy machine), then the median.
    memory = speeds["hash-wasm in memory"]
    print(
        f"\n{args.size_mib} MiB file, slices of {args.slice_mib:g} MiB, "
        f"median of {args.rounds} rounds (MB/s = 10^6 bytes/s)"
    )
    print(f"{'':30} {'MB/s':>7} {'÷ in-memory':>12}")
    for name, values in speeds.items():
        ratio = statistics.median(v / m for v, m in zip(values, memory, strict=True))
        print(f"{name:30} {statistics.median(values):7.0f} {ratio:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
