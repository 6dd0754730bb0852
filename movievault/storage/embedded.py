"""The embedded demo S3 store: moto in server mode on 127.0.0.1, memory only."""

from __future__ import annotations

import atexit
import os
import socket

from flask import Flask

from movievault.storage.s3 import S3Storage

MEMORY_WARNING = (
    "Demo storage: the embedded S3 store keeps movies in memory only. "
    "Everything uploaded is lost when MovieVault stops."
)


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_embedded_s3(app: Flask) -> S3Storage:
    """Start moto's S3 server on loopback, create and configure the bucket, return the store."""
    from moto.server import ThreadedMotoServer

    # moto answers any credentials; boto3 only needs some to sign with.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "movievault-embedded")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "movievault-embedded")
    # Let the bucket's own CORS rules apply, as they would on a real store.
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    atexit.register(server.stop)
    endpoint = f"http://127.0.0.1:{port}"
    storage = S3Storage(
        bucket=app.config.get("S3_BUCKET") or "movievault",
        endpoint_url=endpoint,
        region=app.config.get("S3_REGION") or "us-east-1",
    )
    storage.ephemeral = True
    storage.setup(public_url=app.config["PUBLIC_URL"], abort_after_days=7)
    app.logger.warning("%s (endpoint %s)", MEMORY_WARNING, endpoint)
    return storage
