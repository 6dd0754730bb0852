"""Security headers on every response, CSRF protection and proxy trust."""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix

from movievault.storage import get_storage

csrf = CSRFProtect()

#: Static scripts that compile WebAssembly (hash-wasm). A worker is governed by the policy
#: served with its own script, so only it gets 'wasm-unsafe-eval'; pages stay without it.
WASM_WORKERS = frozenset({"js/hash-worker.js"})


def content_security_policy(store_origins: list[str]) -> str:
    """Allow scripts, styles and fetches from the app only, plus the store for transfers."""
    stores = " ".join(store_origins)
    directives = {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "worker-src": "'self'",
        "connect-src": f"'self' {stores}".strip(),
        "media-src": f"'self' {stores}".strip(),
        "form-action": f"'self' {stores}".strip(),
        "frame-ancestors": "'none'",
        "base-uri": "'none'",
        "object-src": "'none'",
    }
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _store_origins() -> list[str]:
    """The store's origins, computed once per app (the local store's are the app's own)."""
    origins = current_app.extensions.get("movievault.store_origins")
    if origins is None:
        origins = [o for o in get_storage().origins() if o != "'self'"]
        current_app.extensions["movievault.store_origins"] = origins
    return origins


def _set_headers(response: Response) -> Response:
    """Add the headers every response carries."""
    headers = response.headers
    policy = content_security_policy(_store_origins())
    if request.endpoint == "static" and (request.view_args or {}).get("filename") in WASM_WORKERS:
        policy = policy.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if response.mimetype in ("text/html", "application/json"):
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    """Trust the configured proxies, enable CSRF and add the headers."""
    if app.config["PROXY_COUNT"]:
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_prefix=count
        )
    csrf.init_app(app)
    app.after_request(_set_headers)
