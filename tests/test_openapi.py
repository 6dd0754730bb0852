"""The OpenAPI document: made from the routes and the shapes the views parse, so every API
route is in it, and what it says about names and titles is what their checks do."""

from __future__ import annotations

import re

import pytest
import schemathesis
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from movievault import api_patterns, openapi, validation
from movievault.api_schema import ATTRIBUTE
from movievault.config import settings as settings_of
from movievault.errors import InvalidInput
from tests.support import make_user, sign_in


@pytest.fixture(params=["local"])
def backend(request: pytest.FixtureRequest) -> str:
    """The document does not depend on the store: one backend is enough."""
    return str(request.param)


def test_every_api_route_is_described_by_the_document_the_app_serves(app: Flask) -> None:
    served = app.test_client().get("/api/openapi.json")
    assert served.status_code == 200  # no session needed to read it
    document = served.get_json()
    assert document["openapi"] == "3.1.0"
    with app.test_request_context():
        assert document == openapi.document(app)
    described = {(path, method) for path, methods in document["paths"].items()
                 for method in methods}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.endpoint not in (
            "api.openapi_document", "api.docs"
        ):
            assert getattr(app.view_functions[rule.endpoint], ATTRIBUTE, None), rule.rule
            path = rule.rule.replace("<int:", "<").replace("<", "{").replace(">", "}")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                assert (path, method.lower()) in described
    assert ("/files/{file_id}/download", "get") in described
    upload = document["paths"]["/api/uploads"]["post"]
    assert {"200", "201", "400", "401", "409", "413", "503", "507"} <= set(upload["responses"])
    assert upload["security"] == [{"session": [], "csrf": []}, {"bearer": []}]
    schemas = document["components"]["schemas"]
    assert schemas["UploadRequest"]["additionalProperties"] is False
    assert schemas["UploadRequest"]["properties"]["size"]["maximum"] == settings_of(
        app).max_file_size
    assert schemas["CheckRequest"]["properties"]["files"]["maxItems"] == 1000
    # schemathesis refuses documents that are not valid OpenAPI.
    assert len(list(schemathesis.openapi.from_dict(document).get_all_operations())) == len(
        described)


def test_the_docs_page_loads_the_vendored_viewer(app: Flask) -> None:
    page = app.test_client().get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in html
    assert "http" not in html.split("<body>")[0].replace('content="width', "")


def test_the_shapes_refuse_unknown_fields_and_keep_the_checks_messages(app: Flask) -> None:
    make_user(app, "alice")
    alice = sign_in(app, "alice")
    for body, status, words in [
        ({"name": "a.mp4", "size": 5, "sha256": "a" * 64, "owner_id": 2}, 400,
         "unknown field owner_id"),
        ({"name": "a.mp4", "size": "5", "sha256": "a" * 64}, 400,
         "size must be an integer number of bytes."),
        ({"name": "a.mp4", "size": 5, "sha256": "xyz"}, 400, "64 hexadecimal"),
        ({"name": "a.mp4", "size": 5}, 400, "sha256 is required"),
        ({"size": 5, "sha256": "a" * 64}, 400, "name must be a string."),
        ([], 400, "must be a JSON object"),
        ({"name": "a.mp4", "size": 5.0, "sha256": "a" * 64, "content_type": 7}, 400,
         "content_type must be a string"),
    ]:
        answer = alice.client.post("/api/uploads", json=body, headers=alice.headers())
        assert answer.status_code == status, (body, answer.get_json())
        assert words in answer.get_json()["error"], (body, answer.get_json())
    # The list's arguments stay lenient, as the document says: the default instead.
    listed = alice.client.get("/api/files?sort=sideways&page=x")
    assert listed.status_code == 200 and listed.get_json()["page"] == 1
    wrong = alice.client.put("/api/files/check", headers=alice.headers())
    assert wrong.status_code == 405 and wrong.headers["Allow"]


def _refused(check: object, value: str) -> bool:
    """Whether the check refuses `value`."""
    try:
        check(value)  # type: ignore[operator]
    except InvalidInput:
        return True
    return False


#: The Basic Multilingual Plane, unassigned code points included (names keep them).
BMP = st.characters(codec="utf-8", max_codepoint=0xFFFF)
TRICKY = st.sampled_from(list("./\\ \t\n\x01\x00\u200b\u202e\u3000\u00a0\x1c\ue000aé"))


@settings(max_examples=500, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet=BMP | TRICKY, max_size=8))
def test_the_name_and_title_patterns_say_what_the_checks_do(text: str) -> None:
    # The document's patterns are made from the Unicode data the checks use.
    assert bool(re.search(api_patterns.file_name_pattern(), text)) != _refused(
        validation.file_name, text), repr(text)
    assert bool(re.search(api_patterns.visible_pattern(), text)) != _refused(
        validation.title, text), repr(text)
