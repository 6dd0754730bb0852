"""deploy/nginx.conf in front of the app: run by a real nginx, as the README describes."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask, request
from requests.adapters import HTTPAdapter

from movievault import create_app
from movievault.client import ApiClient, sha256_of
from tests.support import (
    MIB,
    ROOT,
    free_port,
    make_user,
    served,
    sign_in_over_http,
    stop_process,
    wait_for_port,
)

EXAMPLE = ROOT / "deploy" / "nginx.conf"
#: The client's own address: nginx sees it, the app only through X-Forwarded-For.
CLIENT_ADDRESS = "127.0.0.2"


def nginx_binary() -> str:
    """Debian's nginx; CI must have it (scripts/install-nginx), elsewhere the test skips."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK)
                                      else None)
    if found:
        return found
    if os.environ.get("CI"):
        pytest.fail("nginx is missing: scripts/install-nginx installs it")
    pytest.skip("nginx is not installed (scripts/install-nginx installs Debian's)")


@pytest.fixture
def backend() -> str:
    """The local store: its uploads are what the proxy must stream."""
    return "local"


def self_signed(folder: Path) -> Path:
    """A certificate and key for 127.0.0.1 in `folder`; returns the certificate's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    chain = folder / "fullchain.pem"
    chain.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "privkey.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return chain


def render(example: str, *, app_port: int, http_port: int, https_port: int,
           certificates: Path) -> str:
    """The example with its ports and paths replaced, and nothing else."""
    for old, new in {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{app_port};",
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/letsencrypt/live/movies.example.org/": f"{certificates}/",
    }.items():
        assert old in example, f"deploy/nginx.conf no longer has {old!r}"
        example = example.replace(old, new)
    return example


@dataclass
class Proxy:
    """nginx running deploy/nginx.conf in front of the app."""

    url: str
    plain_url: str
    certificate: Path
    #: What the app saw of each request: path, scheme, host and client address.
    seen: list[tuple[str, str, str, str | None]]


def start_nginx(prefix: Path, config: Path) -> subprocess.Popen[bytes]:
    """Run nginx in the foreground with everything it writes under `prefix`."""
    return subprocess.Popen(
        [nginx_binary(), "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )


@pytest.fixture
def proxy(
    app_config: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Proxy]:
    """The app under waitress (serve options) with PROXY_COUNT=1, nginx in front on https."""
    nginx_binary()
    http_port, https_port = free_port(), free_port()
    url = f"https://127.0.0.1:{https_port}"
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app: Flask = create_app({**app_config, "PROXY_COUNT": 1, "PUBLIC_URL": url})
    seen: list[tuple[str, str, str, str | None]] = []

    @app.before_request
    def record() -> None:
        seen.append((request.path, request.scheme, request.host, request.remote_addr))

    make_user(app, "alice")
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    certificate = self_signed(prefix)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    with served(app) as live:
        app_port = int(live.url.rsplit(":", 1)[1])
        site = prefix / "movievault.conf"
        site.write_text(render(EXAMPLE.read_text(), app_port=app_port, http_port=http_port,
                               https_port=https_port, certificates=prefix))
        config = prefix / "nginx.conf"
        # The main file a distribution ships, reduced to what a test run needs: everything
        # under the prefix, and workers that may read it (root's temporary folders are
        # private, so under root they run as root).
        config.write_text(
            ("user root;\n" if os.geteuid() == 0 else "")
            + f"daemon off;\nworker_processes 1;\npid {prefix}/nginx.pid;\n"
            + "events { worker_connections 64; }\n"
            + "http {\n"
            + f"  access_log {prefix}/access.log;\n"
            + "".join(f"  {kind}_temp_path {prefix}/{kind}_temp;\n"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
            + f"  include {site};\n}}\n"
        )
        process = start_nginx(prefix, config)
        try:
            wait_for_port(https_port, process, prefix / "error.log", timeout=20)
            yield Proxy(url=url, plain_url=f"http://127.0.0.1:{http_port}",
                        certificate=certificate, seen=seen)
        finally:
            stop_process(process)


class FromClientAddress(HTTPAdapter):
    """Connects from CLIENT_ADDRESS, so the client is not where nginx connects from."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (CLIENT_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


def sign_in(url: str) -> requests.Session:
    """Sign in through the proxy as a browser does (over https it sends a Referer)."""
    http = requests.Session()
    http.mount("https://", FromClientAddress())
    http.headers["Referer"] = f"{url}/login"
    http = sign_in_over_http(url, "alice", http=http)
    assert all(cookie.secure for cookie in http.cookies if cookie.name == "session")
    assert "session" in http.cookies
    library = http.get(f"{url}/", timeout=30)
    assert library.status_code == 200 and "alice" in library.text
    return http


def test_the_example_nginx_config_serves_the_app(proxy: Proxy) -> None:
    # Plain http is sent to https.
    plain = requests.get(f"{proxy.plain_url}/login", allow_redirects=False, timeout=30)
    assert plain.status_code == 301 and plain.headers["Location"].startswith("https://")

    # Pages and sign-in; the app sees the browser's scheme, host and address.
    http = sign_in(proxy.url)
    host = proxy.url.removeprefix("https://")
    assert ("/login", "https", host, CLIENT_ADDRESS) in proxy.seen

    # A body over 1 MiB to the API is refused by nginx; the app never sees it.
    big = {"files": [{"sha256": f"{n:064x}", "size": n + 1} for n in range(15_000)]}
    answer = http.post(f"{proxy.url}/api/files/check", json=big, timeout=30)
    assert answer.status_code == 413
    assert answer.headers["Server"].startswith("nginx")
    assert not [seen for seen in proxy.seen if seen[0] == "/api/files/check"]

    # The local store's uploads go through: a form upload, then one in parts.
    alice = ApiClient(http=http, base=proxy.url)
    form, parted = os.urandom(5 * MIB), os.urandom(11 * MIB)  # forms up to 6 MiB, parts 5 MiB
    assert alice.upload(name="form.mp4", data=form)["file"]["sha256"] == sha256_of(form)
    assert alice.upload(name="parts.mp4", data=parted)["file"]["sha256"] == sha256_of(parted)
    assert any(path.startswith("/storage/parts/") for path, *_ in proxy.seen)
    assert ("/storage/upload", "https", host, "127.0.0.1") in proxy.seen
    listed = alice.api("GET", "/files").json()
    assert sorted(f["name"] for f in listed["files"]) == ["form.mp4", "parts.mp4"]
