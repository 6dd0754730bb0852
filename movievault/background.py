"""The app's background probe worker: started by `movievault serve`, woken by `complete`.

`create_app` starts nothing: tests build and drive their own workers, and a WSGI server
other than `movievault serve` gets one per process at its first request (wsgi.py asks for
that with `start_with_first_request`, so commands run through it start none). Several
processes may each run one: jobs are claimed in the database, never twice at once.
"""

from __future__ import annotations

import atexit
import threading
from functools import partial

from flask import Flask, current_app
from sqlmodel import Session

from movievault import db
from movievault.backends import get_storage
from movievault.config import settings
from movievault.worker import ProbeWorker

EXTENSION = "movievault.probe_worker"
_starting = threading.Lock()


def start_probe_worker(app: Flask) -> ProbeWorker | None:
    """Start the app's worker with MEDIA_WORKERS threads (None when that is 0); once."""
    with _starting:
        existing: ProbeWorker | None = app.extensions.get(EXTENSION)
        if existing is not None:
            return existing
        config = settings(app).probing
        if config.workers == 0:
            return None
        worker = ProbeWorker(
            session_factory=partial(Session, db.engine_of(app), expire_on_commit=False),
            storage=get_storage(app),
            settings=config,
        )
        worker.start()
        app.extensions[EXTENSION] = worker
    # Give a probe under way a moment to finish when the server stops; one cut off is
    # claimed again once its lease runs out.
    atexit.register(partial(worker.stop, 5.0))
    app.logger.info("Probing new files in the background, %d at a time.", config.workers)
    return worker


def wake_probe_worker(app: Flask | None = None) -> None:
    """Have the worker look for jobs now, if this process runs one."""
    worker: ProbeWorker | None = (app or current_app).extensions.get(EXTENSION)
    if worker is not None:
        worker.wake()


def start_with_first_request(app: Flask) -> None:
    """Start the worker in the process that serves `app`, when its first request comes in
    (after any fork of a pre-loading server, and never in a command)."""
    started = threading.Event()

    def start() -> None:
        if not started.is_set():
            start_probe_worker(app)
            started.set()

    app.before_request(start)
