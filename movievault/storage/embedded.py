"""The embedded demo S3 store: moto in server mode on 127.0.0.1, memory only."""

from __future__ import annotations

import atexit
import os
import socket

from movievault.storage.s3 import S3Storage

MEMORY_WARNING = (
    "Demo storage: the embedded S3 store keeps movies in memory only. "
    "Everything uploaded is lost when MovieVault stops."
)


class EmbeddedS3Storage(S3Storage):
    """An S3 backend on the embedded server: a real S3 API, but nothing survives a restart."""

    def __init__(
        self, *, bucket: str, endpoint_url: str, region: str, upload_method: str = "auto",
        checksums: bool = True,
    ) -> None:
        # moto answers a form POST without the bucket's CORS headers, so a browser cannot
        # read that answer; its PUT answers carry them. `auto` therefore means PUT here.
        super().__init__(
            bucket=bucket, endpoint_url=endpoint_url, region=region,
            upload_method="put" if upload_method == "auto" else upload_method,
            checksums=checksums,
        )
        self.endpoint_url = endpoint_url

    def describe(self) -> str:
        """Where the movies are: nowhere lasting."""
        return "the embedded S3 store, in memory only (lost when MovieVault stops)"

    def notice(self) -> str | None:
        """Every page says that uploads are lost when the app stops."""
        return MEMORY_WARNING


def free_port(host: str = "127.0.0.1") -> int:
    """Ask the OS for a free TCP port on `host`."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]  # (host, port) for IPv4
        return port


def start_embedded_s3(
    *, bucket: str, region: str, public_url: str, upload_method: str = "auto",
    checksums: bool = True,
) -> EmbeddedS3Storage:
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
    storage = EmbeddedS3Storage(
        bucket=bucket, endpoint_url=f"http://127.0.0.1:{port}", region=region,
        upload_method=upload_method, checksums=checksums,
    )
    storage.setup(public_url=public_url, abort_after_days=7)
    return storage
