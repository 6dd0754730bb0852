"""Shared pieces of the benchmarks: real servers on loopback, sign-in, files, statistics.

Every component is the real one: moto's ThreadedMotoServer as the S3 endpoint (in its own
process, so it never shares a GIL with what is measured), the app under waitress (the
production server, `movievault serve`, or the same call behind a counting middleware), a
SQLite file, and files on disk under a temporary folder outside the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The tests' own recipes: how Chromium starts, free ports, processes, signing in.
from tests.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: E402,F401
from tests.processes import children, rss_bytes  # noqa: E402,F401
from tests.support import (  # noqa: E402,F401
    AuthActions,
    free_port,
    sign_in_over_http,
    stop_process,
    wait_for_port,
)

BIN = Path(sys.executable).parent
MIB = 1024 * 1024
GIB = 1024 * MIB
USERNAME = "bench"
PASSWORD = "bench-password-not-secret"


# ---------------------------------------------------------------------------- statistics


def median(values: list[float]) -> float:
    """Median of `values` (the figure every benchmark reports)."""
    return float(statistics.median(values))


def percentile(values: list[float], pct: float) -> float:
    """The `pct` percentile of `values`, nearest-rank."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def fmt_bytes(count: float) -> str:
    """A byte count with a binary unit, for tables."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------- processes


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process and of its live children (gunicorn's master and workers)."""
    total = cpu_seconds(pid)
    for child in children().get(pid, []):
        try:
            total += cpu_seconds(child)
        except OSError:
            continue  # ended meanwhile
    return total


def rss_split(pid: int) -> dict[str, int]:
    """Resident memory of one process by kind: anon (heap), file (mapped files), shmem."""
    split = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        for kind in ("RssAnon", "RssFile", "RssShmem"):
            if line.startswith(kind + ":"):
                split[kind[3:].lower()] = int(line.split()[1]) * 1024
    return split


def base_env() -> dict[str, str]:
    """This environment without MOVIEVAULT_* or AWS_* settings, plus fake S3 credentials."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MOVIEVAULT_", "AWS_"))
    }
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        MOTO_DISABLE_GLOBAL_CORS="true",
        PYTHONUNBUFFERED="1",
    )
    return env


@contextlib.contextmanager
def temp_dir(prefix: str = "movievault-bench-") -> Iterator[Path]:
    """A scratch folder outside the repository, removed afterwards with all it holds."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


#: The process id of each running moto server, by endpoint (for CPU accounting).
MOTO_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port, in its own process."""
    port = free_port()
    log = workdir / f"moto-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(BENCH / "moto_server.py"), str(port)],
            env=base_env(), stdout=out, stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    MOTO_PIDS[endpoint] = process.pid
    try:
        wait_for_port(port, process, log)
        yield endpoint
    finally:
        stop_process(process)
        MOTO_PIDS.pop(endpoint, None)


@dataclass
class AppServer:
    """The app served by waitress in its own process, and how to reach and observe it."""

    url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    database: Path
    counted: bool
    extra: dict[str, Any] = field(default_factory=dict)
    log: Path = Path("/dev/null")  # its output

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def rss(self) -> int:
        """The server's resident memory."""
        return rss_bytes(self.pid)

    def records(self) -> list[dict[str, Any]]:
        """What the counting middleware saw since the last reset (counted servers only)."""
        answer = requests.get(f"{self.url}/__bench/records", timeout=30)
        answer.raise_for_status()
        return answer.json()["records"]

    def reset(self) -> None:
        """Forget what the counting middleware saw."""
        requests.post(f"{self.url}/__bench/reset", timeout=30).raise_for_status()


def _movievault(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run a `movievault` command with the bench's settings; return its output."""
    done = subprocess.run(
        [str(BIN / "movievault"), *args], env=env, input=stdin, capture_output=True,
        text=True, timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"movievault {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


@contextlib.contextmanager
def app_server(
    workdir: Path,
    *,
    storage: str = "s3",
    endpoint: str | None = None,
    counted: bool = False,
    settings: dict[str, Any] | None = None,
) -> Iterator[AppServer]:
    """Set the app up like a new user would (create-user, setup-bucket) and serve it.

    `counted=False` runs exactly `movievault serve`; `counted=True` runs the same waitress
    call with the counting middleware around the app (bench/counted_app.py).
    """
    port = free_port()
    instance = workdir / f"instance-{port}"
    instance.mkdir()
    env = base_env()
    env.update(
        MOVIEVAULT_INSTANCE_PATH=str(instance),
        MOVIEVAULT_SECRET_KEY="bench-secret-key-at-least-32-bytes-long",
        MOVIEVAULT_PORT=str(port),
        MOVIEVAULT_HOST="127.0.0.1",
        MOVIEVAULT_STORAGE=storage,
    )
    if storage == "s3":
        assert endpoint, "the S3 backend needs an endpoint"
        env.update(MOVIEVAULT_S3_ENDPOINT_URL=endpoint, MOVIEVAULT_S3_BUCKET=f"bench-{port}")
    else:
        env["MOVIEVAULT_DATA_DIR"] = str(workdir / f"objects-{port}")
    for name, value in (settings or {}).items():
        env[f"MOVIEVAULT_{name}"] = str(value)
    _movievault(["create-user", USERNAME], env, stdin=PASSWORD + "\n")
    if storage == "s3":
        _movievault(["setup-bucket"], env)
    log = workdir / f"app-{port}.log"
    command = (
        [sys.executable, str(BENCH / "counted_app.py")]
        if counted
        else [str(BIN / "movievault"), "serve"]
    )
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log)
        yield AppServer(
            url=f"http://127.0.0.1:{port}", process=process, env=env,
            database=instance / "movievault.db", counted=counted, log=log,
        )
    finally:
        stop_process(process)


# ---------------------------------------------------------------------------- clients


def sign_in(url: str) -> requests.Session:
    """Sign in as the bench's account through the real form; the session then sends the
    CSRF header."""
    return sign_in_over_http(url, USERNAME, PASSWORD)


def s3_client(endpoint: str) -> Any:
    """A boto3 client for the bench's own direct access to the S3 endpoint."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id="bench", aws_secret_access_key="bench",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                      max_pool_connections=16),
    )


def random_file(path: Path, size: int, chunk: int = 16 * MIB) -> Path:
    """Write `size` random bytes to `path` (random, so nothing compresses or dedups)."""
    with path.open("wb") as out:
        left = size
        while left:
            step = min(chunk, left)
            out.write(os.urandom(step))
            left -= step
    return path


def drop_page_cache(path: Path) -> None:
    """Ask the kernel to forget `path`'s cached pages, so the next read starts cold."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------- reporting


def _first_line(command: list[str]) -> str:
    """First line of a command's output, or '' when it is missing."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    from importlib.metadata import version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except Exception:  # a missing optional package is reported, not fatal
            return "-"

    chromium = _first_line([CHROMIUM, "--version"]) if Path(CHROMIUM).exists() else "-"
    return {
        "cpu": f"{cpu} ({os.cpu_count()} cores)",
        "ram": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "chromium": chromium,
        "packages": ", ".join(
            f"{n} {pkg(n)}"
            for n in ("flask", "waitress", "sqlmodel", "boto3", "moto", "playwright")
        ),
        "wrk": (_first_line(["wrk", "--version"]).split(" Copyright")[0]
                if shutil.which("wrk") else "-"),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


@dataclass
class Row:
    """One line of the results table."""

    pid: str
    what: str
    figure: str
    target: str
    met: bool | None  # None: informative, no target

    def status(self) -> str:
        """met / MISSED / blank."""
        return "" if self.met is None else ("met" if self.met else "MISSED")


@dataclass
class Result:
    """What one benchmark module measured: table rows, notes and raw figures."""

    pid: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)

    def row(self, what: str, figure: str, target: str = "", met: bool | None = None) -> None:
        """Add a table row."""
        self.rows.append(Row(self.pid, what, figure, target, met))


def all_rows(results: list[Result]) -> list[Row]:
    """Every row, grouped by id (a benchmark may add rows to another id's figures)."""
    return sorted((row for result in results for row in result.rows), key=lambda r: r.pid)


def print_table(results: list[Result]) -> None:
    """Print every row as one aligned table."""
    rows = [("id", "what", "figure", "target", "")]
    rows += [(r.pid, r.what, r.figure, r.target, r.status()) for r in all_rows(results)]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for number, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if number == 0:
            print("  ".join("-" * w for w in widths))


def save_raw(result: Result) -> Path:
    """Keep the raw figures of a run under bench/results/ (ignored by git)."""
    folder = BENCH / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"{result.pid.lower()}.json"
    path.write_text(json.dumps({"title": result.title, "raw": result.raw, "notes": result.notes,
                                "rows": [r.__dict__ for r in result.rows]}, indent=2))
    return path


def main_for(run: Any, description: str, argv: list[str] | None = None) -> None:
    """Command line of a single benchmark module: `--quick` for small sizes."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a quick check")
    args = parser.parse_args(argv)
    result = run(quick=args.quick)
    print_table([result])
    for note in result.notes:
        print(f"- {note}")
    save_raw(result)
