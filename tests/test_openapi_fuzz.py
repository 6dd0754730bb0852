"""Schemathesis against the live app, from the app's own OpenAPI document: every operation
gets valid and invalid requests, and every answer is held to what the document promises
(no 5xx, declared status, content type and schema, valid data accepted, invalid refused).

Each operation runs with random ids (almost always someone else's or nobody's: 404) and
with the ids of a real file and a real upload of the signed-in user, so the checks reach
the handlers' own work too. Examples are derandomized and nothing is stored between runs,
so CI sees the same requests each time; MOVIEVAULT_FUZZ=thorough runs more, random ones.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from movievault import api_tokens, db, throttle
from tests.support import LiveServer, add_file, make_user, served

THOROUGH = os.environ.get("MOVIEVAULT_FUZZ") == "thorough"
#: Examples per operation, mode and ids: with random ids valid and invalid requests, with
#: real ids valid ones (invalid ones are mostly refused before the ids matter).
EXAMPLES = 200 if THOROUGH else 3
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not THOROUGH,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
#: What the API answers to well-formed requests it still refuses: a quota or a body too
#: large (413), and what the store holds not matching what was declared (422).
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "413", "422", "429"]
#: Refusals of malformed requests; 413 is the answer to a subtitle file past 5 MiB.
REFUSED = ["400", "401", "403", "404", "405", "409", "413", "415", "422"]
#: Page routes refuse a missing session by sending the browser to sign in (302); API
#: operations declare no 302, so status_code_conformance still catches one there.
REFUSED_BY_PAGES = [*REFUSED, "302"]
#: The part numbers a request may name depend on the upload (its part count, whether its
#: parts carry a SHA-256), which no schema of the request can say: those refusals are 400.
ACCEPTED_BY_PARTS = [*ACCEPTED, "400"]


def _config(token: str) -> schemathesis.Config:
    """The checks' settings, and the token for the document's `bearer` scheme (so the auth
    checks spoil the credentials the API calls really carry)."""
    return schemathesis.Config.from_dict({
        "auth": {"openapi": {"bearer": {"bearer": token}}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "negative_data_rejection": {"expected-statuses": REFUSED},
        },
        "operations": [
            {"include-path-regex": "^/files/", "checks": {
                "negative_data_rejection": {"expected-statuses": REFUSED_BY_PAGES}}},
            {"include-path": "/api/uploads/{upload_id}/parts", "checks": {
                "positive_data_acceptance": {"expected-statuses": ACCEPTED_BY_PARTS}}},
        ],
    })


def _real_ids(server: LiveServer, http: requests.Session, owner: int) -> dict[str, Any]:
    """The ids of a file with a subtitle-free record and of a pending upload of `owner`."""
    file_id = add_file(server.app, owner, "Heat.1995.mkv", data=os.urandom(4096),
                       content_type="video/x-matroska")
    started = http.post(f"{server.url}/api/uploads", json={
        "name": "Ronin.1998.mkv", "size": 8 * 1024 * 1024, "sha256": os.urandom(32).hex(),
    }, timeout=30)
    assert started.status_code == 201, started.text
    return {"file_id": file_id, "upload_id": started.json()["upload"]["id"], "subtitle_id": 1}


def _credentials(http: requests.Session, path: str) -> dict[str, str]:
    """The page routes' credentials as explicit headers, which schemathesis's auth checks
    take off and spoil to see that they then refuse: the signed-in session (downloads and
    posters take no token). API calls carry the token of the `bearer` scheme instead."""
    if path.startswith("/api/"):
        return {}
    return {"Cookie": f"session={http.cookies['session']}",
            "X-CSRFToken": str(http.headers["X-CSRFToken"])}


def _fuzz(operation: Any, server: LiveServer, http: requests.Session, *,
          mode: GenerationMode, ids: dict[str, Any] | None, seen: list[int]) -> str | None:
    """Run one operation's examples, noting each answer's status in `seen`; the failure
    report, or None when all passed."""
    names = {p["name"] for p in operation.definition.raw.get("parameters", [])
             if p["in"] == "path"}
    fixed = {name: value for name, value in (ids or {}).items() if name in names}
    if ids is not None and not fixed:
        return None  # no ids to fix: the random run covers it
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)

    @FUZZ
    @given(case=strategy)
    def run(case: Any) -> None:
        headers = _credentials(http, operation.path)
        response = case.call_and_validate(base_url=server.url, headers=headers, timeout=60)
        seen.append(response.status_code)

    try:
        run()
    except Unsatisfiable:
        return None  # nothing invalid to make of it (e.g. no body, fixed path)
    except (Exception, BaseExceptionGroup) as error:  # schemathesis's FailureGroup
        return f"{operation.label} ({mode.value}, {'real' if ids else 'random'} ids):\n{error}"
    return None


@pytest.mark.xdist_group("openapi-fuzz")
def test_the_api_keeps_the_promises_of_its_document(
    app: Flask, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = make_user(app, "alice")
    with db.session_scope(app) as session:
        _token, secret = api_tokens.create_token(session=session, user_id=owner, name="fuzz")
    # The auth checks send hundreds of made-up tokens from this one address, which the
    # throttle rightly locks out after 5 (tests/test_api_tokens.py tests that); here every
    # request must reach the operation it is about.
    monkeypatch.setattr(throttle, "MAX_FAILURES", 1_000_000)
    with served(app) as server:
        http = server.session_for("alice")
        schema = schemathesis.openapi.from_url(
            f"{server.url}/api/openapi.json", config=_config(secret), timeout=30
        )
        failures = []
        answered: dict[str, list[int]] = {}
        for result in schema.get_all_operations():
            operation = result.ok()
            real = _real_ids(server, http, owner)
            for mode, ids in [(GenerationMode.POSITIVE, None), (GenerationMode.NEGATIVE, None),
                              (GenerationMode.POSITIVE, real)]:
                seen = answered.setdefault(operation.label, [])
                failure = _fuzz(operation, server, http, mode=mode, ids=ids, seen=seen)
                if failure:
                    failures.append(failure)
    assert not failures, f"{len(failures)} failing runs:\n\n" + "\n\n".join(failures)
    # The credentials really reached the operations: each one answered something other
    # than 401 (a fuzz that is never signed in would pass every other check above).
    refused_all = [label for label, statuses in answered.items()
                   if statuses and all(status == 401 for status in statuses)]
    assert len(answered) >= 10 and not refused_all, (answered, refused_all)
