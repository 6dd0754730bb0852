"""P3 and P5 in WebKitGTK and Firefox ESR: the page's hashing against in-memory hash-wasm,
and the browser's memory during an upload through the page, with Chromium's targets.

Each engine is driven as the cross-engine tests drive it (tests/engines/driver.py). P3 is
bench/p3_hashing.py's page and method (hash-wasm over bytes in memory vs. the app's
HashPool over the picked file, same rounds side by side). P5 sums the resident memory of
every process the browser started (WebKitWebDriver's MiniBrowser, WebKitWebProcess,
WebKitNetworkProcess...; firefox-esr and its content, socket and RDD processes), read from
/proc every 100 ms, minus Xvfb and the driver; the growth is the peak minus the sum just
before the file is picked. The tab's own process (WebKitWebProcess; Firefox's content
process of the page) is reported beside it.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from browser import RssSampler, static_origin  # noqa: E402
from common import (  # noqa: E402
    GIB,
    MIB,
    PASSWORD,
    USERNAME,
    Result,
    app_server,
    fmt_bytes,
    main_for,
    median,
    moto_server,
    random_file,
    temp_dir,
)

from tests.engines.driver import Browser, Firefox, WebKit  # noqa: E402
from tests.processes import NOT_THE_BROWSER, TAB, browser_rss, descendants  # noqa: E402

P3_TARGET = 0.9
P5_TARGET = 256 * MIB
SLICE = 8 * MIB
def start(engine: str, work: Path) -> Browser:
    """The engine's browser, as the tests start it."""
    return WebKit() if engine == "webkit" else Firefox(work / "firefox-profile")


def p3(page: Browser, path: Path, rounds: int) -> dict[str, Any]:
    """Hashing speeds (MB/s) of the page and of hash-wasm in memory, `rounds` rounds."""
    size = path.stat().st_size
    expected = hashlib.sha256(path.read_bytes()).hexdigest()
    speeds: dict[str, list[float]] = {"page": [], "memory": []}
    with static_origin() as origin:
        page.goto(f"{origin}/bench/p3.html")
        page.set_files("#file", [path])
        page.wait_for("return document.getElementById('status').textContent === 'ready'")
        for _ in range(rounds):
            memory = page.evaluate("return reference('memory', arguments[0])", SLICE)["ms"]
            app = page.evaluate("return hashWithApp()")
            if app["sha256"] != expected:
                raise RuntimeError(f"{page.name}: another SHA-256 than hashlib")
            speeds["memory"].append(size / memory / 1e3)
            speeds["page"].append(size / app["ms"] / 1e3)
    ratios = [p / m for p, m in zip(speeds["page"], speeds["memory"], strict=True)]
    return {"speeds_MBps": speeds, "ratio": median(ratios)}


def p5(page: Browser, path: Path, work: Path) -> dict[str, Any]:
    """Browser memory (all its processes, and the tab's) during one upload of `path`."""
    with moto_server(work) as endpoint, app_server(work, endpoint=endpoint) as server:
        page.goto(f"{server.url}/login")
        page.fill("input[name=username]", USERNAME)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for("return document.readyState === 'complete' &&"
                      " document.querySelector('[data-upload-panel]') !== null")
        root = page.root_pid
        time.sleep(1.0)  # let the page settle before the baseline
        before = sorted(browser_rss(root) for _ in range(5))[2]
        tab_before = browser_rss(root, TAB)
        started = time.perf_counter()
        names = {name for _, name in descendants(root)} - NOT_THE_BROWSER
        first = {name: browser_rss(root, {name}) for name in names}
        with RssSampler(lambda: browser_rss(root)) as whole, RssSampler(
            lambda: browser_rss(root, TAB)
        ) as tab, RssSampler(
            lambda: sum(max(0, browser_rss(root, {n}) - first[n]) for n in names if n not in TAB)
        ) as others:
            page.set_files("[data-upload-input]", [path])
            stage = page.wait_for(
                """const row = document.querySelector(".upload-row");
                   const stage = row && row.dataset.stage;
                   return ["done", "duplicate", "failed", "cancelled"].includes(stage) && stage""",
                timeout=1800,
            )
        seconds = time.perf_counter() - started
        if stage != "done":
            raise RuntimeError(f"{page.name}: the upload ended {stage}")
    return {
        "baseline": before, "peak": whole.peak, "growth": whole.peak - before,
        "tab_baseline": tab_before, "tab_growth": tab.peak - tab_before, "seconds": seconds,
        "other_processes_growth": others.peak,
    }


def run(*, quick: bool = False) -> Result:
    """Both measures in each engine."""
    p3_size, p5_size = (128 * MIB, 256 * MIB) if quick else (1 * GIB, 2 * GIB)
    rounds = 2 if quick else 3
    result = Result("P3+P5", "Hashing and upload memory in WebKitGTK and Firefox ESR")
    result.raw = {"p3_size": p3_size, "p5_size": p5_size}
    with temp_dir() as work:
        hashed = random_file(work / "movie.bin", p3_size)
        uploaded = random_file(work / "movie.mkv", p5_size)
        for engine in ("webkit", "firefox"):
            page = start(engine, Path(tempfile.mkdtemp(dir=work)))
            try:
                hashing = p3(page, hashed, rounds)
                memory = p5(page, uploaded, work)
            finally:
                page.close()
            result.raw[engine] = {"p3": hashing, "p5": memory}
            mb = {k: median(v) for k, v in hashing["speeds_MBps"].items()}
            result.row(
                f"P3 {engine}: page hashing of a {p3_size // MIB} MiB file ÷ hash-wasm in "
                f"memory ({mb['page']:.0f} / {mb['memory']:.0f} MB/s)",
                f"{hashing['ratio']:.2f}", f"≥ {P3_TARGET}", hashing["ratio"] >= P3_TARGET,
            )
            result.row(
                f"P5 {engine}: all its processes during a {p5_size // MIB} MiB upload "
                f"(sum of RSS {fmt_bytes(memory['baseline'])} before, peak "
                f"{fmt_bytes(memory['peak'])}; the tab's process "
                f"+{fmt_bytes(memory['tab_growth'])}, the others at most "
                f"+{fmt_bytes(memory['other_processes_growth'])}; {memory['seconds']:.0f} s)",
                f"+{fmt_bytes(memory['growth'])}", f"≤ +{fmt_bytes(P5_TARGET)}",
                memory["growth"] <= P5_TARGET,
            )
    result.notes.append(
        f"{rounds} rounds of P3, in-memory and page side by side; RSS counts shared pages "
        "once per process, so sums overstate totals: the growth is what matters."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
