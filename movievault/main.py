"""The `movievault` command as installed: `upload` needs only this package and `requests`;
every other command is the server's (movievault/cli.py, with Flask), loaded when named.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from movievault.client import ApiClient
from movievault.collection import Candidate, HashCache, Summary, cache_path, hash_all, walk
from movievault.uploader import Uploader, UploadFailed

#: The exit status of a run stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


def _version() -> str:
    """The installed distribution's version (a bare checkout on the import path has none)."""
    try:
        return metadata.version("movievault")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Commands(click.Group):
    """`upload` here; the server's commands from movievault/cli.py, imported only when one
    of them (or the list of them) is asked for."""

    def _server(self, ctx: click.Context) -> click.Group:
        """The server's command group, with what Flask's commands find the app by."""
        from flask.cli import ScriptInfo

        from movievault.cli import cli as server

        if not isinstance(ctx.obj, ScriptInfo):
            ctx.obj = ScriptInfo(create_app=server.create_app, set_debug_flag=False)
        return server

    def list_commands(self, ctx: click.Context) -> list[str]:
        """This group's commands and the server's."""
        own = super().list_commands(ctx)
        return sorted({*own, *self._server(ctx).list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """`upload` without Flask; any other name from the server's group."""
        command = super().get_command(ctx, cmd_name)
        if command is None:
            command = self._server(ctx).get_command(ctx, cmd_name)
        return command


@click.group(cls=_Commands)
@click.version_option(
    _version(), "--version", prog_name="movievault", message="%(prog)s %(version)s",
    help="Show MovieVault's version and exit.",
)
def cli() -> None:
    """MovieVault: a self-hosted movie library."""


@cli.command("upload")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--server", "server_url", required=True, envvar="MOVIEVAULT_SERVER",
              help="The server's address, e.g. https://movies.example.org.")
@click.option("--parallel", type=click.IntRange(min=1), default=4, show_default=True,
              help="Parts of a large file sent at once.")
@click.option("--jobs", type=click.IntRange(min=1), default=lambda: min(4, os.cpu_count() or 1),
              show_default="cores, at most 4", help="Files hashed at once.")
@click.option("--dry-run", is_flag=True, help="Say what would be uploaded; send nothing.")
def upload_command(
    paths: tuple[Path, ...], server_url: str, parallel: int, jobs: int, dry_run: bool
) -> None:
    """Upload movies (and subtitle files beside them) to a MovieVault server.

    The personal API token comes from MOVIEVAULT_TOKEN (create one on the account page,
    or with `movievault token create` on the server). Run it again after an interruption:
    files already there are skipped, and a large file resumes where it stopped.
    """
    token = os.environ.get("MOVIEVAULT_TOKEN", "").strip()
    if not token:
        raise click.ClickException(
            "Set MOVIEVAULT_TOKEN to a personal API token of your account (create one on "
            "the account page, or with `movievault token create --user NAME` on the server)."
        )
    uploader = Uploader(client=ApiClient.with_token(server_url, token), parallel=parallel)
    summary = Summary()
    try:
        run_upload(paths, uploader=uploader, jobs=jobs, dry_run=dry_run, summary=summary)
    except KeyboardInterrupt:
        _echo(summary)
        click.echo("Interrupted: run the same command again to resume.", err=True)
        sys.exit(INTERRUPTED)
    except UploadFailed as error:
        raise click.ClickException(str(error)) from error
    _echo(summary, dry_run=dry_run)
    sys.exit(summary.exit_code)


def run_upload(
    paths: tuple[Path, ...], *, uploader: Uploader, jobs: int, dry_run: bool,
    summary: Summary,
) -> None:
    """Walk, hash (with the cache), check for duplicates in bulk, then upload the rest."""
    cache = HashCache(cache_path())
    try:
        items = walk(paths, summary)
        total = sum(item.size for item in items)
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc="Hashing",
                  disable=None) as bar:
            items = hash_all(items, jobs=jobs, cache=cache, summary=summary,
                             progress=bar.update)
    finally:
        cache.close()
    owned = uploader.owned(items) if items else {}
    todo = [item for item in items if item.sha256 not in owned]
    if dry_run:
        summary.duplicates += [item.name for item in items if item.sha256 in owned]
        summary.imported += [item.name for item in todo]
        return
    for item in items:
        if item.sha256 in owned:
            # A movie sent before may have gained a subtitle file beside it since.
            _attach_subtitles(uploader, item, owned[item.sha256], summary)
            summary.duplicates.append(item.name)
    _send(uploader, todo, summary)


def _attach_subtitles(
    uploader: Uploader, item: Candidate, movie: dict[str, Any], summary: Summary
) -> None:
    """Upload the subtitle files beside a movie to it; the server skips those it has."""
    for subtitle in item.subtitles:
        try:
            attached_before, _ = uploader.upload(subtitle,
                                                 path=f"/files/{movie['id']}/subtitles")
        except (UploadFailed, OSError) as error:
            summary.failed.append((str(subtitle.path), str(error)))
            continue
        if not attached_before:
            summary.subtitles.append(subtitle.name)


def _send(uploader: Uploader, todo: list[Candidate], summary: Summary) -> None:
    """Upload the files one after the other (their parts in parallel), with a progress bar."""
    with tqdm(total=sum(item.size for item in todo), unit="B", unit_scale=True,
              unit_divisor=1024, desc="Uploading", disable=None) as bar:
        heard = uploader.progress

        def progress(count: int) -> None:
            bar.update(count)
            heard(count)

        uploader.progress = progress
        for number, item in enumerate(todo, start=1):
            bar.set_postfix_str(f"file {number}/{len(todo)}")
            try:
                duplicate, movie = uploader.upload(item)
            except (UploadFailed, OSError) as error:
                summary.failed.append((str(item.path), str(error)))
                continue
            _attach_subtitles(uploader, item, movie, summary)
            (summary.duplicates if duplicate else summary.imported).append(item.name)


def _echo(summary: Summary, *, dry_run: bool = False) -> None:
    """Print the summary as `import` does."""
    lines = summary.lines(dry_run=dry_run, verb="uploaded")
    for line in lines:
        click.echo(line, err=line.startswith("Failed"))
