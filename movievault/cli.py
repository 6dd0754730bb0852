"""The `movievault` command: serve, accounts, bucket setup and clean-up."""

from __future__ import annotations

import math
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from importlib import metadata

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from tqdm import tqdm

from movievault import db, dbcopy, garbage, migrate, migrations, probing, quotas, users
from movievault.backends import build_storage, get_storage
from movievault.config import ConfigError, default_media_workers, settings
from movievault.errors import MovieVaultError, NotFound
from movievault.models import StoredFile
from movievault.units import human_size
from movievault.worker import ProbeWorker

#: How often `movievault probe` looks for new files: no app process can wake it.
PROBE_POLL_SECONDS = 2.0


def _create_app() -> Flask:
    """Build the app for the CLI (imported lazily to keep `--help` fast).

    A setting, folder or database it cannot start with is one line saying what to do, not
    a traceback.
    """
    from movievault import create_app

    try:
        return create_app()
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    except migrations.MigrationRefused as error:
        raise click.ClickException(error.message) from error


def _version() -> str:
    """The installed distribution's version (a bare checkout on the import path has none)."""
    try:
        return metadata.version("movievault")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Commands(FlaskGroup):
    """Flask's command group, whose help says in one line why the app could not be built.

    Flask lists the app's commands in `--help` by building the app, and prints the
    traceback of any error but its own; the app's commands are then left out.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """The group's commands, plus the app's when it can be built."""
        try:
            ctx.ensure_object(ScriptInfo).load_app()
        except click.ClickException as error:
            click.echo(f"Error: {error.format_message()}\n", err=True)
            return sorted(click.Group.list_commands(self, ctx))
        return super().list_commands(ctx)


@click.group(
    cls=_Commands, create_app=_create_app, add_default_commands=False,
    add_version_option=False,
)
@click.version_option(
    _version(), "--version", prog_name="movievault", message="%(prog)s %(version)s",
    help="Show MovieVault's version and exit.",
)
def cli() -> None:
    """MovieVault: a self-hosted movie library."""


@contextmanager
def _catalogue(app: Flask) -> Iterator[Session]:
    """A catalogue session for a command: a domain error ends it with its message."""
    with db.session_scope(app) as session:
        try:
            yield session
        except MovieVaultError as error:
            raise click.ClickException(error.message) from error


def _read_password() -> str:
    """First line of stdin when piped, else a prompt asked twice."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.command("create-user")
@click.argument("username")
@with_appcontext
def create_user_command(username: str) -> None:
    """Create an account (password from stdin's first line, or prompted twice)."""
    password = _read_password()
    with _catalogue(current_app) as session:
        user = users.create_user(session=session, username=username, password=password)
    click.echo(f"Created user {user.username}.")


@click.command("reset-password")
@click.argument("username")
@with_appcontext
def reset_password_command(username: str) -> None:
    """Set an account's password (read like create-user's) and sign it out everywhere."""
    password = _read_password()
    with _catalogue(current_app) as session:
        user = users.reset_password(session=session, username=username, password=password)
    click.echo(f"New password set for {user.username}; every session of it has ended.")


@cli.command("rename-user", with_appcontext=False)
@click.argument("old")
@click.argument("new")
def rename_user_command(old: str, new: str) -> None:
    """Rename an account (also before an upgrade that found names differing only in case).

    Registered on the command group itself, not through the app: an app whose catalogue
    upgrade stopped cannot be built, and this command is how to fix what stopped it.
    """
    from movievault import create_app

    try:
        app = create_app({"SKIP_MIGRATIONS": True})
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    with _catalogue(app) as session:
        name = users.rename_user(session=session, old=old, new=new)
    click.echo(f"Renamed {old} to {name}.")


def _parse_size(text: str) -> int | None:
    """Read a quota: bytes, or a number with KB/MB/GB/TB (1,000-based), or 'none'."""
    cleaned = text.strip().upper().replace(",", "").replace(" ", "")
    if cleaned in ("NONE", "UNLIMITED", "OFF"):
        return None
    units = {"TB": 10**12, "GB": 10**9, "MB": 10**6, "KB": 10**3, "B": 1}
    unit = next((name for name in units if cleaned.endswith(name)), "")
    number, factor = cleaned[: len(cleaned) - len(unit)], units.get(unit, 1)
    try:
        value = float(number) * factor
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not 0 <= value < 2**63:
        raise click.BadParameter(
            f"{text!r} is not a size from 0 bytes to 9 EB (e.g. 500GB, 2TB or none)."
        )
    return int(value)


@click.command("set-quota")
@click.argument("username")
@click.argument("size")
@with_appcontext
def set_quota_command(username: str, size: str) -> None:
    """Limit what an account may keep (e.g. 500GB, 2TB), or 'none' for no limit."""
    quota = _parse_size(size)
    with _catalogue(current_app) as session:
        user = users.set_quota(session=session, username=username, quota_bytes=quota)
        assert user.id is not None
        held = quotas.usage(session=session, owner_id=user.id)
    limit = "no limit" if quota is None else human_size(quota)
    click.echo(f"{user.username} may keep {limit}; they use {human_size(held.total_bytes)}.")


@click.group("db")
def db_group() -> None:
    """The catalogue's schema."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade_command() -> None:
    """Apply the schema migrations (the app also does this when it starts)."""
    engine = db.engine()
    migrations.upgrade(engine)
    with engine.connect() as connection:
        click.echo(f"The catalogue is at revision {migrations.current(connection)}.")


@click.command("migrate-db")
@click.option("--to", "target_url", required=True, metavar="URL",
              help="The empty database to copy to: postgresql+psycopg://USER@HOST/NAME.")
@with_appcontext
def migrate_db_command(target_url: str) -> None:
    """Copy the catalogue into another database (SQLite to PostgreSQL), checked by counts."""
    source = db.engine()
    try:
        target = db.open_catalogue(target_url, migrate=False)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    if target.url == source.url:
        raise click.ClickException("--to names the catalogue itself: give another one.")
    try:
        counts = dbcopy.copy_catalogue(source=source, target=target, say=click.echo)
    except dbcopy.CopyRefused as error:
        # Refusals (a count that differs included) come before the commit: rolled back.
        raise click.ClickException(f"{error.message} Nothing was copied.") from error
    except dbcopy.CommitUnconfirmed as error:
        raise click.ClickException(
            f"The connection to {db.shown_url(target_url)} failed while committing the copy "
            f"({error.message}): the copy may be complete, or not there at all (it commits "
            "all at once, after every count matched). Compare the target's tables with the "
            "counts above: if they hold those rows, the copy is whole. If the target is "
            "empty, nothing was copied. Run this command again. (A MovieVault already "
            "using the target may have written a row of its own, such as a failed sign-in.)"
        ) from error
    except SQLAlchemyError as error:
        raise click.ClickException(
            f"Could not copy the catalogue to {db.shown_url(target_url)} "
            f"({dbcopy.describe_error(error)}). Nothing was copied."
        ) from error
    finally:
        target.dispose()
    click.echo(
        f"Copied {sum(counts.values())} rows of {len(counts)} tables; every count matches. "
        f"Now set MOVIEVAULT_DATABASE_URL={db.shown_url(target_url)} (with its password) "
        "and restart MovieVault."
    )


@click.command("setup-bucket")
@with_appcontext
def setup_bucket_command() -> None:
    """Create the bucket if missing; apply CORS and the multipart clean-up rule."""
    config = settings()
    try:
        done = get_storage().setup(
            public_url=config.public_url, abort_after_days=config.abort_multipart_days
        )
    except MovieVaultError as error:
        raise click.ClickException(error.message) from error
    for line in done:
        click.echo(line)


@click.command("gc")
@with_appcontext
def gc_command() -> None:
    """Abort and forget uploads that were never finished and are past their expiry."""
    storage = get_storage()
    with db.session_scope(current_app) as session:
        report = garbage.housekeeping(
            session=session, storage=storage, abort_after_days=settings().abort_multipart_days
        )
    failures = report.failures
    click.echo(f"Removed {report.expired_uploads} expired upload(s).")
    click.echo(
        f"Removed {report.orphans} stray object(s) that no file or upload refers to "
        f"(older than {garbage.ORPHAN_GRACE.total_seconds() / 3600:g} hours)."
    )
    for line in report.swept:
        click.echo(line)
    for failure in failures:
        click.echo(f"Could not remove {failure}", err=True)
    if failures:
        sys.exit(1)


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: MOVIEVAULT_HOST).")
@click.option(
    "--port", type=click.IntRange(1, 65535), default=None,
    help="Port (default: MOVIEVAULT_PORT).",
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="Worker threads (MOVIEVAULT_THREADS).",
)
@click.option(
    "--workers", type=click.IntRange(min=1), default=None,
    help="Server processes; above 1, gunicorn serves (MOVIEVAULT_WORKERS).",
)
@with_appcontext
def serve_command(
    host: str | None, port: int | None, threads: int | None, workers: int | None
) -> None:
    """Serve MovieVault: waitress in one process, or gunicorn with --workers N."""
    from movievault.prefork import check_address, check_workers, serve_workers
    from movievault.serving import listen, run, serve_options

    # Flask types current_app as Flask, not as the proxy it is: unwrap the real app.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = settings(app)
    workers = workers or config.workers
    options = serve_options(config, host=host, port=port, threads=threads)
    host, port = options.adjustments["host"], options.adjustments["port"]
    if threads is not None:
        db.size_pool(app, threads)  # built for THREADS: one connection per request thread
    try:
        check_workers(config, workers)
        # The address first: a taken port is said before anything else starts.
        server = listen(app, options) if workers == 1 else None
        if server is None:
            check_address(host, port)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    try:
        storage = get_storage(app)  # start the embedded store now, not on the first request
        storage.check_usable()  # a bucket or folder that can never work stops us here
    except MovieVaultError as error:
        if server is not None:
            server.close()
        raise click.ClickException(error.message) from error
    click.echo(f"MovieVault keeps movies in {storage.describe()}.")
    notice = storage.notice()
    if notice:
        click.secho(f"WARNING: {notice}", fg="yellow")
    with db.session_scope(app) as session:
        if users.count_users(session=session) == 0:
            click.echo("No account yet: the first page you open creates the owner account.")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(
        f"Open http://{shown_host}:{port}/ in your browser ({workers} process"
        f"{'es' if workers > 1 else ''}, {options.adjustments['threads']} threads each, "
        f"each keeping up to {db.pool_size(app)} catalogue connections)."
    )
    if workers > 1:
        serve_workers(app, options, workers)  # each worker starts its own prober
        return
    from movievault.background import start_probe_worker

    start_probe_worker(app)
    run(server)


@click.command("migrate-storage")
@click.option(
    "--to", "target_kind", type=click.Choice(["s3"]), required=True,
    help="The store to copy to (its MOVIEVAULT_S3_* settings must be set).",
)
@with_appcontext
def migrate_storage_command(target_kind: str) -> None:
    """Copy every movie from the local disk to the configured bucket (run again to resume)."""
    # Flask types current_app as Flask, not as the proxy it is: unwrap the real app.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = settings(app)
    if not (config.s3_bucket or config.s3_endpoint_url):
        raise click.ClickException(
            "Set MOVIEVAULT_S3_BUCKET (and MOVIEVAULT_S3_ENDPOINT_URL for MinIO, B2, R2...) "
            "to the bucket to copy to, with its credentials, then run this again."
        )
    try:
        source = build_storage(app, "local")
        target = build_storage(app, target_kind)
        click.echo(f"Copying from {config.data_dir} to S3 bucket {config.s3_bucket}.")
        for line in target.setup(
            public_url=config.public_url, abort_after_days=config.abort_multipart_days
        ):
            click.echo(line)
        with db.session_scope(app) as session:
            report = migrate.migrate_objects(
                session=session, source=source, target=target, say=click.echo
            )
    except MovieVaultError as error:
        raise click.ClickException(f"{error.message} Run the command again to resume.") from error
    click.echo(
        f"{report.copied} copied ({report.bytes_copied} bytes), {report.present} already there, "
        f"{len(report.failures)} failed, of {report.total} file(s) "
        f"({report.posters} with a poster, copied along)."
    )
    if report.failures:
        for failure in report.failures:
            click.echo(f"Not copied: {failure}", err=True)
        click.echo("Fix these and run the command again; nothing else needs copying twice.")
        sys.exit(1)
    if report.forgotten_uploads:
        click.echo(
            f"Forgot {report.forgotten_uploads} unfinished upload(s) begun on the local store; "
            "add those files again after switching."
        )
    click.echo(
        "Every file is in the bucket. Now set MOVIEVAULT_STORAGE=s3 (keeping the "
        "MOVIEVAULT_S3_* settings) and restart MovieVault. The files under "
        f"{config.data_dir} are no longer used: remove them once you have checked the library."
    )


@click.command("rescan")
@click.option("--missing", "scope", flag_value="missing", default=True,
              help="Files never probed: recorded before this feature, or still queued "
                   "(the default).")
@click.option("--failed", "scope", flag_value="failed", help="Files whose probe failed.")
@click.option("--all", "scope", flag_value="all", help="Every file (posters are kept).")
@click.option("--user", "username", default=None, help="Only this account's files.")
@with_appcontext
def rescan_command(scope: probing.Scope, username: str | None) -> None:
    """Probe files now, in this process, with a progress bar (a few MB read from each)."""
    # Flask types current_app as Flask, not as the proxy it is: unwrap the real app.
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    storage = get_storage(app)
    config = settings(app).probing
    with _catalogue(app) as session:
        owner_id = None
        if username is not None:
            user = users.find_user(session=session, username=username)
            if user is None:
                raise NotFound(f"There is no account {username!r}.")
            owner_id = user.id
        file_ids = probing.files_to_rescan(session=session, scope=scope, owner_id=owner_id)
        counts: Counter[str] = Counter()
        failed: list[int] = []
        # The bar goes to the terminal only (stderr, and not when piped or captured).
        with tqdm(total=len(file_ids), unit="file", desc="Probing", disable=None) as bar:
            for file_id, outcome in probing.rescan(
                session=session, storage=storage, settings=config, file_ids=file_ids
            ):
                counts[outcome] += 1
                if outcome == "failed":
                    failed.append(file_id)
                bar.update(1)
        reasons = [
            (stored.name, stored.media_error)
            for file_id in failed
            if (stored := session.get(StoredFile, file_id)) is not None
        ]
    click.echo(
        f"Probed {len(file_ids)} file(s): {counts['ready']} ready, {counts['failed']} failed, "
        f"{counts['retry']} to be retried by the server, "
        f"{counts['busy'] + counts['lost']} being probed by the server."
    )
    for name, error in reasons:
        click.echo(f"Failed: {name}: {error}", err=True)


@click.command("probe")
@click.option(
    "--threads", type=click.IntRange(min=1), default=None,
    help="Files probed at once (default: MEDIA_WORKERS, or what this machine's cores allow "
         "when that is 0).",
)
@click.option(
    "--poll", type=click.FloatRange(min=0.1), default=PROBE_POLL_SECONDS, show_default=True,
    help="Seconds between looks for new files.",
)
@with_appcontext
def probe_command(threads: int | None, poll: float) -> None:
    """Probe new files as they are recorded, until stopped (Ctrl-C or SIGTERM).

    For app processes started with MEDIA_WORKERS=0: their requests then never share a CPU
    with probing, which runs here, on this host or another one sharing the catalogue and
    the store.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = settings(app).probing
    config = replace(config, workers=threads or config.workers or default_media_workers())
    worker = ProbeWorker(
        session_factory=partial(Session, db.engine_of(app), expire_on_commit=False),
        storage=get_storage(app), settings=config, poll=poll,
    )
    stopping = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda _signum, _frame: stopping.set())
    worker.start()
    click.echo(f"Probing new files, {config.workers} at a time, until stopped.")
    # No app process wakes this one: it looks for due jobs every `poll` seconds.
    while not stopping.wait(1.0):
        pass
    click.echo("Stopping after the probes under way.")
    worker.stop()


def init_app(app: Flask) -> None:
    """Register the commands on the app (so `flask --app wsgi ...` has them too)."""
    from movievault.cli_tokens import token_group  # it uses this module's helpers

    for command in (
        create_user_command,
        reset_password_command,
        set_quota_command,
        db_group,
        migrate_db_command,
        setup_bucket_command,
        gc_command,
        serve_command,
        migrate_storage_command,
        rescan_command,
        probe_command,
        token_group,
    ):
        app.cli.add_command(command)
    from movievault.import_command import import_command

    app.cli.add_command(import_command)
