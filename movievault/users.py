"""Accounts: creating users, checking and changing passwords, sessions, quotas (no Flask)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from movievault.errors import Conflict, InvalidInput, NotFound
from movievault.locking import begin_write
from movievault.models import User

MIN_PASSWORD_LENGTH = 8
#: The lock scope of creating accounts (on PostgreSQL; SQLite's writers take turns anyway),
#: so first-run setup's "is there no account yet?" holds until its own account is in.
ACCOUNTS_SCOPE = "accounts"
OWNER_EXISTS = "This library already has its owner: sign in with that account."
_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")


# Made at the first unknown name, not at import: every command and worker would pay ~0.3 s.
@cache
def _dummy_hash() -> str:
    """A hash to check an unknown name's password against, so both paths cost one check."""
    return generate_password_hash("movievault-not-a-password")


def validate_username(username: str) -> str:
    """Return the trimmed username, or raise when it is not 1–64 safe characters."""
    username = username.strip()
    if not _USERNAME.fullmatch(username):
        raise InvalidInput(
            "Usernames are 1 to 64 characters: letters, digits, and . _ @ - only."
        )
    return username


def validate_password(password: str) -> str:
    """Return the password, or raise when it is too short."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def count_users(*, session: Session) -> int:
    """Return how many accounts exist (zero means first-run setup)."""
    return session.exec(select(func.count()).select_from(User)).one()


def find_user(*, session: Session, username: str) -> User | None:
    """Return the account of that name, whatever its case ("Carol" is "carol")."""
    wanted = username.strip().lower()
    return session.exec(select(User).where(func.lower(User.username) == wanted)).first()


def create_user(*, session: Session, username: str, password: str) -> User:
    """Create an account with a hashed password; raise if the name is taken or invalid."""
    return _create(session=session, username=username, password=password, first=False)


def create_first_user(*, session: Session, username: str, password: str) -> User:
    """Create the owner's account at first-run setup; raise Conflict if any account exists.

    Two setups at once (two tabs, two people) have both seen no account: the count is
    taken again in a write transaction that serializes them, so only the first gets in.
    """
    return _create(session=session, username=username, password=password, first=True)


def _create(*, session: Session, username: str, password: str, first: bool) -> User:
    """Insert an account, after checking (under the accounts lock) that it may be made."""
    name = validate_username(username)
    password_hash = generate_password_hash(validate_password(password))
    # Hashed before the lock: the slow part needs nothing of the database, and the
    # transaction below keeps every other writer waiting.
    begin_write(session, ACCOUNTS_SCOPE)
    if first and count_users(session=session) > 0:
        session.rollback()
        raise Conflict(OWNER_EXISTS)
    if find_user(session=session, username=name) is not None:
        session.rollback()
        raise InvalidInput(f"The username {name!r} is already taken.")
    user = User(username=name, password_hash=password_hash)
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        # The name (in some case) was taken between our look-up and the insert.
        session.rollback()
        raise InvalidInput(f"The username {name!r} is already taken.") from error
    session.refresh(user)
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """Return the user when the password matches, else None (same cost either way)."""
    unknown_name_hash = _dummy_hash()  # made now, so a first unknown name costs no more
    user = find_user(session=session, username=username)
    if user is None:
        check_password_hash(unknown_name_hash, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def get_user(*, session: Session, user_id: int) -> User | None:
    """Return the user with that id, if any."""
    return session.get(User, user_id)


@dataclass(frozen=True)
class Identity:
    """What every signed-in request needs of its account: id, name, session generation."""

    id: int
    username: str
    session_generation: int


# Every request of a signed-in person reads this: a Core statement, built once, skips the
# ORM's identity map and object loading (half the cost of `session.get`).
_IDENTITY = select(User.username, User.session_generation).where(
    col(User.id) == bindparam("user_id")
)


def get_identity(*, session: Session, user_id: int) -> Identity | None:
    """The account's identity, or None when there is no account with that id."""
    row = session.connection().execute(_IDENTITY, {"user_id": user_id}).first()
    return None if row is None else Identity(user_id, row.username, row.session_generation)


def _get(session: Session, username: str) -> User:
    """The account of that name, or NotFound."""
    user = find_user(session=session, username=username)
    if user is None or user.id is None:
        raise NotFound(f"There is no account {username!r}.")
    return user


def end_sessions(*, session: Session, user_id: int) -> int:
    """End every session of the user (they sign in again); return the new generation.

    One UPDATE, so two sign-outs at once both count and neither is lost.
    """
    session.exec(
        update(User)
        .where(col(User.id) == user_id)
        .values(session_generation=User.session_generation + 1)
    )
    session.commit()
    user = session.get(User, user_id, populate_existing=True)
    if user is None:
        raise NotFound("That account no longer exists.")
    return user.session_generation


def set_password(*, session: Session, user_id: int, password: str) -> int:
    """Store a new password and end every session; return the new session generation."""
    hashed = generate_password_hash(validate_password(password))
    session.exec(update(User).where(col(User.id) == user_id).values(password_hash=hashed))
    return end_sessions(session=session, user_id=user_id)


def reset_password(*, session: Session, username: str, password: str) -> User:
    """Set the password of the named account (an administrator's command)."""
    user = _get(session, username)
    assert user.id is not None
    set_password(session=session, user_id=user.id, password=password)
    return user


def rename_user(*, session: Session, old: str, new: str) -> str:
    """Rename an account and return its new name; `old` is matched exactly first.

    Only the id and name columns are touched, so this also works on a catalogue whose
    upgrade stopped at two names differing only in case (the way to resolve that clash).
    """
    accounts = session.exec(select(col(User.id), col(User.username))).all()
    matches = [row for row in accounts if row[1] == old.strip()] or [
        row for row in accounts if row[1].lower() == old.strip().lower()
    ]
    if len(matches) != 1:
        raise NotFound(f"There is no account {old!r}.")
    user_id = matches[0][0]
    name = validate_username(new)
    if any(row[1].lower() == name.lower() and row[0] != user_id for row in accounts):
        raise InvalidInput(f"The username {name!r} is already taken.")
    try:
        session.exec(update(User).where(col(User.id) == user_id).values(username=name))
        session.commit()
    except IntegrityError as error:
        session.rollback()
        raise InvalidInput(f"The username {name!r} is already taken.") from error
    return name


def set_quota(*, session: Session, username: str, quota_bytes: int | None) -> User:
    """Limit the bytes the account may keep (None: no limit)."""
    if quota_bytes is not None and quota_bytes < 0:
        raise InvalidInput("A quota cannot be negative.")
    user = _get(session, username)
    user.quota_bytes = quota_bytes
    session.add(user)
    session.commit()
    return user
