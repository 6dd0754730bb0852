"""Sign-in, sign-out, first-run setup and account pages (API tokens among them), and
flask-login's wiring, bearer tokens on the API included."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask.typing import ResponseReturnValue
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from movievault import api_tokens, db, quotas, throttle, users
from movievault.errors import (
    CatalogueUnavailable,
    Conflict,
    InvalidInput,
    TokenRejected,
    TooManyAttempts,
)
from movievault.handlers import json_error, wants_json
from movievault.models import User, utcnow
from movievault.security import bearer_secret

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class SessionUser(UserMixin):
    """The signed-in user as flask-login sees it: id, name and session generation."""

    def __init__(self, user: User | users.Identity) -> None:
        assert user.id is not None
        self.id = user.id
        self.username = user.username
        self.generation = user.session_generation

    def get_id(self) -> str:
        """What the session cookie keeps: the id and the generation it was signed in with."""
        return f"{self.id}:{self.generation}"


@login_manager.user_loader
def _load_user(session_id: str) -> SessionUser | None:
    """Load the session's user; None when the account is gone or the session was ended.

    Sign-out, "sign out everywhere" and a new password bump the account's generation, so
    a copy of an older cookie (stolen, or left on another device) stops working at once.
    """
    user_id, _, generation = session_id.partition(":")
    try:
        user = users.get_identity(session=db.session(), user_id=int(user_id))
        if user is None or user.session_generation != int(generation):
            return None
    except ValueError:
        return None
    return SessionUser(user)


def _authenticate_bearer() -> ResponseReturnValue | None:
    """On an API request with `Authorization: Bearer`, act as the token's user, or refuse.

    A bad, revoked or expired token is a 401 at once, never a fall-back to the session
    cookie. The user is set for this request only (nothing is written to the cookie).
    Unknown tokens count against the address in the login throttle.
    """
    secret = bearer_secret()
    if secret is None:
        return None
    session = db.session()
    address = request.remote_addr or "unknown"
    try:
        throttle.check_token_address(session=session, address=address)
        user = api_tokens.authenticate(session=session, secret=secret, now=utcnow())
    except TooManyAttempts as error:
        return json_error(error.message, error.status)
    except TokenRejected as error:
        if error.guessed:
            throttle.token_guessed(session=session, address=address)
        answer = json_error(error.message, error.status)
        answer.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return answer
    # flask-login keeps the request's user here; `current_user` then is the token's user.
    g._login_user = SessionUser(user)
    return None


def _sign_in(user: User) -> None:
    """Start a fresh session for `user`: nothing of the signed-out one (its CSRF token
    included) carries over, so a token planted before sign-in is worthless after it."""
    cookie.clear()
    login_user(SessionUser(user))


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    """API clients get 401 JSON; people are sent to the sign-in page and back."""
    if wants_json():
        return json_error("Sign in first: this API needs a session.", 401)
    if users.count_users(session=db.session()) == 0:
        return redirect(url_for("auth.setup"))
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def safe_next(target: str | None) -> str:
    """Return `target` when it is a path on this site, else the library page."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("pages.library")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 0x20 for c in target):
        return url_for("pages.library")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """Show the sign-in form; sign in when the password matches and the throttle allows."""
    session = db.session()
    if users.count_users(session=session) == 0:
        return redirect(url_for("auth.setup"))
    next_url = safe_next(request.values.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url)
    if request.method == "GET":
        return render_template("auth/login.html", next=next_url)

    username = request.form.get("username", "")
    password = request.form.get("password", "")
    try:
        attempt = throttle.begin_attempt(
            session=session, username=username, address=request.remote_addr or "unknown"
        )
    except (TooManyAttempts, CatalogueUnavailable) as error:
        return render_template(
            "auth/login.html", next=next_url, error=error.message, username=username
        ), error.status
    user = users.authenticate(session=session, username=username, password=password)
    if user is None:
        throttle.failed(session=session, attempt=attempt)
        return render_template(
            "auth/login.html", next=next_url, username=username,
            error="That username and password do not match.",
        ), 401
    assert user.id is not None
    throttle.succeeded(session=session, attempt=attempt, user_id=user.id)
    _sign_in(user)
    return redirect(next_url)


@bp.post("/logout")
@login_required
def logout() -> ResponseReturnValue:
    """Sign out (POST only, so a link on another site cannot sign you out).

    The account's session generation moves on, so a copy of this cookie is dead too.
    """
    users.end_sessions(session=db.session(), user_id=int(current_user.id))
    logout_user()
    cookie.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> ResponseReturnValue:
    """First run: create the owner account while no account exists."""
    session = db.session()
    if users.count_users(session=session) > 0:
        if request.method == "POST":  # a setup page left open after someone finished it
            flash(users.OWNER_EXISTS, "info")
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("auth/setup.html")
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    if password != request.form.get("password_confirm", ""):
        return render_template(
            "auth/setup.html", username=username, error="The two passwords differ."
        ), 422
    try:
        user = users.create_first_user(session=session, username=username, password=password)
    except Conflict as error:
        # Another setup created the owner's account since this one's count above.
        flash(error.message, "info")
        return redirect(url_for("auth.login"))
    except InvalidInput as error:
        return render_template("auth/setup.html", username=username, error=error.message), 422
    _sign_in(user)
    flash(f"Welcome, {user.username}. Your library is ready.", "info")
    return redirect(url_for("pages.library"))


@bp.get("/account")
@login_required
def account() -> ResponseReturnValue:
    """The account page: what the library uses, the password, signing out everywhere."""
    return _account_page()


def _account_page(
    error: str | None = None, *, token_error: str | None = None, new_secret: str | None = None,
) -> str:
    """Render the account page, with an error for the password or token form when there is
    one, and a new token's secret the one time it is shown."""
    session = db.session()
    user_id = int(current_user.id)
    user = users.get_user(session=session, user_id=user_id)
    usage = quotas.usage(session=session, owner_id=user_id)
    tokens = api_tokens.list_tokens(session=session, user_id=user_id)
    now = utcnow()
    expired = {token.id for token in tokens if api_tokens.is_expired(token, now=now)}
    return render_template(
        "auth/account.html", user=user, usage=usage, error=error, tokens=tokens,
        expired=expired, token_error=token_error, new_secret=new_secret,
        max_expiry_days=api_tokens.MAX_EXPIRY_DAYS,
    )


def _expiry_days(text: str) -> int | None:
    """The form's "expires after N days" (empty: never); raise when it is not a number."""
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput("The expiry is a whole number of days, or empty for never.") from None


@bp.post("/account/tokens")
@login_required
def create_token() -> ResponseReturnValue:
    """Make an API token and show its secret, this once (the page is not cached)."""
    session = db.session()
    try:
        expires_at = api_tokens.expiry_in_days(
            _expiry_days(request.form.get("expires_days", "")), now=utcnow()
        )
        _token, secret = api_tokens.create_token(
            session=session, user_id=int(current_user.id),
            name=request.form.get("name", ""), expires_at=expires_at,
        )
    except InvalidInput as error:
        return _account_page(token_error=error.message), 422
    return _account_page(new_secret=secret), 201


@bp.post("/account/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    """Revoke one of the user's API tokens; it stops working at once (another user's: 404)."""
    api_tokens.revoke_token(session=db.session(), user_id=int(current_user.id), token_id=token_id)
    flash("The token is revoked: anything using it is refused from now on.", "info")
    return redirect(url_for("auth.account")), 303


@bp.post("/account/password")
@login_required
def change_password() -> ResponseReturnValue:
    """Change the password (the current one first); every other session ends."""
    session = db.session()
    form = request.form
    if form.get("new_password", "") != form.get("new_password_confirm", ""):
        return _account_page("The two new passwords differ."), 422
    try:
        attempt = throttle.begin_attempt(
            session=session, username=current_user.username,
            address=request.remote_addr or "unknown",
        )
    except (TooManyAttempts, CatalogueUnavailable) as error:
        return _account_page(error.message), error.status
    user = users.authenticate(
        session=session, username=current_user.username,
        password=form.get("current_password", ""),
    )
    if user is None or user.id is None:
        throttle.failed(session=session, attempt=attempt)
        return _account_page("The current password is not right."), 401
    throttle.succeeded(session=session, attempt=attempt, user_id=user.id)
    try:
        users.set_password(session=session, user_id=user.id, password=form.get("new_password", ""))
    except InvalidInput as error:
        return _account_page(error.message), 422
    fresh = users.get_user(session=session, user_id=user.id)
    assert fresh is not None
    _sign_in(fresh)  # this session carries on with the new generation
    flash("Your password is changed. Every other device is signed out.", "info")
    return redirect(url_for("auth.account"))


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere() -> ResponseReturnValue:
    """End every session of this account, this one included."""
    users.end_sessions(session=db.session(), user_id=int(current_user.id))
    logout_user()
    cookie.clear()
    flash("You are signed out on every device.", "info")
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    """Register the pages and flask-login."""
    login_manager.init_app(app)
    app.before_request(_authenticate_bearer)
    app.register_blueprint(bp)
