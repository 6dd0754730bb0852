"""P2: latency and throughput of the control-plane calls under 1, 8 and 32 clients.

The app runs exactly as deployed, in each server variant side by side: `movievault serve`
(waitress, one process of 16 threads) and `movievault serve --workers 2` (gunicorn, two
processes of 16 threads), each on a SQLite file, against one moto S3 server in its own
process. The load comes from wrk (C, one thread,
keep-alive connections; bench/load.lua), so the generator is not the bottleneck on this
2-core machine. Every request is prepared in advance and used once: each create names a
new SHA-256, each complete finishes its own upload whose object was put in the bucket
directly with boto3 before the timing. Each configuration runs several times; the table
gives the median of the runs' p50, p99 and requests/s.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    BENCH,
    BIN,
    GIB,
    MOTO_PIDS,
    AppServer,
    Result,
    app_server,
    base_env,
    cpu_seconds,
    free_port,
    main_for,
    median,
    moto_server,
    s3_client,
    sign_in,
    stop_process,
    temp_dir,
    tree_cpu_seconds,
    wait_for_port,
)

ENDPOINTS = ("check", "create", "parts", "parts100", "complete")
#: Fewer requests for the heavy one, so each run stays a few seconds long.
SCALE = {"parts100": 0.2}
CLIENTS = (1, 8, 32)
#: Server variants: a label ("" for today's default) and the settings that make it.
VARIANTS: dict[str, dict[str, Any]] = {
    "": {},
    "--workers 2": {"WORKERS": 2},
    "--workers 2 + PostgreSQL": {"WORKERS": 2, "DATABASE_URL": "postgres"},
    "--workers 2 + movievault probe": {"WORKERS": 2, "MEDIA_WORKERS": 0},
}
#: Variants whose new files are probed by a `movievault probe` process of their own, as
#: docs/DEPLOY.md suggests for servers that should only answer requests. Its CPU per
#: request is shown apart from the app's.
PROBING_APART = {"--workers 2 + movievault probe"}
#: Every run creates uploads it never finishes: lift the per-user cap on pending uploads
#: (MAX_PENDING_UPLOADS, 100 by default), which is not what is measured.
SETTINGS = {"MAX_PENDING_UPLOADS": 1_000_000}
WRITES = ("create", "parts", "parts100", "complete")
OBJECT_SIZE = 1024  # form uploads completed by the benchmark hold this many bytes
#: Part URLs per request: a few (one per part in flight), or 100, as the page asks them
#: (static/js/part-urls.js asks for the next 100 parts at once).
PARTS_PER_REQUEST = {"parts": 4, "parts100": 100}
EXPECTED = {"check": 200, "create": 201, "parts": 200, "parts100": 200, "complete": 201}
LABELS = {"parts": "parts (4 URLs)", "parts100": "parts (100 URLs)"}


def install_wrk() -> str:
    """Return wrk's path, installing Debian's package when it is missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run([str(BENCH / "setup-tools")], check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is missing: install Debian's 'wrk' package")
    return found


class Load:
    """Writes request files for wrk and runs it against one server."""

    def __init__(self, server: AppServer, work: Path, s3_pid: int, *, signed_in: bool = True,
                 prober_pid: int | None = None, database_pid: int | None = None) -> None:
        self.server = server
        self.s3_pid = s3_pid
        self.prober_pid = prober_pid
        self.database_pid = database_pid
        self.work = work
        self.headers = {"User-Agent": "p2", "Content-Type": "application/json"}
        if signed_in:
            http = sign_in(server.url)
            self.headers.update({
                # The same User-Agent as at sign-in: flask-login's session protection
                # compares it, and a change makes every answer rewrite the session cookie.
                "User-Agent": http.headers["User-Agent"],
                "Cookie": "; ".join(f"{c.name}={c.value}" for c in http.cookies),
                "X-CSRFToken": http.headers["X-CSRFToken"],
            })
            self.http = http
        self.wrk = install_wrk()
        self.multipart_ids: list[str] = []

    def write(self, name: str, lines: list[tuple[str, str, str]]) -> Path:
        """Write a requests file (headers, then one request per line)."""
        path = self.work / f"{name}.txt"
        with path.open("w") as out:
            for key, value in self.headers.items():
                out.write(f"H\t{key}\t{value}\n")
            for method, target, body in lines:
                out.write(f"R\t{method}\t{target}\t{body}\n")
        return path

    def run(self, name: str, lines: list[tuple[str, str, str]], clients: int, count: int) -> dict:
        """Send `count` of the prepared requests over `clients` connections; wrk's figures,
        plus the CPU time the app and the S3 server spent per request meanwhile."""
        path = self.write(name, lines)
        app_cpu, s3_cpu = tree_cpu_seconds(self.server.pid), cpu_seconds(self.s3_pid)
        prober_cpu = cpu_seconds(self.prober_pid) if self.prober_pid else 0.0
        database_cpu = tree_cpu_seconds(self.database_pid) if self.database_pid else 0.0
        done = subprocess.run(
            [self.wrk, "-t1", f"-c{clients}", "-d120s", "--timeout", "30s",
             "-s", str(BENCH / "load.lua"), self.server.url, "--", str(path), str(count)],
            capture_output=True, text=True, timeout=300,
        )
        line = next((x for x in done.stdout.splitlines() if x.startswith("BENCHJSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk failed:\n{done.stdout}\n{done.stderr}")
        figures = json.loads(line.removeprefix("BENCHJSON "))
        # CPU time is what this machine's noise disturbs least: it grows with the work done,
        # not with the time spent waiting for a core other engineers' jobs are using.
        figures["app_cpu_ms"] = (tree_cpu_seconds(self.server.pid) - app_cpu) * 1000 / count
        figures["s3_cpu_ms"] = (cpu_seconds(self.s3_pid) - s3_cpu) * 1000 / count
        if self.prober_pid:
            figures["prober_cpu_ms"] = (
                (cpu_seconds(self.prober_pid) - prober_cpu) * 1000 / count
            )
        if self.database_pid:
            # PostgreSQL's server and its backends (one per pooled connection, kept open).
            figures["database_cpu_ms"] = (
                (tree_cpu_seconds(self.database_pid) - database_cpu) * 1000 / count
            )
        # From the first request sent to the `count`-th answer (load.lua's own clock).
        figures["rps"] = count / (figures["elapsed_us"] / 1e6)
        return figures

    # -------------------------------------------------------------- requests per endpoint

    def check_lines(self, count: int) -> list[tuple[str, str, str]]:
        """Bulk checks of one unknown file each (the common answer: not a duplicate)."""
        return [
            ("POST", "/api/files/check",
             json.dumps({"files": [{"sha256": secrets.token_hex(32), "size": 7 * GIB}]}))
            for _ in range(count)
        ]

    def create_lines(self, count: int) -> list[tuple[str, str, str]]:
        """New form uploads, each of another file."""
        return [
            ("POST", "/api/uploads", json.dumps({
                "name": f"movie-{secrets.token_hex(4)}.mp4", "size": OBJECT_SIZE,
                "sha256": secrets.token_hex(32), "content_type": "video/mp4",
            }))
            for _ in range(count)
        ]

    def parts_lines(self, count: int, per_request: int = PARTS_PER_REQUEST["parts"]
                    ) -> list[tuple[str, str, str]]:
        """Part URLs for the multipart uploads prepared beforehand, round robin."""
        lines = []
        for number in range(count):
            upload = self.multipart_ids[number % len(self.multipart_ids)]
            first = 1 + (number * per_request) % 300
            parts = list(range(first, first + per_request))
            # Each part's SHA-256, as the page sends it: the URL signs its checksum.
            body = {"parts": [{"number": n, "sha256": secrets.token_hex(32)} for n in parts]}
            lines.append(("POST", f"/api/uploads/{upload}/parts", json.dumps(body)))
        return lines

    def parts100_lines(self, count: int) -> list[tuple[str, str, str]]:
        """Part URLs, 100 per request."""
        return self.parts_lines(count, PARTS_PER_REQUEST["parts100"])

    def prepare_multipart(self, count: int) -> None:
        """Start `count` multipart uploads of a 7 GiB file (448 parts of 16 MiB)."""
        for _ in range(count):
            answer = self.http.post(f"{self.server.url}/api/uploads", json={
                "name": "big.mkv", "size": 7 * GIB, "sha256": secrets.token_hex(32),
                "content_type": "video/x-matroska",
            }, timeout=30)
            answer.raise_for_status()
            self.multipart_ids.append(answer.json()["upload"]["id"])

    def pending_form_uploads(self) -> list[tuple[str, str]]:
        """(id, key) of every form upload not yet completed, read from the app's database."""
        url = self.server.env.get("MOVIEVAULT_DATABASE_URL") or (
            f"sqlite:///{self.server.database}"
        )
        engine = create_engine(url)
        try:
            with engine.connect() as db:
                return [(row[0], row[1]) for row in db.execute(text(
                    "SELECT id, key FROM pending_upload WHERE method = 'post' AND size = :size "
                    "AND completing_since IS NULL ORDER BY created_at"
                ), {"size": OBJECT_SIZE})]
        finally:
            engine.dispose()

    def prepare_completions(self, needed: int, endpoint: str) -> list[str]:
        """Make sure `needed` form uploads exist, put their objects in the bucket directly."""
        pending = self.pending_form_uploads()
        if len(pending) < needed:
            extra = needed - len(pending) + 50
            self.run("prepare", self.create_lines(extra), 8, extra)
            pending = self.pending_form_uploads()
        pending = pending[:needed]
        s3 = s3_client(endpoint)
        bucket = self.server.env["MOVIEVAULT_S3_BUCKET"]
        body = b"m" * OBJECT_SIZE

        def put(key: str) -> None:
            s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="video/mp4")

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, [key for _, key in pending]))
        return [upload_id for upload_id, _ in pending]


@contextmanager
def prober(server: AppServer, work: Path, wanted: bool) -> Iterator[int | None]:
    """`movievault probe` beside `server`, sharing its catalogue and store (when `wanted`);
    its process id, stopped at the end."""
    if not wanted:
        yield None
        return
    with (work / f"prober-{server.pid}.log").open("wb") as out:
        process = subprocess.Popen([str(BIN / "movievault"), "probe"], env=server.env,
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        yield process.pid
    finally:
        stop_process(process)


@contextmanager
def postgres_server() -> Iterator[Any]:
    """The tests' own PostgreSQL server (tests/postgres.py): Debian's binaries, a temporary
    folder, a loopback port; stopped at the end."""
    from tests import postgres

    reason = postgres.missing()
    if reason:
        raise RuntimeError(reason)
    with postgres.running() as server:
        yield server


#: The floor's servers: as `movievault serve` runs (16 threads), one process or two.
FLOOR_SERVERS = {
    "waitress": ["-m", "waitress", "--threads=16", "--listen=127.0.0.1:{port}", "floor_app:app"],
    "gunicorn ×2": ["-m", "gunicorn", "--workers=2", "--worker-class=gthread", "--threads=16",
                    "--bind=127.0.0.1:{port}", "floor_app:app"],
}


@contextmanager
def floor_server(work: Path, server: str) -> Iterator[AppServer]:
    """bench/floor_app.py (a bare Flask view) served by `server`, on a free loopback port."""
    port = free_port()
    log = work / f"floor-{port}.log"
    args = [arg.format(port=port) for arg in FLOOR_SERVERS[server]]
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, *args], cwd=BENCH, env=base_env(),
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log)
        yield AppServer(url=f"http://127.0.0.1:{port}", process=process, env={},
                        database=Path("/dev/null"), counted=False, log=log)
    finally:
        stop_process(process)


def floor(work: Path, s3_pid: int, count: int, repeats: int) -> dict[str, list[dict[str, Any]]]:
    """The duplicate check at 32 clients against the bare Flask view, in each server."""
    runs: dict[str, list[dict[str, Any]]] = {}
    for server in FLOOR_SERVERS:
        with floor_server(work, server) as bare:
            load = Load(bare, work, s3_pid, signed_in=False)
            load.run("floor-warm-up", load.check_lines(200), 4, 200)
            runs[server] = [load.run(f"floor-{n}", load.check_lines(count + 32), 32, count)
                            for n in range(repeats)]
    return runs


def measure(load: Load, endpoint: str, counts: dict[int, int], repeats: int,
            endpoints: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
    """Every endpoint at every concurrency, `repeats` times, against one server."""
    runs: dict[str, list[dict[str, Any]]] = {}
    load.run("warm-up", load.check_lines(200), 4, 200)
    load.prepare_multipart(max(CLIENTS))
    completions: list[str] = []
    for name in endpoints:
        if name == "complete":
            needed = repeats * sum(counts[c] + c for c in CLIENTS)
            completions = load.prepare_completions(needed, endpoint)
        for clients in CLIENTS:
            for _ in range(repeats):
                count = max(20, int(counts[clients] * SCALE.get(name, 1)))
                if name == "complete":
                    ids, completions = (completions[: count + clients],
                                        completions[count + clients:])
                    lines = [("POST", f"/api/uploads/{i}/complete", "{}") for i in ids]
                else:
                    lines = getattr(load, f"{name}_lines")(count + clients)
                figures = load.run(f"{name}-{clients}", lines, clients, count)
                unexpected = {k: v for k, v in figures["statuses"].items()
                              if int(k) != EXPECTED[name]}
                if unexpected:
                    # Shown in the figure (the target is then missed), with the app's log.
                    figures["unexpected"] = unexpected
                    log = load.server.log.read_text(errors="replace")
                    print(f"{name} x{clients}: unexpected answers {unexpected}\n"
                          f"{log[log.find('Traceback'):][:3000]}", file=sys.stderr)
                # A request unanswered within wrk's 30 s is counted and shown, not fatal.
                runs.setdefault(f"{name}|{clients}", []).append(figures)
    return runs


def target_for(name: str, clients: int, p50: float, p99: float, rps: float
               ) -> tuple[str, bool | None]:
    """The target of a row and whether it is met (none for 8 clients)."""
    if clients == 1:
        return "p50 ≤ 3 ms", p50 <= 3
    if clients == 32:
        floor = 300 if name in WRITES else 1000
        return f"≥ {floor:,} req/s, p99 ≤ 100 ms", rps >= floor and p99 <= 100
    return "", None


def run(*, quick: bool = False, endpoints: tuple[str, ...] = ENDPOINTS,
        variants: tuple[str, ...] = tuple(VARIANTS)) -> Result:
    """Measure every endpoint at every concurrency, several times, in each server variant."""
    counts = {1: 100, 8: 300, 32: 600} if quick else {1: 300, 8: 800, 32: 1600}
    repeats = 1 if quick else 3
    result = Result("P2", "Control-plane latency and throughput")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with temp_dir() as work, moto_server(work) as endpoint, ExitStack() as stack:
        for variant in variants:
            settings = {**SETTINGS, **VARIANTS[variant]}
            database_pid = None
            if settings.get("DATABASE_URL") == "postgres":
                server = stack.enter_context(postgres_server())
                settings["DATABASE_URL"] = server.url(server.create_database())
                database_pid = server.pid()
            with app_server(work, endpoint=endpoint, settings=settings) as app, \
                    prober(app, work, variant in PROBING_APART) as prober_pid:
                load = Load(app, work, MOTO_PIDS[endpoint], prober_pid=prober_pid,
                            database_pid=database_pid)
                runs[variant] = measure(load, endpoint, counts, repeats, endpoints)
        floors = (floor(work, MOTO_PIDS[endpoint], counts[32], repeats)
                  if "check" in endpoints else {})
    result.raw = {"runs": runs, "floors": floors, "counts": counts, "repeats": repeats}
    for server, series in floors.items():
        result.row(
            f"floor: a bare Flask view answering the check (bench/floor_app.py), {server}, "
            "32 clients",
            f"{median([r['rps'] for r in series]):,.0f} req/s, p99 "
            f"{median([r['p99_us'] for r in series]) / 1000:.1f} ms (CPU per request: "
            f"{median([r['app_cpu_ms'] for r in series]):.2f} ms)",
        )
    for name in endpoints:
        for variant in variants:
            for clients in CLIENTS:
                series = runs[variant][f"{name}|{clients}"]
                p50 = median([r["p50_us"] for r in series]) / 1000
                p99 = median([r["p99_us"] for r in series]) / 1000
                rps = median([r["rps"] for r in series])
                cpu = median([r["app_cpu_ms"] for r in series])
                s3_cpu = median([r["s3_cpu_ms"] for r in series])
                apart = "".join(
                    f", {label} {median([r[key] for r in series]):.1f} ms"
                    for key, label in (("prober_cpu_ms", "prober"),
                                       ("database_cpu_ms", "PostgreSQL"))
                    if key in series[0]
                )
                errors = sum(r["errors"] for r in series)
                odd: Counter[str] = Counter()
                for r in series:
                    odd.update(r.get("unexpected", {}))
                figure = (f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, {rps:,.0f} req/s "
                          f"(CPU per request: app {cpu:.1f} ms, S3 server {s3_cpu:.1f} ms{apart})"
                          + (f", {errors} unanswered in 30 s" if errors else "")
                          + "".join(f", {n} answered {k}" for k, n in sorted(odd.items())))
                target, met = target_for(name, clients, p50, p99, rps)
                met = met and not errors and not odd if met is not None else None
                label = LABELS.get(name, name) + (f" {variant}" if variant else "")
                result.row(f"{label}, {clients} client{'s' if clients > 1 else ''}", figure,
                           target, met)
    result.notes.append(
        f"{counts[1]:,} / {counts[8]:,} / {counts[32]:,} requests per run with 1 / 8 / 32 "
        f"clients ({SCALE['parts100']:.0%} of that for 100 URLs), {repeats} runs each, medians "
        "of the runs; complete verifies a 1 KiB form upload with a HEAD on the store. CPU per "
        "request is the server's user+system time during the run (with --workers, the master "
        "and its workers) divided by the requests, for the app, for moto's S3 server and, "
        "where it serves the catalogue, for PostgreSQL's server and its backends."
    )
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, one run each")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated server variants ('' is the default server)")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS),
                        help=f"comma-separated subset of {','.join(ENDPOINTS)}")
    args = parser.parse_args()
    chosen = tuple(e for e in args.endpoints.split(",") if e)
    kinds = tuple(args.variants.split(","))
    main_for(lambda quick: run(quick=quick, endpoints=chosen, variants=kinds),
             __doc__.splitlines()[0],
             argv=["--quick"] if args.quick else [])
