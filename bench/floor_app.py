"""P2's floor: the duplicate check's request and answer with nothing of MovieVault between.

A bare Flask view that parses the same JSON body and answers the same shape, served the way
`movievault serve` serves the app (waitress with 16 threads, or gunicorn's gthread workers):
what the servers, Flask and the load generator cost on this machine before any sign-in,
CSRF check, catalogue query or security header. No request rate the app reaches can exceed it.
"""

from __future__ import annotations

from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

app = Flask(__name__)


@app.post("/api/files/check")
def check() -> ResponseReturnValue:
    """Every listed file answered as not a duplicate, as the app answers unknown hashes."""
    files = (request.get_json() or {})["files"]
    return jsonify({"results": [
        {"sha256": entry["sha256"], "duplicate": False, "file": None} for entry in files
    ]})
