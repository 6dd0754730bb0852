"""P5: Chromium's memory during a 2 GiB upload through the page; the app's before and after.

The same set-up as P4 (real page, real app under waitress, moto's S3 server). While the
page hashes and uploads a 2 GiB file, the resident memory of every Chromium process
(browser, renderer, GPU, network and storage services: all descendants of this process
named chrom*) is read from /proc every 100 ms and summed. Growth is the peak minus the sum
just before the file was picked. The app's RSS is read before and after the upload.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import (  # noqa: E402
    RssSampler,
    chromium,
    chromium_breakdown,
    chromium_rss,
    static_origin,
)
from common import (  # noqa: E402
    GIB,
    MIB,
    Result,
    app_server,
    fmt_bytes,
    main_for,
    moto_server,
    random_file,
    rss_bytes,
    temp_dir,
)
from p4_upload import open_library, stage_split, upload_through_page  # noqa: E402

TARGET_GROWTH = 256 * MIB
APP_FLAT = 32 * MIB  # what "flat" allows for the app: allocator noise, not the file


def signed(count: float) -> str:
    """A byte count with its sign: +12.0 MiB, -3.0 MiB."""
    return ("+" if count >= 0 else "-") + fmt_bytes(abs(count))


def renderer_heap() -> int:
    """Chromium renderers' heap (the pages and their workers live there)."""
    return chromium_breakdown().get("renderer anon", 0)


def read_growth(browser: Any, path: Path) -> dict[str, float]:
    """Renderer heap growth while a worker only reads the file by 8 MiB slices, as
    read-worker.js does (a new ArrayBuffer each), and with a BYOB reader into one buffer."""
    growth: dict[str, float] = {}
    with static_origin() as origin:
        page = browser.new_page()
        page.goto(f"{origin}/bench/p5-read.html")
        page.set_input_files("#file", str(path))
        page.wait_for_function("document.getElementById('status').textContent === 'ready'")
        for mode in ("slices", "byob"):
            time.sleep(1.0)
            before = renderer_heap()
            with RssSampler(renderer_heap) as heap:
                done = page.evaluate("m => readAll(m)", mode)
            growth[mode] = heap.peak - before
            growth[f"{mode} MB/s"] = path.stat().st_size / done["ms"] / 1e3
        page.close()
    return growth


def run(*, quick: bool = False) -> Result:
    """Upload once while sampling memory."""
    size = 256 * MIB if quick else 2 * GIB
    result = Result("P5", "Memory during a browser upload")
    with temp_dir() as work:
        path = random_file(work / "movie.mkv", size)
        with moto_server(work) as endpoint, app_server(
            work, endpoint=endpoint
        ) as server, chromium() as browser:
            page = open_library(browser, server)
            time.sleep(1.0)  # let the page settle before the baseline
            before = [chromium_rss() for _ in range(5)]
            baseline = sorted(before)[len(before) // 2]
            app_before = server.rss()
            by_type = RssSampler(chromium_breakdown, interval=0.5)
            with RssSampler() as browser_mem, RssSampler(
                lambda: rss_bytes(server.pid)
            ) as app_mem, by_type:
                done = upload_through_page(page, path, 1, timeout_s=1200)
            app_after = server.rss()
            page.close()
            reading = read_growth(browser, path)
    growth = browser_mem.peak - baseline
    app_growth = app_after - app_before
    result.raw = {
        "size": size, "chromium_baseline": baseline, "chromium_peak": browser_mem.peak,
        "chromium_samples": browser_mem.samples, "app_before": app_before,
        "app_after": app_after, "app_peak": app_mem.peak, "seconds": done["seconds"],
        "stages": stage_split(done["stages"]),
        "by_type_samples": by_type.samples,
    }
    # Which processes grew: the sample with the largest total, against the first one.
    if by_type.samples:
        first = by_type.samples[0][1]
        top = max(by_type.samples, key=lambda sample: sum(sample[1].values()))[1]
        growth_by_type = {k: v - first.get(k, 0) for k, v in top.items()}
        result.raw["growth_by_type_at_peak"] = growth_by_type
    result.row(
        f"Chromium, all processes, during a {size // MIB} MiB upload "
        f"(sum of RSS {fmt_bytes(baseline)} before, peak {fmt_bytes(browser_mem.peak)})",
        f"+{fmt_bytes(growth)}", f"≤ +{fmt_bytes(TARGET_GROWTH)}", growth <= TARGET_GROWTH,
    )
    result.row(
        f"app RSS before / after (peak {fmt_bytes(app_mem.peak)} during)",
        f"{fmt_bytes(app_before)} / {fmt_bytes(app_after)}", "flat",
        abs(app_growth) <= APP_FLAT,
    )
    result.raw["read_only_growth"] = reading
    result.row(
        "renderer heap while a worker only reads the file by 8 MiB slices: "
        f"slice().arrayBuffer() per slice (as read-worker.js) {signed(reading['slices'])} "
        f"({reading['slices MB/s']:.0f} MB/s), a BYOB reader into one recycled buffer "
        f"{signed(reading['byob'])} ({reading['byob MB/s']:.0f} MB/s)",
        "",
    )
    grown = result.raw.get("growth_by_type_at_peak", {})
    if grown:
        result.row(
            "growth at the peak, by Chromium process",
            ", ".join(f"{k} {fmt_bytes(v)}" for k, v in sorted(grown.items(), key=lambda x: -x[1])
                      if abs(v) >= 8 * MIB),
        )
    result.notes.append(
        "RSS counts shared pages once per process, so the sum overstates Chromium's total; "
        "the growth is what matters. The app's RSS is that of `movievault serve`."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
