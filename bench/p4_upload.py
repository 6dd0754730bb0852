"""P4: end-to-end browser upload of a 1 GiB file through the real page, against boto3.

The app runs under waitress (with the counting middleware, so the same run also says how
many requests and bytes the real page sends per file) against moto's S3 server. Headless
Chromium signs in through the login form, opens the library page and picks the file with
the page's own file input; the time runs until the file's row reaches "done" (hash, check,
create, part PUTs straight to S3, complete). In the same round boto3's `upload_file`
(default transfer settings) sends the same file to the same endpoint. The order alternates
between rounds; the ratio is taken per round, then the median.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from browser import chromium  # noqa: E402
from common import (  # noqa: E402
    GIB,
    MIB,
    PASSWORD,
    USERNAME,
    AppServer,
    Result,
    app_server,
    main_for,
    median,
    moto_server,
    random_file,
    s3_client,
    temp_dir,
)

TARGET = 1.2

# Records every stage change of the upload panel's rows, with the page's clock.
STAGE_LOG = """() => {
  window.benchStages = [];
  document.querySelector("[data-upload-panel]").addEventListener("file-stage", (e) => {
    window.benchStages.push([e.detail.stage, performance.now()]);
  });
}"""

ROW_FINAL = """n => {
  const rows = document.querySelectorAll(".upload-row");
  const stage = rows.length >= n ? rows[n - 1].dataset.stage : null;
  return ["done", "duplicate", "failed", "cancelled"].includes(stage) ? stage : false;
}"""

DELETE_ALL = """async () => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  const { files } = await (await fetch("/api/files")).json();
  for (const file of files) {
    await fetch(`/api/files/${file.id}`, { method: "DELETE", headers: { "X-CSRFToken": token } });
  }
  return files.length;
}"""


def open_library(browser: Any, server: AppServer) -> Any:
    """A page signed in through the login form, showing the library with its upload panel."""
    page = browser.new_page()
    page.goto(f"{server.url}/login")
    page.fill("input[name=username]", USERNAME)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("[data-upload-panel]")
    page.evaluate(STAGE_LOG)
    return page


def upload_through_page(page: Any, path: Path, row: int, timeout_s: float) -> dict[str, Any]:
    """Pick `path` with the page's file input; wait until its row (the `row`-th) is final."""
    page.evaluate("() => { window.benchStages = []; }")
    started = time.perf_counter()
    page.set_input_files("[data-upload-input]", str(path))
    handle = page.wait_for_function(ROW_FINAL, arg=row, polling=50, timeout=timeout_s * 1000)
    seconds = time.perf_counter() - started
    stage = handle.json_value()
    if stage != "done":
        detail = page.locator(".upload-row").nth(row - 1).inner_text()
        raise RuntimeError(f"the page's upload ended {stage}: {detail}")
    stages = page.evaluate("() => window.benchStages")
    return {"seconds": seconds, "stages": stages}


def stage_split(stages: list[list[Any]]) -> dict[str, float]:
    """Seconds spent in each stage, from the page's stage log."""
    spent: dict[str, float] = {}
    for (name, at), (_, after) in zip(stages, stages[1:], strict=False):
        spent[name] = spent.get(name, 0.0) + (after - at) / 1000
    return spent


def boto3_upload(endpoint: str, bucket: str, path: Path) -> float:
    """Seconds for boto3's upload_file (default TransferConfig), then delete the object."""
    s3 = s3_client(endpoint)
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, "bench/boto3-copy")
    seconds = time.perf_counter() - started
    s3.delete_object(Bucket=bucket, Key="bench/boto3-copy")
    return seconds


def control_plane(records: list[dict[str, Any]]) -> tuple[dict[str, int], int]:
    """Requests by route and bytes received by the app, for one upload through the page."""
    api = [r for r in records if r["route"].startswith("api.")]
    return dict(Counter(r["route"] for r in api)), sum(r["received"] for r in api)


def run(*, quick: bool = False) -> Result:
    """Time the page against boto3, several rounds."""
    size = 160 * MIB if quick else 1 * GIB
    rounds = 2 if quick else 3
    result = Result("P4", "Browser upload vs boto3")
    pairs: list[dict[str, Any]] = []
    with temp_dir() as work:
        path = random_file(work / "movie.mkv", size)
        with moto_server(work) as endpoint, app_server(
            work, endpoint=endpoint, counted=True
        ) as server, chromium() as browser:
            page = open_library(browser, server)
            bucket = server.env["MOVIEVAULT_S3_BUCKET"]
            for number in range(1, rounds + 1):
                boto_first = number % 2 == 1
                boto = boto3_upload(endpoint, bucket, path) if boto_first else 0.0
                server.reset()
                done = upload_through_page(page, path, number, timeout_s=600)
                routes, received = control_plane(server.records())
                if not boto_first:
                    boto = boto3_upload(endpoint, bucket, path)
                page.evaluate(DELETE_ALL)  # the next round uploads the same bytes anew
                pairs.append({"page": done["seconds"], "boto3": boto,
                              "stages": stage_split(done["stages"]), "routes": routes,
                              "received": received})
    ratio = median([p["page"] / p["boto3"] for p in pairs])
    page_s = median([p["page"] for p in pairs])
    boto_s = median([p["boto3"] for p in pairs])
    hashing = median([p["stages"].get("hashing", 0.0) for p in pairs])
    uploading = median([p["stages"].get("uploading", 0.0) for p in pairs])
    result.raw = {"size": size, "rounds": pairs}
    result.row(
        f"page upload of {size // MIB} MiB ÷ boto3 upload_file ({page_s:.1f} s / {boto_s:.1f} s;"
        f" page: hashing {hashing:.1f} s, uploading {uploading:.1f} s)",
        f"{ratio:.2f}×", f"≤ {TARGET}×", ratio <= TARGET,
    )
    last = pairs[-1]
    calls = sum(last["routes"].values())
    result.rows.append(type(result.rows[0])(
        "P7", f"the real page, one {size // MIB} MiB file: "
        + ", ".join(f"{k} {v}" for k, v in sorted(last["routes"].items())),
        f"{calls} requests", "", None,
    ))
    result.rows.append(type(result.rows[0])(
        "P1", f"the real page, one {size // MIB} MiB file (browser headers, cookie)",
        f"{last['received']:,} B received", "≤ 4 KiB", last["received"] <= 4096,
    ))
    result.notes.append(
        f"{rounds} rounds; the file is random and warm in the page cache; moto's S3 server "
        "runs in its own process on 127.0.0.1; the page uses its defaults (multipart above "
        "100 MiB, 16 MiB parts, 4 in flight); boto3 its own (8 MiB parts, 10 threads)."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
