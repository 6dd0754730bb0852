"""The OpenAPI 3.1 document of the JSON API, made from the app's routes and the shapes in
api_schema.py: a route is described by the Operation its view declares, so what the
document says is what the view parses and answers."""

from __future__ import annotations

import re
import types
from typing import Any, Union, get_args, get_origin

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from movievault import __doc__ as about
from movievault.api_schema import ATTRIBUTE, ErrorAnswer, Operation
from movievault.config import settings
from movievault.library import SORTS
from movievault.media.names import MAX_TITLE_LENGTH

#: What each refusal means, as docs/API.md's conventions say it.
ERRORS = {
    400: "Malformed request: not JSON, wrong types, unknown fields, out-of-range values, a bad "
         "hash; or a missing CSRF token on a signed-in session.",
    401: "Not signed in (no session, and no valid token).",
    404: "No such thing for you: other users' ids are not found either.",
    409: "Clashes with work under way (the upload is being completed or cancelled by another "
         "request), or the same content is being uploaded elsewhere.",
    413: "Too large: a body past 1 MiB, an upload past the quota or MAX_PENDING_UPLOADS, a "
         "subtitle file past 5 MiB. Nothing was written.",
    422: "What the store holds does not match what was declared, the store refused it, or "
         "the file cannot be read; the upload was discarded and nothing recorded.",
    429: "Too many wrong passwords or unknown tokens from this address: wait and try again.",
    503: "The store is unreachable or failing, or the catalogue cannot be written; nothing "
         "was written, retry later.",
    507: "The server's disk is down to its free-space reserve; nothing was written.",
}
ERROR_EXAMPLES = {
    400: "sha256 must be 64 hexadecimal characters.",
    401: "Sign in first: this API needs a session.",
    404: "No such file.",
    409: "This upload is still being completed by another request; try again.",
    413: "The request is larger than the server accepts.",
    422: "Part 3's ETag does not match what the store holds.",
    429: "Too many failed sign-in attempts. Wait 15 minutes and try again.",
    503: "The store could not be reached; nothing was recorded. Try again later.",
    507: "The server is short of disk space; new uploads must wait.",
}

LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "q", "in": "query", "required": False,
     "description": f"Words to find in the name or title (case-insensitive); only the first "
                    f"{MAX_TITLE_LENGTH} characters count.",
     "schema": {"type": "string"}, "example": "heat"},
    # Lenient on purpose (links people edit by hand): an order or page the server does not
    # know is the default one, never a refusal; so the schemas take any text.
    {"name": "sort", "in": "query", "required": False,
     "description": f"The order, one of {', '.join(SORTS)} (a leading `-` reverses it); "
                    "anything else, or none, is `-created`.",
     "schema": {"type": "string", "examples": list(SORTS)}},
    {"name": "page", "in": "query", "required": False,
     "description": "A whole number from 1 (PAGE_SIZE files each); anything else is page 1, "
                    "and a number below 1 is 1.",
     "schema": {"type": "string", "examples": ["1", "2"]}},
]

SECURITY_SCHEMES = {
    "session": {"type": "apiKey", "in": "cookie", "name": "session",
                "description": "The session cookie of `POST /login` (the sign-in form)."},
    "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken",
             "description": "With the session cookie, every POST, PATCH and DELETE carries the "
                            'token of any page\'s `<meta name="csrf-token">`.'},
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "A personal API token (`movievault token create`); no CSRF token "
                              "needed. A bad, revoked or expired token is 401 at once."},
}
READ: list[dict[str, list[str]]] = [{"session": []}, {"bearer": []}]
WRITE: list[dict[str, list[str]]] = [{"session": [], "csrf": []}, {"bearer": []}]
_ARGUMENT = re.compile(r"<(?:(\w+):)?(\w+)>")


def _models(kind: Any) -> list[type[BaseModel]]:
    """The models an answer declares: one, a union of several, or none."""
    if get_origin(kind) in (Union, types.UnionType):
        return [model for arg in get_args(kind) for model in _models(arg)]
    return [kind] if isinstance(kind, type) and issubclass(kind, BaseModel) else []


def _path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    """A Flask rule as an OpenAPI path, with its path parameters."""
    parameters = []
    for converter, name in _ARGUMENT.findall(rule):
        schema: dict[str, Any] = (
            {"type": "integer", "minimum": 0} if converter == "int"
            else {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
        )
        parameters.append({"name": name, "in": "path", "required": True, "schema": schema})
    return _ARGUMENT.sub(r"{\2}", rule), parameters


def _schema_of(kind: Any, refs: dict[Any, Any]) -> dict[str, Any]:
    """The schema of an answer: a model's reference, or a choice of several."""
    found = [refs[(model, "serialization")] for model in _models(kind)]
    return found[0] if len(found) == 1 else {"oneOf": found}


def _error(status: int, *, page: bool) -> dict[str, Any]:
    """A refusal: `{"error": ...}` from the API, a readable page from a page route."""
    if page:
        return {"description": ERRORS[status], "content": {"text/html": {"schema": {
            "type": "string"}}}}
    return {"description": ERRORS[status], "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/ErrorAnswer"},
        "example": {"error": ERROR_EXAMPLES[status]},
    }}}


def _operation(
    spec: Operation, endpoint: str, method: str, parameters: list[dict[str, Any]],
    refs: dict[Any, Any],
) -> dict[str, Any]:
    """One operation of the document."""
    responses: dict[str, Any] = {}
    for status, kind in sorted(spec.answers.items()):
        if isinstance(kind, str):  # a media type: bytes, or a redirect to them
            responses[str(status)] = _raw(status, kind)
        elif kind is None:
            responses[str(status)] = {"description": "Done; no content."}
        else:
            responses[str(status)] = {"description": "OK", "content": {
                "application/json": {"schema": _schema_of(kind, refs)}}}
    # Every API call may carry a bearer token, so every one may meet the token throttle.
    errors = set(spec.errors) | ({401, 429} if not spec.page else set())
    for status in sorted(errors):
        responses[str(status)] = _error(status, page=spec.page)
    built: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": spec.summary,
        "tags": list(spec.tags),
        "parameters": parameters + spec.extra.get("parameters", []),
        "responses": responses,
        "security": [{"session": []}] if spec.page else (READ if method == "get" else WRITE),
    }
    if spec.body is not None:
        built["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": refs[(spec.body, "validation")]}}}
    return built


def _raw(status: int, media_type: str) -> dict[str, Any]:
    """An answer that is not JSON: a redirect to the store, or a file's bytes."""
    if status == 302:
        return {
            "description": f"A redirect to a signed URL of the store ({media_type}), valid for "
                           "URL_EXPIRES seconds; to the sign-in page without a session.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        }
    return {"description": "The file.", "content": {media_type: {"schema": {"type": "string"}}}}


def document(app: Flask, *, root: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`'s API, served at `root` (the app's path)."""
    described = []
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions[rule.endpoint], ATTRIBUTE, None)
        if spec is not None:
            described.append((rule, spec))
    wanted: set[tuple[type[BaseModel], str]] = {(ErrorAnswer, "serialization")}
    for _, spec in described:
        wanted |= {(model, "serialization") for kind in spec.answers.values()
                   for model in _models(kind)}
        if spec.body is not None:
            wanted.add((spec.body, "validation"))
    refs, definitions = models_json_schema(
        sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])),  # type: ignore[arg-type]
        ref_template="#/components/schemas/{model}",
    )
    _limit_sizes(definitions.get("$defs", {}), app)
    paths: dict[str, dict[str, Any]] = {}
    for rule, spec in sorted(described, key=lambda pair: pair[0].rule):
        path, parameters = _path(rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                spec, rule.endpoint, method.lower(), parameters, refs
            )
    return {
        "openapi": "3.1.0",
        "info": {"title": "MovieVault API", "version": _version(),
                 "description": f"{about.strip() if about else ''} The protocol, step by "
                                "step, is in docs/API.md."},
        "servers": [{"url": root or "/"}],
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "securitySchemes": SECURITY_SCHEMES},
    }


def _limit_sizes(schemas: dict[str, Any], app: Flask) -> None:
    """A movie's size is limited by MAX_FILE_SIZE: this server's own setting."""
    largest = settings(app).max_file_size
    upload = schemas.get("UploadRequest", {}).get("properties", {})
    if "size" in upload:
        upload["size"]["maximum"] = largest


def _version() -> str:
    """The installed package's version."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("movievault")
    except PackageNotFoundError:
        return "0"
