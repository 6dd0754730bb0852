"""API Gateway HTTP API events (payload format 2.0) as Lambda hands them to the function,
and a `requests` transport that sends a session's requests through a Lambda handler.

`http_event` writes the event API Gateway (or a function URL) sends for one HTTP request:
lower-case headers, the Cookie header moved to the `cookies` list, the raw path and query
string, a binary body in base64, and `requestContext.http`. `LambdaTransport` turns each
request of a `requests.Session` into such an event, calls the handler, checks its answer
is a valid payload 2.0 response and turns it back into a `requests.Response` (each
`cookies` entry a Set-Cookie header), so the API client and the sign-in helpers of the
other tests run unchanged against the function. Bytes sent to the store go to the store's
own URL, never through here, as in AWS.
"""

from __future__ import annotations

import base64
import io
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.client import HTTPMessage
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from urllib3 import HTTPResponse

#: What a function URL (and the HTTP API) passes as text; any other body comes in base64.
TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml",
              "application/yaml", "application/graphql")
API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.eu-west-1.amazonaws.com"
#: The app's URL behind the HTTP API's $default stage (no stage name in paths).
BASE_URL = f"https://{DOMAIN}"
SOURCE_IP = "203.0.113.7"


def http_event(
    method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"",
    source_ip: str = SOURCE_IP,
) -> dict[str, Any]:
    """The payload 2.0 event for one request to `url` (on the API's domain)."""
    parts = urlsplit(url)
    lowered: dict[str, str] = {}
    for name, value in (headers or {}).items():
        key = name.lower()
        # Repeated headers arrive joined by commas.
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else str(value)
    cookie_header = lowered.pop("cookie", "")
    cookies = [c.strip() for c in cookie_header.split(";") if c.strip()]
    lowered.update({
        "host": parts.netloc,
        "x-forwarded-for": source_ip,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        "x-amzn-trace-id": f"Root=1-{secrets.token_hex(4)}-{secrets.token_hex(12)}",
    })
    if body:
        lowered["content-length"] = str(len(body))
    query: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    text = lowered.get("content-type", "").startswith(TEXT_TYPES)
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "domainName": parts.netloc,
            "domainPrefix": parts.netloc.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": parts.path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": secrets.token_urlsafe(12),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": bool(body) and not text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = body.decode() if text else base64.b64encode(body).decode()
    return event


def scheduled_event(task: str) -> dict[str, Any]:
    """What an EventBridge schedule whose input is {"movievault": task} invokes with."""
    return {"movievault": task}


@dataclass
class LambdaContext:
    """The runtime's context object: what the handler reads of it (its time left)."""

    timeout_seconds: float = 30.0
    aws_request_id: str = field(default_factory=lambda: secrets.token_hex(16))
    function_name: str = "movievault"
    memory_limit_in_mb: int = 1024
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the invocation's time limit."""
        return int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def check_response(answer: dict[str, Any]) -> None:
    """Fail unless `answer` is a payload 2.0 response API Gateway accepts as is."""
    assert isinstance(answer["statusCode"], int), answer
    assert set(answer) <= {"statusCode", "headers", "cookies", "body", "isBase64Encoded"}
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in answer["headers"].items())
    assert all(isinstance(c, str) for c in answer.get("cookies", []))
    assert isinstance(answer["body"], str) and isinstance(answer["isBase64Encoded"], bool)
    assert "set-cookie" not in answer["headers"], "cookies belong in the cookies list"


def body_of(answer: dict[str, Any]) -> bytes:
    """The bytes a client receives for a payload 2.0 response."""
    text: str = answer["body"]
    return base64.b64decode(text) if answer["isBase64Encoded"] else text.encode()


class _Received:
    """What urllib3 keeps of the response it read (here, already read): its headers."""

    def __init__(self, message: HTTPMessage) -> None:
        self.msg = message

    def isclosed(self) -> bool:
        """Always: there is no connection."""
        return True

    def close(self) -> None:
        """Nothing to close."""


class LambdaTransport(BaseAdapter):
    """Send a session's requests to `handler` as payload 2.0 events."""

    def __init__(self, handler: Any, *, source_ip: str = SOURCE_IP) -> None:
        super().__init__()
        self.handler = handler
        self.source_ip = source_ip
        self.answers: list[dict[str, Any]] = []  # every raw answer, for tests to look at

    def send(  # type: ignore[override]
        self, request: requests.PreparedRequest, **_options: Any
    ) -> requests.Response:
        """Invoke the handler with the request's event; return its answer."""
        body = request.body or b""
        event = http_event(
            request.method or "GET", request.url or "/", headers=dict(request.headers),
            body=body.encode() if isinstance(body, str) else body, source_ip=self.source_ip,
        )
        answer = self.handler(event, LambdaContext())
        check_response(answer)
        self.answers.append(answer)
        message = HTTPMessage()
        for name, value in answer["headers"].items():
            message[name] = value
        for cookie in answer.get("cookies", []):
            message["Set-Cookie"] = cookie
        raw = HTTPResponse(
            body=io.BytesIO(body_of(answer)), headers=list(message.items()),
            status=answer["statusCode"], preload_content=False, decode_content=False,
            # requests reads Set-Cookie for its cookie jar from here.
            original_response=_Received(message),  # type: ignore[arg-type]
        )
        return HTTPAdapter().build_response(request, raw)

    def close(self) -> None:
        """Nothing to close: no connection was opened."""


def session_through(handler: Any) -> tuple[requests.Session, LambdaTransport]:
    """A session whose requests to the API's domain go through `handler`."""
    http = requests.Session()
    # As a browser on the app's pages sends it (Referrer-Policy: same-origin): over https,
    # the CSRF check also wants the request to come from the app's own origin.
    http.headers["Referer"] = f"{BASE_URL}/"
    transport = LambdaTransport(handler)
    http.mount(BASE_URL, transport)
    return http, transport
