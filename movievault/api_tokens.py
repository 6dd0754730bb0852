"""Personal API tokens: made, listed and revoked by their user, checked on API calls (no Flask).

A token's secret is "mvt_" and 32 random bytes (URL-safe base64). Only its SHA-256 is
stored: the secret is shown once, when the token is made, and cannot be read back. A
plain hash (no salt, no slow key derivation) is enough because the secret is random and
long, not a password a person chose; it also lets a request find its token by one
indexed look-up.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from movievault.errors import InvalidInput, NotFound, TokenRejected
from movievault.media.names import is_dropped
from movievault.models import ApiToken, User, as_utc, utcnow

PREFIX = "mvt_"
MAX_NAME_LENGTH = 100
MAX_EXPIRY_DAYS = 3650
#: last_used_at is written at most this often per token: an upload calls the API many
#: times a minute, and a write for each call would only repeat the same minute.
LAST_USED_PRECISION = timedelta(minutes=1)


def hash_secret(secret: str) -> str:
    """The hex SHA-256 a secret is stored (and looked up) as."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def validate_name(name: str) -> str:
    """Return the trimmed name, or raise when it is empty or too long.

    Control and format characters go, as from file names: `movievault token list` prints
    names in a terminal, where an escape sequence would act.
    """
    name = " ".join("".join(ch for ch in name if ch.isspace() or not is_dropped(ch)).split())
    if not name or len(name) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"A token needs a name of 1 to {MAX_NAME_LENGTH} characters (what it is for)."
        )
    return name


def expiry_in_days(days: int | None, *, now: datetime) -> datetime | None:
    """When a token made `now` and valid for `days` expires (None: never); raise when
    `days` is out of range."""
    if days is None:
        return None
    if not 1 <= days <= MAX_EXPIRY_DAYS:
        raise InvalidInput(f"A token expires after 1 to {MAX_EXPIRY_DAYS} days, or never.")
    return now + timedelta(days=days)


def create_token(
    *, session: Session, user_id: int, name: str, expires_at: datetime | None = None
) -> tuple[ApiToken, str]:
    """Make a token for the user; return it and its secret (shown once, never stored)."""
    name = validate_name(name)
    if expires_at is not None and as_utc(expires_at) <= utcnow():
        raise InvalidInput("A token's expiry must lie in the future.")
    if session.get(User, user_id) is None:
        raise NotFound("That account no longer exists.")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user_id, name=name, token_hash=hash_secret(secret), expires_at=expires_at
    )
    session.add(token)
    session.commit()
    session.refresh(token)
    return token, secret


def list_tokens(*, session: Session, user_id: int) -> list[ApiToken]:
    """The user's tokens that are not revoked (expired ones included), newest first."""
    return list(session.exec(
        select(ApiToken)
        .where(ApiToken.user_id == user_id, col(ApiToken.revoked_at).is_(None))
        .order_by(col(ApiToken.created_at).desc(), col(ApiToken.id).desc())
    ).all())


def revoke_token(*, session: Session, user_id: int, token_id: int) -> None:
    """Revoke one of the user's tokens at once; another user's (or a revoked) id is NotFound."""
    revoked = session.exec(
        update(ApiToken)
        .where(
            col(ApiToken.id) == token_id,
            col(ApiToken.user_id) == user_id,
            col(ApiToken.revoked_at).is_(None),
        )
        .values(revoked_at=utcnow())
    )
    session.commit()
    if revoked.rowcount != 1:
        raise NotFound(f"You have no token {token_id}.")


def is_expired(token: ApiToken, *, now: datetime) -> bool:
    """Whether the token's expiry has passed."""
    return token.expires_at is not None and as_utc(token.expires_at) <= now


def authenticate(*, session: Session, secret: str, now: datetime) -> User:
    """The user the secret belongs to; raise TokenRejected saying why when it is unknown,
    revoked or expired. Notes the use in last_used_at (to the minute)."""
    now = as_utc(now)
    token = session.exec(
        select(ApiToken).where(ApiToken.token_hash == hash_secret(secret))
    ).first()
    if token is None:
        raise TokenRejected("That API token is not valid.", guessed=True)
    if token.revoked_at is not None:
        raise TokenRejected("That API token was revoked.", guessed=False)
    if is_expired(token, now=now):
        raise TokenRejected("That API token has expired.", guessed=False)
    user = session.get(User, token.user_id)
    if user is None:
        raise TokenRejected("That API token's account no longer exists.", guessed=False)
    if token.last_used_at is None or as_utc(token.last_used_at) <= now - LAST_USED_PRECISION:
        session.exec(update(ApiToken).where(col(ApiToken.id) == token.id).values(last_used_at=now))
        session.commit()
    return user


def user_for_token(*, session: Session, secret: str, now: datetime) -> User | None:
    """The user the secret belongs to; None when it is unknown, revoked or expired."""
    try:
        return authenticate(session=session, secret=secret, now=now)
    except TokenRejected:
        return None
