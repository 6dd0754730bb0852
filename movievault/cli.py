"""The `movievault` command: serve, accounts, bucket setup and clean-up."""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from movievault import db, uploads, users
from movievault.errors import InvalidInput, MovieVaultError
from movievault.storage import get_storage, storage_kind


def _create_app() -> Flask:
    """Build the app for the CLI (imported lazily to keep `--help` fast)."""
    from movievault import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False)
def cli() -> None:
    """MovieVault: a self-hosted movie library."""


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
    with db.session_scope(current_app) as session:
        try:
            user = users.create_user(session=session, username=username, password=password)
        except InvalidInput as error:
            raise click.ClickException(error.message) from error
    click.echo(f"Created user {user.username}.")


@click.command("setup-bucket")
@with_appcontext
def setup_bucket_command() -> None:
    """Create the bucket if missing; apply CORS and the multipart clean-up rule."""
    config = current_app.config
    try:
        done = get_storage().setup(
            public_url=config["PUBLIC_URL"], abort_after_days=config["ABORT_MULTIPART_DAYS"]
        )
    except MovieVaultError as error:
        raise click.ClickException(error.message) from error
    for line in done:
        click.echo(line)


@click.command("gc")
@with_appcontext
def gc_command() -> None:
    """Abort and forget uploads that were never finished and are past their expiry."""
    with db.session_scope(current_app) as session:
        removed, failures = uploads.collect_garbage(session=session, storage=get_storage())
    click.echo(f"Removed {removed} expired upload(s).")
    for failure in failures:
        click.echo(f"Could not remove {failure}", err=True)
    if failures:
        sys.exit(1)


@click.command("serve")
@click.option("--host", default=None, help="Address to listen on (default: MOVIEVAULT_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: MOVIEVAULT_PORT).")
@click.option("--threads", type=int, default=None, help="Worker threads (MOVIEVAULT_THREADS).")
@with_appcontext
def serve_command(host: str | None, port: int | None, threads: int | None) -> None:
    """Serve MovieVault with waitress, a production WSGI server."""
    from waitress import serve

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    config = app.config
    host = host or config["HOST"]
    port = port or config["PORT"]
    threads = threads or config["THREADS"]
    storage = get_storage(app)  # start the embedded store now, not on the first request
    kind = storage_kind(config)
    where = {
        "local": f"files on this disk under {config['DATA_DIR']}",
        "s3": f"S3 bucket {config['S3_BUCKET'] or 'movievault'}",
        "embedded-s3": "the embedded S3 store, in memory only (lost when MovieVault stops)",
    }[kind]
    click.echo(f"MovieVault keeps movies in {where}.")
    if storage.ephemeral:
        click.secho("WARNING: nothing you upload survives a restart.", fg="yellow")
    with db.session_scope(app) as session:
        if users.count_users(session=session) == 0:
            click.echo("No account yet: the first page you open creates the owner account.")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    click.echo(f"Open http://{shown_host}:{port}/ in your browser ({threads} threads).")
    serve(app, host=host, port=port, threads=threads, ident="MovieVault", channel_timeout=600)


def init_app(app: Flask) -> None:
    """Register the commands on the app (so `flask --app wsgi ...` has them too)."""
    for command in (create_user_command, setup_bucket_command, gc_command, serve_command):
        app.cli.add_command(command)
