"""Sign-in, sign-out and first-run setup pages, and flask-login's wiring."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)

from movievault import db, throttle, users
from movievault.errors import InvalidInput, TooManyAttempts, json_error, wants_json

bp = Blueprint("auth", __name__)
login_manager = LoginManager()


class SessionUser(UserMixin):
    """The signed-in user as flask-login sees it: an id and a name, no password hash."""

    def __init__(self, user_id: int, username: str) -> None:
        self.id = user_id
        self.username = username


@login_manager.user_loader
def _load_user(user_id: str) -> SessionUser | None:
    """Load the session's user, or None when the account is gone."""
    try:
        user = users.get_user(session=db.session(), user_id=int(user_id))
    except ValueError:
        return None
    return SessionUser(user.id, user.username) if user and user.id is not None else None


@login_manager.unauthorized_handler
def _unauthorized() -> Response:
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
def login() -> Response | tuple[str, int] | str:
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
    address = request.remote_addr or "unknown"
    try:
        throttle.check_allowed(session=session, username=username, address=address)
    except TooManyAttempts as error:
        return render_template(
            "auth/login.html", next=next_url, error=error.message, username=username
        ), 429
    user = users.authenticate(session=session, username=username, password=password)
    if user is None:
        throttle.record_failure(session=session, username=username, address=address)
        return render_template(
            "auth/login.html", next=next_url, username=username,
            error="That username and password do not match.",
        ), 401
    throttle.record_success(session=session, username=username)
    assert user.id is not None
    login_user(SessionUser(user.id, user.username))
    return redirect(next_url)


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out (POST only, so a link on another site cannot sign you out)."""
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> Response | tuple[str, int] | str:
    """First run: create the owner account while no account exists."""
    session = db.session()
    if users.count_users(session=session) > 0:
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
        user = users.create_user(session=session, username=username, password=password)
    except InvalidInput as error:
        return render_template("auth/setup.html", username=username, error=error.message), 422
    assert user.id is not None
    login_user(SessionUser(user.id, user.username))
    flash(f"Welcome, {user.username}. Your library is ready.", "info")
    return redirect(url_for("pages.library"))


def init_app(app: Flask) -> None:
    """Register the pages and flask-login."""
    login_manager.init_app(app)
    app.register_blueprint(bp)
