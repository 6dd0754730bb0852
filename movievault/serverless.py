"""AWS Lambda entry point: `movievault.serverless.handler`.

The same app as everywhere (`create_app`), behind API Gateway's HTTP API or a Lambda
function URL (payload format 2.0) through apig-wsgi, which turns each event into a WSGI
request and the response back into the event's answer: binary bodies (posters, wasm) in
base64, each Set-Cookie in the answer's `cookies` list. The browser still sends movies
straight to S3 with presigned URLs, so no byte of a movie passes through the function.

The app is built once per container, at its first invocation, and reused by the next ones.
Lambda runs no threads between invocations, so nothing probes in the background here:
EventBridge invokes the function on a schedule with `{"movievault": "probe"}` (probe the
files that are due) or `{"movievault": "gc"}` (what `movievault gc` does).

Settings come from the environment as anywhere else (MOVIEVAULT_*), and from one Secrets
Manager secret when MOVIEVAULT_SECRET_ARN names it (see `secret_settings`).
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask

from movievault import db, garbage, jobs, probing
from movievault.backends import get_storage
from movievault.config import DEFAULTS, ConfigError, settings
from movievault.models import as_utc, utcnow

#: Lambda's only writable folder; the instance folder holds nothing that must last there.
INSTANCE_PATH = "/tmp/movievault"
#: A scheduled probe stops claiming files when less than this is left of its invocation,
#: on top of one probe's own time limit.
PROBE_MARGIN_SECONDS = 10

_handler: Callable[[dict[str, Any], Any], dict[str, Any]] | None = None
_app: Flask | None = None


def secret_settings(arn: str) -> dict[str, Any]:
    """Settings kept in the Secrets Manager secret `arn`: a JSON object of settings by name
    ({"SECRET_KEY": ..., "DATABASE_URL": ...}), or a plain string, the secret key.

    boto3 is imported here, outside the storage package, on purpose: the storage package
    holds the backends behind the Storage interface, and a secret is no stored object. This
    module is the Lambda platform's wiring, as wsgi.py is a WSGI server's: it runs only
    there, where boto3 and the function's role are at hand, and only before the app exists.
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        text = boto3.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
    except (BotoCoreError, ClientError, KeyError) as error:
        raise ConfigError(
            f"Could not read the secret MOVIEVAULT_SECRET_ARN names ({arn}): {error}. Check "
            "the ARN, and that the function's role may call secretsmanager:GetSecretValue "
            "on it."
        ) from error
    try:
        values = json.loads(text)
    except ValueError:
        values = None
    if not isinstance(values, dict):
        return {"SECRET_KEY": text.strip()}
    unknown = sorted(set(values) - set(DEFAULTS))
    if unknown:
        raise ConfigError(
            f"The secret {arn} holds settings MovieVault does not know: {', '.join(unknown)} "
            f"(names as in the settings table, without MOVIEVAULT_, such as SECRET_KEY)."
        )
    return values


def _given(name: str, overrides: Mapping[str, Any]) -> bool:
    """Whether setting `name` is given (not left to a default made on this machine)."""
    return bool(overrides.get(name) or os.environ.get(f"MOVIEVAULT_{name}"))


def create_lambda_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """The app as the function runs it; refuse what cannot work in Lambda, in one sentence.

    `overrides` are settings by name, after the environment (tests pass theirs here).
    """
    from movievault import create_app, static_urls

    values = dict(overrides or {})
    arn = os.environ.get("MOVIEVAULT_SECRET_ARN")
    if arn:
        values = {**secret_settings(arn), **values}
    # Each container would make its own key and its own SQLite file in its /tmp: sessions
    # signed by one would be refused by the next, and each would see another library.
    if not _given("SECRET_KEY", values):
        raise ConfigError(
            "In AWS Lambda, MOVIEVAULT_SECRET_KEY must be set (or held by the secret "
            "MOVIEVAULT_SECRET_ARN names): every container must sign sessions with one key."
        )
    if not _given("DATABASE_URL", values):
        raise ConfigError(
            "In AWS Lambda, set MOVIEVAULT_DATABASE_URL to the PostgreSQL catalogue "
            "(postgresql+psycopg://user:password@host/name): a SQLite file in a container's "
            "/tmp is lost with it."
        )
    os.environ.setdefault("MOVIEVAULT_INSTANCE_PATH", INSTANCE_PATH)
    app = create_app(values)
    kind = settings(app).storage
    if kind != "s3":
        db.engine_of(app).dispose()  # the refused app's connections end here
        raise ConfigError(
            f"In AWS Lambda, movies must be kept in S3 (MOVIEVAULT_STORAGE=s3 and "
            f"MOVIEVAULT_S3_BUCKET), not in the {kind} store: a function's disk is its own "
            "temporary /tmp, gone when the container is."
        )
    static_urls.init_app(app)
    return app


def _built() -> tuple[Flask, Callable[[dict[str, Any], Any], dict[str, Any]]]:
    """The container's app and its adapter, built at the first invocation."""
    global _app, _handler
    if _app is None or _handler is None:
        from apig_wsgi import make_lambda_handler

        app = create_lambda_app()
        _handler = make_lambda_handler(app)
        _app = app
    return _app, _handler


def collect_garbage(app: Flask) -> dict[str, Any]:
    """The scheduled "gc": expired uploads, orphans and the store's leftovers."""
    with db.session_scope(app) as session:
        report = garbage.housekeeping(
            session=session, storage=get_storage(app),
            abort_after_days=settings(app).abort_multipart_days,
        )
    return {
        "expired_uploads": report.expired_uploads, "orphans": report.orphans,
        "swept": report.swept, "failures": report.failures,
    }


def probe_due(app: Flask, context: Any) -> dict[str, Any]:
    """The scheduled "probe": probe due files one after another while the invocation has
    time for one more (each has PROBE_TIMEOUT); the rest wait for the next schedule."""
    config = settings(app).probing
    storage = get_storage(app)
    needed_ms = (config.timeout + PROBE_MARGIN_SECONDS) * 1000
    left_ms = context.get_remaining_time_in_millis()
    if left_ms <= needed_ms:
        return _no_time_for_one_probe(app, left_ms=left_ms, timeout=config.timeout)
    outcomes: Counter[str] = Counter()
    while context.get_remaining_time_in_millis() > needed_ms:
        with db.session_scope(app) as session:
            outcome = probing.run_next(session=session, storage=storage, settings=config)
        if outcome is None:
            break
        outcomes[outcome] += 1
    return {"probed": sum(outcomes.values()), **outcomes}


def _no_time_for_one_probe(app: Flask, *, left_ms: int, timeout: float) -> dict[str, Any]:
    """The answer of a probe invocation too short for one probe: a warning naming the
    settings to change when a file is due, since otherwise no file is ever probed."""
    with db.session_scope(app) as session:
        due = jobs.next_due(session=session)
    if due is None or as_utc(due) > utcnow():
        return {"probed": 0}  # nothing was waiting: this invocation missed nothing
    # Lambda tells a function the time left, not its timeout: at the start they are close.
    warning = (
        f"No file was probed: one probe needs MOVIEVAULT_PROBE_TIMEOUT ({timeout:g} s) + "
        f"{PROBE_MARGIN_SECONDS} s of the invocation, and this one had {left_ms / 1000:.0f} s "
        f"left. Set the function's timeout above {timeout + PROBE_MARGIN_SECONDS:g} s, or "
        "lower MOVIEVAULT_PROBE_TIMEOUT; until then the files due stay pending."
    )
    app.logger.warning("%s", warning)
    return {"probed": 0, "warning": warning}


TASKS: dict[str, Callable[[Flask, Any], dict[str, Any]]] = {
    "gc": lambda app, _context: collect_garbage(app),
    "probe": probe_due,
}


def run_task(app: Flask, task: Any, context: Any) -> dict[str, Any]:
    """Run the scheduled task named `task`; its answer says what it did and how long."""
    if task not in TASKS:
        raise ValueError(
            f"Unknown scheduled task {task!r}: the event's \"movievault\" must be one of "
            f"{', '.join(sorted(TASKS))}."
        )
    started = time.perf_counter()
    result = TASKS[task](app, context)
    result = {"task": task, **result, "seconds": round(time.perf_counter() - started, 3)}
    app.logger.info("scheduled %s: %s", task, json.dumps(result))
    return result


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda's entry: an HTTP event (payload 2.0) goes to the app, a scheduled event
    ({"movievault": "gc" | "probe"}) runs that task."""
    app, wsgi = _built()
    if "movievault" in event:
        return run_task(app, event["movievault"], context)
    return wsgi(event, context)
