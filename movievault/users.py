"""Accounts: creating users and checking passwords (no Flask here)."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select
from werkzeug.security import check_password_hash, generate_password_hash

from movievault.errors import InvalidInput
from movievault.models import User

MIN_PASSWORD_LENGTH = 8
_USERNAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
# Compared against when the username is unknown, so both paths cost one hash check.
_DUMMY_HASH = generate_password_hash("movievault-not-a-password")


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


def create_user(*, session: Session, username: str, password: str) -> User:
    """Create an account with a hashed password; raise if the name is taken or invalid."""
    user = User(
        username=validate_username(username),
        password_hash=generate_password_hash(validate_password(password)),
    )
    session.add(user)
    try:
        session.commit()
    except IntegrityError as error:
        # The username was taken between our check and the insert, or before.
        session.rollback()
        raise InvalidInput(f"The username {user.username!r} is already taken.") from error
    session.refresh(user)
    return user


def authenticate(*, session: Session, username: str, password: str) -> User | None:
    """Return the user when the password matches, else None (same cost either way)."""
    user = session.exec(select(User).where(User.username == username.strip())).first()
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


def get_user(*, session: Session, user_id: int) -> User | None:
    """Return the user with that id, if any."""
    return session.get(User, user_id)
