"""The background prober: a few threads that run due probe jobs until stopped.

`movievault serve` starts one (see background.py), `movievault probe` runs one on its own
(cli.py); tests build their own and drive it. Its threads wake at once when `wake` is
called (after a `complete`), and otherwise look for due jobs (retries, jobs queued by
another process) every `poll` seconds. The number of threads bounds how many files are
probed at once, so a burst of uploads queues up instead of taking the CPU from the pages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from movievault import jobs, probing
from movievault.errors import MovieVaultError
from movievault.jobs import ProbeSettings
from movievault.models import as_utc, utcnow
from movievault.storage import Storage

log = logging.getLogger(__name__)

#: Seconds between looks for due jobs when nothing wakes the worker.
POLL_SECONDS = 15.0


class ProbeWorker:
    """Threads that claim and run probe jobs (see probing.run_job) until `stop`."""

    def __init__(
        self,
        *,
        session_factory: Callable[[], Session],
        storage: Storage,
        settings: ProbeSettings,
        poll: float = POLL_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.storage = storage
        self.settings = settings
        self.poll = poll
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._changed = threading.Condition()
        self._wakes = 0  # bumped by wake(): a thread that missed the notify still sees it

    def start(self) -> None:
        """Start `settings.workers` threads (none when it is 0)."""
        for number in range(self.settings.workers):
            thread = threading.Thread(
                target=self._loop, name=f"movievault-probe-{number + 1}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    @property
    def running(self) -> bool:
        """Whether any of its threads is alive."""
        return any(thread.is_alive() for thread in self._threads)

    def wake(self) -> None:
        """Have an idle thread look for jobs now (a file was just recorded)."""
        with self._changed:
            self._wakes += 1
            self._changed.notify()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the threads after the probes they are running (each has its time limit)."""
        self._stopping.set()
        with self._changed:
            self._changed.notify_all()
        wait = self.settings.timeout + 30 if timeout is None else timeout
        for thread in self._threads:
            thread.join(wait)
        self._threads = [thread for thread in self._threads if thread.is_alive()]

    def run_once(self) -> probing.Outcome | None:
        """Claim one due job and run it in this thread; None when none is due."""
        with self.session_factory() as session:
            return probing.run_next(
                session=session, storage=self.storage, settings=self.settings
            )

    def _idle_seconds(self) -> float:
        """How long to sleep: until the next job falls due, at most `poll` seconds."""
        try:
            with self.session_factory() as session:
                due = jobs.next_due(session=session)
        except SQLAlchemyError:
            return self.poll
        if due is None:
            return self.poll
        return max(0.05, min(self.poll, (as_utc(due) - utcnow()).total_seconds()))

    def _loop(self) -> None:
        """Run jobs while there are due ones; then wait for a wake, a due job or `poll`."""
        while not self._stopping.is_set():
            seen = self._wakes
            try:
                outcome = self.run_once()
            except (SQLAlchemyError, MovieVaultError) as error:
                # The catalogue is locked or down: try again after a pause, never die.
                log.warning("the probe worker could not reach the catalogue: %s", error)
                outcome = None
            except Exception:
                log.exception("the probe worker hit an unexpected error")
                outcome = None
            if outcome is not None:
                continue
            pause = self._idle_seconds()
            with self._changed:
                if self._wakes == seen and not self._stopping.is_set():
                    self._changed.wait(pause)

