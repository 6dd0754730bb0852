"""`GET /healthz`: whether this instance can serve requests, for a load balancer, a
container's health check or a monitor.

It asks the catalogue for one row, because an instance that cannot reach it can serve
nothing. It does not ask the store: a store outage is every instance's at once, taking
them all out of the balancer would turn the app's clear 503s into no answer at all, and
the upload routes already answer it with a clear 503. Anyone may ask; the answer says
nothing about the library.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from movievault import db
from movievault.handlers import json_error

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """200 `{"status": "ok"}` when the catalogue answers, else 503 with the reason."""
    try:
        db.session().execute(text("SELECT 1")).one()
    except SQLAlchemyError as error:
        log.warning("Health check: the catalogue does not answer: %s", error)
        answer = json_error("The catalogue (database) does not answer.", 503)
    else:
        answer = jsonify(status="ok")
    answer.headers["Cache-Control"] = "no-store"
    return answer
