"""Security headers on every response, CSRF protection and proxy trust."""

from __future__ import annotations

import re
from functools import lru_cache

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from movievault.backends import get_storage
from movievault.config import settings
from movievault.storage import OBJECT_POLICY

csrf = CSRFProtect()

#: Static scripts that compile WebAssembly (hash-wasm). A worker is governed by the policy
#: served with its own script, so only it gets 'wasm-unsafe-eval'; pages stay without it.
WASM_WORKERS = frozenset({"js/hash-worker.js"})
#: An address fit to name in a policy: scheme, host, optional port and a plain path.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.\-]+(?::\d+)?(?:/[A-Za-z0-9._~\-/]*)?")


# Every response carries one, and its inputs vary little (the names the server is reached
# by, the store, wasm or not): built once per combination. The cache is bounded, as a Host
# header chooses one of the static sources.
@lru_cache(maxsize=64)
def content_security_policy(
    *, static_sources: tuple[str, ...], store_origins: tuple[str, ...], wasm: bool = False
) -> str:
    """Code and styles from the app's /static/ only; fetches and media also from the store.

    Not 'self' for code: it would also trust /storage/, where the local store serves what
    people upload. `wasm` adds 'wasm-unsafe-eval' (WebAssembly only, never JS eval).
    """
    static = " ".join(static_sources)
    stores = " ".join(store_origins)
    directives = {
        "default-src": "'self'",
        "script-src": f"{static} 'wasm-unsafe-eval'" if wasm else static,
        "style-src": static,
        "worker-src": static,
        "img-src": f"'self' data: {stores}".strip(),
        "connect-src": f"'self' {stores}".strip(),
        "media-src": f"'self' {stores}".strip(),
        "form-action": f"'self' {stores}".strip(),
        "frame-src": "'none'",
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _static_sources() -> tuple[str, ...]:
    """The app's /static/ folder at PUBLIC_URL and at the address this request came to.

    The second keeps the pages working when people use another name for the same server
    (a LAN address); it is only named when it is a plain address, so a forged Host header
    cannot write into the policy.
    """
    path = f"{current_app.static_url_path}/"
    public = settings().public_url + path
    here = request.root_url.rstrip("/") + path
    if here.lower() != public.lower() and _PLAIN_URL.fullmatch(here):
        return (public, here)
    return (public,)


def _store_origins() -> tuple[str, ...]:
    """The store's origins, computed once per app (the local store's are the app's own)."""
    origins = current_app.extensions.get("movievault.store_origins")
    if origins is None:
        origins = tuple(o for o in get_storage().origins() if o != "'self'")
        current_app.extensions["movievault.store_origins"] = origins
    return origins


def bearer_secret() -> str | None:
    """The secret of an `Authorization: Bearer` header on a JSON API request, else None.

    Only the API takes tokens: pages and their /files/... routes stay cookie-only, so a
    token cannot act as a signed-in person in a browser. "" when the header has no secret.
    """
    if request.blueprint != "api":
        return None
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" else None


def _protect_from_csrf() -> None:
    """Check the CSRF token, except on API requests that carry a bearer token.

    Those are not sent by a browser on the person's behalf: a page elsewhere cannot add an
    Authorization header without this app's CORS consent, and they never use the cookie.
    """
    if current_app.config["WTF_CSRF_ENABLED"] and bearer_secret() is None:
        csrf.protect(apply_exemptions=True)


def _set_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    headers = response.headers
    if request.blueprint == "local_storage":
        # What the local store serves is never a page of the app (its objects carry their
        # own policy, see storage.present).
        headers.setdefault("Content-Security-Policy", OBJECT_POLICY)
    else:
        wasm = request.endpoint == "static" and (
            (request.view_args or {}).get("filename") in WASM_WORKERS
        )
        headers.setdefault("Content-Security-Policy", content_security_policy(
            static_sources=_static_sources(), store_origins=_store_origins(), wasm=wasm,
        ))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype in ("text/html", "application/json"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Trust the configured proxies, enable CSRF and add the headers."""
    count = settings(app).proxy_count
    if count:
        # Flask's documented way to wrap its WSGI app; its types see a method assigned to.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_prefix=count
        )
    csrf.init_app(app)
    # flask-wtf's own check cannot be told about bearer tokens: run it from ours instead.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.before_request(_protect_from_csrf)
    app.after_request(_set_headers)
