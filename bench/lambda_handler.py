"""P10: the Lambda handler's time per control-plane request, through apig-wsgi.

`movievault.serverless.handler` is called in this process with API Gateway payload 2.0
events (tests/apigateway.py), configured by its environment as in AWS: the catalogue in
PostgreSQL (a server of the tests' own, tests/postgres.py; SQLite when none is installed),
S3 on moto's server in its own process. Timed: the handler call alone (event in, answer
out), after a warm-up, one request at a time as one Lambda container serves them. Also
the container's first invocation (the app built, the catalogue's revision checked) and the
requests a single and a multipart file take.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import MIB, Result, base_env, main_for, median, moto_server, percentile, temp_dir  # noqa: E402,I001

from movievault import db, serverless  # noqa: E402
from movievault.backends import get_storage  # noqa: E402
from movievault.client import ApiClient, fingerprint_of, sha256_of  # noqa: E402
from tests import postgres  # noqa: E402
from tests.apigateway import BASE_URL, LambdaContext, http_event, session_through  # noqa: E402
from tests.support import SECRET_KEY, make_user, sign_in_over_http  # noqa: E402

TARGET_MS = 20.0
SETTINGS = {"MULTIPART_THRESHOLD": 6 * MIB, "PART_SIZE": 5 * MIB, "MAX_PENDING_UPLOADS": 10_000}


@contextlib.contextmanager
def catalogue(work: Path) -> Iterator[tuple[str, str]]:
    """A PostgreSQL database when the server can run here, else a SQLite file."""
    if postgres.missing() is None:
        with postgres.running() as server:
            yield "PostgreSQL", server.url(server.create_database())
    else:
        yield "SQLite", f"sqlite:///{work / 'movievault.db'}"


def timed(calls: list[Callable[[], dict[str, Any]]]) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU milliseconds of each call; each answer must be a success."""
    walls, cpus = [], []
    for call in calls:
        wall, cpu = time.perf_counter(), time.process_time()
        answer = call()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.process_time() - cpu) * 1000)
        if answer["statusCode"] >= 400:
            raise RuntimeError(f"failed: {answer['statusCode']} {answer['body'][:300]}")
    return walls, cpus


def invoke(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> Callable[
    [], dict[str, Any]
]:
    """A prepared call of the handler with one request's event (built before timing)."""
    event = http_event(method, BASE_URL + path, headers=headers, body=body)
    return lambda: serverless.handler(event, LambdaContext())


def run(*, quick: bool = False) -> Result:
    """Time each kind of control-plane request through the handler."""
    count = 40 if quick else 200
    result = Result("P10", "Lambda handler time per request (apig-wsgi, payload 2.0)")
    loads = [os.getloadavg()[0]]
    with temp_dir() as work, moto_server(work) as endpoint, catalogue(work) as (kind, url):
        os.environ.clear()
        os.environ.update(base_env())
        os.environ.update({
            "MOVIEVAULT_SECRET_KEY": SECRET_KEY, "MOVIEVAULT_DATABASE_URL": url,
            "MOVIEVAULT_STORAGE": "s3", "MOVIEVAULT_S3_BUCKET": f"mv-{uuid.uuid4().hex[:12]}",
            "MOVIEVAULT_S3_ENDPOINT_URL": endpoint, "MOVIEVAULT_PUBLIC_URL": BASE_URL,
            "MOVIEVAULT_INSTANCE_PATH": str(work / "instance"),
            **{f"MOVIEVAULT_{k}": str(v) for k, v in SETTINGS.items()},
        })
        app, _ = serverless._built()
        get_storage(app).setup(public_url=BASE_URL, abort_after_days=7)
        make_user(app, "bench")
        http, _ = session_through(serverless.handler)
        client = ApiClient(http=sign_in_over_http(BASE_URL, "bench", http=http), base=BASE_URL)
        headers = {
            "cookie": "; ".join(f"{c.name}={c.value}" for c in http.cookies),
            "x-csrftoken": http.headers["X-CSRFToken"], "referer": f"{BASE_URL}/",
            "content-type": "application/json", "user-agent": "bench",
        }

        # A new container: the app built at its first invocation (modules already loaded).
        db.engine_of(app).dispose()
        serverless._app = serverless._handler = None
        cold, _ = timed([invoke("GET", "/api/files", headers)])
        result.row("first invocation of a container (app built, catalogue revision checked; "
                   "imports not counted)", f"{cold[0]:.0f} ms")

        datas = [os.urandom(1000 + n) for n in range(count)]
        check = [invoke("POST", "/api/files/check", headers, json.dumps(
            {"files": [{"sha256": sha256_of(d), "size": len(d)}]}).encode()) for d in datas]
        timed(check[:20])  # warm-up
        figures: dict[str, tuple[list[float], list[float]]] = {"check": timed(check)}

        creates = [invoke("POST", "/api/uploads", headers, json.dumps({
            "name": f"m{n}.mp4", "size": len(d), "sha256": sha256_of(d),
            "fingerprint": fingerprint_of(d),
        }).encode()) for n, d in enumerate(datas)]
        answers: list[dict[str, Any]] = []
        figures["create"] = timed([lambda c=c: answers.append(c()) or answers[-1]
                                   for c in creates])
        uploads = [json.loads(a["body"])["upload"] for a in answers]
        for upload, data in zip(uploads, datas, strict=True):
            client.post_form(upload, data).raise_for_status()
        figures["complete"] = timed([
            invoke("POST", f"/api/uploads/{u['id']}/complete", headers, b"{}") for u in uploads
        ])
        figures["list (50 per page)"] = timed([invoke("GET", "/api/files", headers)] * count)
        big = os.urandom(4 * 5 * MIB)
        upload = client.create(name="big.mkv", data=big).json()["upload"]
        figures["parts (4 URLs)"] = timed([invoke(
            "POST", f"/api/uploads/{upload['id']}/parts", headers,
            json.dumps({"parts": [
                {"number": n, "sha256": sha256_of(big[(n - 1) * 5 * MIB : n * 5 * MIB])}
                for n in range(1, 5)
            ]}).encode())] * count)
        figures["library page (HTML)"] = timed([invoke("GET", "/", headers)] * (count // 2))

        for what, (walls, cpus) in figures.items():
            control = what in ("check", "create", "complete", "parts (4 URLs)")
            result.row(
                f"{what}, {len(walls)} requests ({kind}, S3 on moto)",
                f"p50 {median(walls):.1f} ms, p99 {percentile(walls, 99):.1f} ms "
                f"(CPU p50 {median(cpus):.1f} ms)",
                f"p50 ≤ {TARGET_MS:g} ms" if control else "",
                median(walls) <= TARGET_MS if control else None,
            )
            result.raw[what] = {"wall_ms": walls, "cpu_ms": cpus}
        db.engine_of(serverless._built()[0]).dispose()
    loads.append(os.getloadavg()[0])
    result.notes.append(
        f"The handler called in-process with payload 2.0 events (event built before the "
        f"clock starts), one at a time, as one container serves them; {count} requests per "
        f"kind after 20 warm-up checks; catalogue in {kind}; S3 is moto's server in its own "
        "process (create and complete talk to it: a presigned POST policy, a HEAD). CPU is "
        "this process's. Lambda bills the wall-clock time per invocation, rounded up to 1 ms. "
        f"Load average of the machine at the start and the end: {loads[0]:.1f}, {loads[1]:.1f} "
        "(on 2 cores: above 2, other processes took CPU from the one measured)."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
