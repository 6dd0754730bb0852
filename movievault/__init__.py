"""MovieVault: a self-hosted movie library whose browsers upload straight to storage."""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Flask


def _instance_path() -> str | None:
    """MOVIEVAULT_INSTANCE_PATH, made absolute, or None for Flask's default."""
    path = os.environ.get("MOVIEVAULT_INSTANCE_PATH")
    return os.path.abspath(path) if path else None


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: defaults, then MOVIEVAULT_* variables, then `test_config`."""
    app = Flask(
        __name__,
        template_folder="../templates",
        static_folder="../static",
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
    storage_http.init_app(app)
    cli.init_app(app)
    return app
