"""The probe queue (movievault/jobs.py) on a real SQLite file, without the app: one job per
file, claims that never hand one job to two workers, leases that outlive a dead worker, and
retries with backoff.

The queue driven by the real worker, with real media on both stores, is in
tests/test_probing.py.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from movievault import db, jobs, migrations
from movievault.models import ProbeJob, StoredFile, User, utcnow

LEASE = timedelta(minutes=2)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A catalogue file with the app's own pragmas (WAL, busy timeout), fully migrated."""
    made = db.make_engine(f"sqlite:///{tmp_path / 'catalogue.db'}")
    migrations.upgrade(made)
    yield made
    made.dispose()


def add_files(engine: Engine, count: int) -> list[int]:
    """Record `count` files of one user, without jobs; their ids."""
    with Session(engine) as session:
        session.add(User(id=1, username="alice", password_hash="x"))
        session.commit()  # the files refer to it, and the tables have no ORM relationship
        files = [
            StoredFile(owner_id=1, name=f"f{n}.mkv", size=10, sha256=f"{n:064x}",
                       content_type="video/x-matroska", key=f"movies/1/{n}", title=f"f{n}")
            for n in range(count)
        ]
        session.add_all(files)
        session.commit()
        return [f.id for f in files if f.id is not None]


def job_of(engine: Engine, file_id: int) -> ProbeJob | None:
    """The file's job, read fresh."""
    with Session(engine) as session:
        return session.exec(select(ProbeJob).where(ProbeJob.file_id == file_id)).first()


def test_one_job_per_file_however_often_it_is_queued(engine: Engine) -> None:
    (first, second) = add_files(engine, 2)
    with Session(engine) as session:
        jobs.enqueue(session=session, file_id=first)
        jobs.enqueue(session=session, file_id=first)
        jobs.enqueue_many(session=session, file_ids=[first, second, second, 999])  # 999: gone
        session.commit()
        assert sorted(j.file_id for j in session.exec(select(ProbeJob))) == [first, second]


def test_a_claim_holds_the_job_until_its_lease_ends(engine: Engine) -> None:
    (file_id,) = add_files(engine, 1)
    with Session(engine) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()
        claim = jobs.claim(session=session, lease=LEASE)
        assert claim is not None and (claim.file_id, claim.attempts) == (file_id, 1)
        # Held: no other claim gets it, by due jobs or by file.
        assert jobs.claim(session=session, lease=LEASE) is None
        assert jobs.claim(session=session, lease=LEASE, file_id=file_id) is None
        # The worker died: once its lease has run out, the next claim takes the job over.
        later = utcnow() + LEASE + timedelta(seconds=1)
        takeover = jobs.claim(session=session, lease=LEASE, now=later)
        assert takeover is not None and takeover.attempts == 2
        # The first worker comes back: its claim no longer holds the job, it records nothing.
        assert not jobs.take_done(session=session, claim=claim)
        assert not jobs.retry_later(session=session, claim=claim, error="late")
        assert jobs.take_done(session=session, claim=takeover)
        session.commit()
    assert job_of(engine, file_id) is None


def test_failures_are_retried_after_30_s_2_min_and_10_min_then_given_up(engine: Engine) -> None:
    (file_id,) = add_files(engine, 1)
    waits = []
    with Session(engine) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()
        now = utcnow()
        for attempt in range(1, jobs.MAX_ATTEMPTS + 1):
            claim = jobs.claim(session=session, lease=LEASE, now=now)
            assert claim is not None and claim.attempts == attempt
            delay = jobs.retry_delay(claim.attempts)
            if delay is None:
                break
            assert jobs.retry_later(session=session, claim=claim, error=f"down {attempt}", now=now)
            # Not due before its time, even to a worker whose clock is just short of it.
            assert jobs.claim(session=session, lease=LEASE, now=now + delay / 2) is None
            job = job_of(engine, file_id)
            assert job is not None and job.last_error == f"down {attempt}"
            assert job.leased_until is None and job.lease is None
            waits.append(delay)
            now += delay
    assert waits == [timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10)]
    assert jobs.MAX_ATTEMPTS == 4


def test_the_newest_due_job_comes_first(engine: Engine) -> None:
    old, new = add_files(engine, 2)
    now = utcnow()
    with Session(engine) as session:
        jobs.enqueue(session=session, file_id=old, now=now - timedelta(days=30))
        jobs.enqueue(session=session, file_id=new, now=now)
        session.commit()
        order = [jobs.claim(session=session, lease=LEASE) for _ in range(3)]
    assert [c.file_id if c else None for c in order] == [new, old, None]


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
def test_concurrent_claims_never_hand_one_job_to_two_workers(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    # Two engines stand for two processes; four threads on each claim as fast as they can.
    url = (request.getfixturevalue("postgres_url") if database == "postgres"
           else f"sqlite:///{tmp_path / 'catalogue.db'}")
    engines = [db.make_engine(url) for _ in range(2)]
    migrations.upgrade(engines[0])
    file_ids = add_files(engines[0], 60)
    with Session(engines[0]) as session:
        jobs.enqueue_many(session=session, file_ids=file_ids)
        session.commit()
    claimed: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8, timeout=30)

    def work(engine: Engine) -> None:
        try:
            barrier.wait()
            with Session(engine) as session:
                while (claim := jobs.claim(session=session, lease=LEASE)) is not None:
                    claimed.append(claim.file_id)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(engines[n % 2],)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()
    assert errors == []
    assert sorted(claimed) == sorted(file_ids)  # each once: none twice, none left over


def test_deleting_a_file_takes_its_job_along(engine: Engine) -> None:
    (file_id,) = add_files(engine, 1)
    with Session(engine) as session:
        jobs.enqueue(session=session, file_id=file_id)
        session.commit()
        claim = jobs.claim(session=session, lease=LEASE)
        assert claim is not None
        jobs.forget(session=session, file_id=file_id)
        stored = session.get(StoredFile, file_id)
        session.delete(stored)
        session.commit()
        # The worker that held it records nothing for a file that is gone.
        assert not jobs.take_done(session=session, claim=claim)
    assert job_of(engine, file_id) is None
