"""`movievault token create|list|revoke`: personal API tokens from the server's shell."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlmodel import Session

from movievault import api_tokens, users
from movievault.cli import _catalogue as catalogue
from movievault.errors import NotFound
from movievault.models import isoformat, utcnow


def _user_id(session: Session, username: str) -> int:
    """The id of the named account, or a NotFound saying there is none."""
    user = users.find_user(session=session, username=username)
    if user is None or user.id is None:
        raise NotFound(f"There is no account {username!r}.")
    return user.id


@click.group("token")
def token_group() -> None:
    """Personal API tokens (for scripts and `movievault upload`)."""


@token_group.command("create")
@click.option("--user", "username", required=True, help="The account the token acts as.")
@click.option("--name", default="command line", show_default=True,
              help="What the token is for (shown on the account page).")
@click.option("--expires-days", type=int, default=None,
              help="Days until it expires (default: never).")
@with_appcontext
def create_command(username: str, name: str, expires_days: int | None) -> None:
    """Make a token; its secret is printed once, alone on the last line."""
    with catalogue(current_app) as session:
        user_id = _user_id(session, username)
        expires_at = api_tokens.expiry_in_days(expires_days, now=utcnow())
        token, secret = api_tokens.create_token(
            session=session, user_id=user_id, name=name, expires_at=expires_at
        )
    until = isoformat(token.expires_at) if token.expires_at else "never"
    click.echo(f"Created token {token.id} ({token.name}) for {username}; expires: {until}.")
    click.echo("Copy it now: it is not shown again.")
    click.echo(secret)


@token_group.command("list")
@click.option("--user", "username", required=True, help="Whose tokens to list.")
@with_appcontext
def list_command(username: str) -> None:
    """List an account's tokens that are not revoked (their secrets cannot be shown)."""
    now = utcnow()
    with catalogue(current_app) as session:
        tokens = api_tokens.list_tokens(session=session, user_id=_user_id(session, username))
    if not tokens:
        click.echo(f"{username} has no API tokens.")
        return
    click.echo("ID\tNAME\tCREATED\tLAST USED\tEXPIRES")
    for token in tokens:
        used = isoformat(token.last_used_at) if token.last_used_at else "never"
        expires = isoformat(token.expires_at) if token.expires_at else "never"
        if api_tokens.is_expired(token, now=now):
            expires += " (expired)"
        click.echo(f"{token.id}\t{token.name}\t{isoformat(token.created_at)}\t{used}\t{expires}")


@token_group.command("revoke")
@click.option("--user", "username", required=True, help="Whose token it is.")
@click.argument("token_id", type=int)
@with_appcontext
def revoke_command(username: str, token_id: int) -> None:
    """Revoke a token by its id (from `token list`); it stops working at once."""
    with catalogue(current_app) as session:
        api_tokens.revoke_token(
            session=session, user_id=_user_id(session, username), token_id=token_id
        )
    click.echo(f"Revoked token {token_id} of {username}.")
