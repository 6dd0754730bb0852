"""MovieVault: a self-hosted movie library whose browsers upload straight to storage."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def _installed() -> bool:
    """Whether this is an installed wheel (it carries the templates inside the package)
    rather than a checkout, whose templates/ and static/ are top-level folders."""
    return (Path(__file__).resolve().parent / "templates").is_dir()


def _folder(name: str) -> str:
    """Where `templates` or `static` is: inside the package when installed from a wheel,
    else the top-level folder beside it (a checkout, or an editable install of one)."""
    package = Path(__file__).resolve().parent
    return str(package / name if _installed() else package.parent / name)


def _instance_path() -> str | None:
    """MOVIEVAULT_INSTANCE_PATH, made absolute; else, when installed, the user's data folder
    ($XDG_DATA_HOME/movievault): Flask's default there is inside the virtual environment,
    which reinstalling deletes. None in a checkout: Flask's default, <checkout>/instance."""
    path = os.environ.get("MOVIEVAULT_INSTANCE_PATH")
    if path:
        return os.path.abspath(path)
    if not _installed():
        return None
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # unset, or relative: the spec says to ignore it
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "movievault")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then MOVIEVAULT_* variables, then `test_config`."""
    # Imported here: `movievault upload` runs without Flask installed (see main.py).
    from flask import Flask

    app = Flask(
        __name__,
        template_folder=_folder("templates"),
        static_folder=_folder("static"),
        instance_path=_instance_path(),
        instance_relative_config=True,
    )
    from movievault import (
        api,
        auth,
        cli,
        config,
        db,
        handlers,
        health,
        pages,
        security,
        storage_http,
        templating,
    )

    config.configure(app, test_config)
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        # Per-request lines from boto and the embedded S3 server drown the app's own log.
        for noisy in ("botocore", "boto3", "werkzeug"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    db.init_app(app)
    handlers.init_app(app)
    security.init_app(app)
    auth.init_app(app)
    templating.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(health.bp)
    storage_http.init_app(app)
    cli.init_app(app)
    return app
