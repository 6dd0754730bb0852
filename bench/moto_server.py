"""Run moto's ThreadedMotoServer on 127.0.0.1 at the given port until terminated."""

from __future__ import annotations

import os
import signal
import sys
import threading


def main() -> None:
    """Start the server, then wait for SIGTERM or SIGINT and stop it."""
    os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
