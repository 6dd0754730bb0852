"""`GET /healthz` for load balancers: 200 while the catalogue answers, a clear 503 when it
does not (a real PostgreSQL database refusing connections), and nothing about the library."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from movievault import create_app, db
from tests.postgres import PostgresServer


def test_anyone_gets_ok_while_the_catalogue_answers(app: Flask) -> None:
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200
    assert answer.get_json() == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("backend", ["local"])
def test_a_catalogue_that_refuses_connections_is_a_clear_503(
    app_config: dict[str, Any], postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    name = postgres_server.create_catalogue()
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    app = create_app({**app_config, "DATABASE_URL": postgres_server.url(name)})
    client = app.test_client()
    try:
        assert client.get("/healthz").status_code == 200
        # The database goes away under the running app: no new connection is allowed and
        # the pooled ones are ended, as when the server restarts or the network drops.
        postgres_server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        postgres_server.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        )
        answer = client.get("/healthz")
        assert answer.status_code == 503
        assert answer.get_json() == {"error": "The catalogue (database) does not answer."}
        # Back again: the next check is fine, with no restart of the app.
        postgres_server.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert client.get("/healthz").status_code == 200
    finally:
        db.engine_of(app).dispose()
        postgres_server.drop_database(name)
