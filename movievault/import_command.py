"""The `movievault import` command: folders on the server into a user's library."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from types import FrameType

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session
from tqdm import tqdm

from movievault import db, importer, users
from movievault.backends import get_storage
from movievault.collection import (
    Candidate,
    HashCache,
    Summary,
    cache_path,
    hash_in_order,
    walk,
)
from movievault.config import settings
from movievault.errors import MovieVaultError
from movievault.media import names
from movievault.storage import Storage
from movievault.uploads import UploadSettings

#: The exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


@contextmanager
def first_interrupt_only() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt once; later ones are ignored, so the clean-up it
    starts (discarding the file under way) is not itself cut short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def counter(bar: tqdm) -> Callable[[int], None]:
    """A progress callback several threads may call at once."""
    lock = threading.Lock()

    def update(count: int) -> None:
        with lock:
            bar.update(count)

    return update


def default_jobs() -> int:
    """Hashing threads: one per core, at most 4 (more only wait for the disk)."""
    return max(1, min(4, os.cpu_count() or 1))


def echo_summary(summary: Summary, *, dry_run: bool = False) -> None:
    """Print the summary: totals on stdout, skipped and failed files on stderr too."""
    lines = summary.lines(dry_run=dry_run)
    for line in lines[:2]:
        click.echo(line)
    for line in lines[2:]:
        click.echo(line, err=line.startswith("Failed"))


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--user", "username", required=True, help="The account the movies go to.")
@click.option("--link", is_flag=True,
              help="Hard-link files into the local store instead of copying them (same "
                   "filesystem only; the library then shares the files' disk space).")
@click.option("--dry-run", is_flag=True, help="Say what would be imported; change nothing.")
@click.option("--jobs", type=click.IntRange(min=1), default=default_jobs, show_default=True,
              help="Files hashed at once.")
@with_appcontext
def import_command(
    paths: tuple[Path, ...], username: str, link: bool, dry_run: bool, jobs: int
) -> None:
    """Import movies (and subtitle files beside them) from folders on this server."""
    # Flask types current_app as Flask, not as the proxy it is: unwrap the real app.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    storage = get_storage(app)
    upload_settings = settings(app).uploads
    summary = Summary()
    with db.session_scope(app) as session:
        user = users.find_user(session=session, username=username)
        if user is None:
            raise click.ClickException(f"There is no account {username!r}.")
        owner_id = user.id
        assert owner_id is not None
    cache = HashCache(cache_path())
    if not dry_run:
        # Each imported file's title is read from its name: load the reader meanwhile.
        threading.Thread(target=names.warm_up, name="title-reader", daemon=True).start()
    try:
        with first_interrupt_only():
            items = walk(paths, summary)
            total = sum(item.size for item in items)
            with _bar("Hashing", total, 0) as hashing, _bar("Importing", total, 1) as bar, \
                    db.session_scope(app) as session, closing(hash_in_order(
                        items, jobs=jobs, cache=cache, summary=summary,
                        progress=counter(hashing),
                    )) as hashed:
                # Each file is stored as soon as it is hashed, while the next ones hash;
                # on Ctrl-C, closing the hashing stops files not yet started.
                for number, item in enumerate(hashed, start=1):
                    bar.set_postfix_str(f"file {number}/{len(items)}")
                    if dry_run:
                        assert item.sha256 is not None
                        found = importer.owned(session=session, owner_id=owner_id,
                                               sha256=item.sha256)
                        (summary.duplicates if found else summary.imported).append(item.name)
                    else:
                        _import_one(item, session=session, storage=storage,
                                    upload_settings=upload_settings, owner_id=owner_id,
                                    link=link, summary=summary)
                    bar.update(item.size)
    except KeyboardInterrupt:
        echo_summary(summary)
        click.echo("Interrupted: the file under way was discarded; run the import again to "
                   "continue.", err=True)
        sys.exit(INTERRUPTED)
    finally:
        cache.close()
    echo_summary(summary, dry_run=dry_run)
    sys.exit(summary.exit_code)


def _bar(desc: str, total: int, position: int) -> tqdm:
    """A progress bar of bytes (with speed and time left), on the terminal only."""
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                position=position, disable=None)


def _import_one(
    item: Candidate, *, session: Session, storage: Storage, upload_settings: UploadSettings,
    owner_id: int, link: bool, summary: Summary,
) -> None:
    """Import one hashed movie; its outcome goes in the summary."""
    try:
        result = importer.import_movie(
            session=session, storage=storage, settings=upload_settings,
            owner_id=owner_id, item=item, link=link,
        )
    except importer.InProgress as error:
        summary.skipped.append((str(item.path), error.message))
    except MovieVaultError as error:
        summary.failed.append((str(item.path), error.message))
    except Exception as error:  # one bad file must not stop the others
        session.rollback()
        summary.failed.append((str(item.path), str(error) or type(error).__name__))
    else:
        (summary.duplicates if result.duplicate else summary.imported).append(item.name)
        summary.subtitles += result.subtitles
        summary.failed += result.subtitle_failures
