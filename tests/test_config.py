"""Settings: defaults, MOVIEVAULT_* variables, the generated secret key, private files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from movievault import create_app
from movievault.cli import cli
from movievault.config import ConfigError, default_media_workers, settings
from movievault.jobs import ProbeSettings
from movievault.storage import storage_kind
from tests.support import MOVIEVAULT, environment


@pytest.fixture
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh instance folder for the app under test."""
    monkeypatch.setenv("MOVIEVAULT_INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


def test_defaults_keep_everything_in_the_instance_folder(instance: Path) -> None:
    app = create_app()
    assert app.config["DATABASE_URL"] == f"sqlite:///{instance / 'movievault.db'}"
    assert app.config["DATA_DIR"] == str(instance / "objects")
    assert app.config["URL_EXPIRES"] == 3600
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:8000"
    assert storage_kind(app.config) == "local"
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_secret_key_is_generated_once_and_kept_private(instance: Path) -> None:
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (instance / "secret_key").stat().st_mode & 0o777 == 0o600


def test_environment_variables_override_defaults(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_URL_EXPIRES", "600")
    monkeypatch.setenv("MOVIEVAULT_S3_BUCKET", "12345")  # stays a string
    monkeypatch.setenv("MOVIEVAULT_PUBLIC_URL", "https://movies.example.org/")
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", "from-the-environment-32-bytes-long")
    app = create_app()
    assert app.config["URL_EXPIRES"] == 600
    assert app.config["S3_BUCKET"] == "12345"
    assert storage_kind(app.config) == "s3"
    assert app.config["PUBLIC_URL"] == "https://movies.example.org"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SECRET_KEY"] == "from-the-environment-32-bytes-long"
    assert not (instance / "secret_key").exists()


def test_bad_numbers_and_unknown_storage_are_reported(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_PART_SIZE", '"lots"')
    with pytest.raises(ValueError, match="MOVIEVAULT_PART_SIZE must be an integer"):
        create_app()
    with pytest.raises(ValueError, match="MOVIEVAULT_STORAGE must be one of"):
        storage_kind({"STORAGE": "floppy"})


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return path.stat().st_mode & 0o777


def test_the_instance_folder_database_and_key_are_the_owners_alone(instance: Path) -> None:
    old = os.umask(0o002)  # a loose umask must not matter
    try:
        app = create_app()
        with app.extensions["movievault.engine"].connect() as connection:
            connection.exec_driver_sql("CREATE TABLE probe (x)")  # a write makes -wal and -shm
            assert (instance / "movievault.db-wal").exists()
            assert mode(instance / "movievault.db-wal") == 0o600
            assert mode(instance / "movievault.db-shm") == 0o600
    finally:
        os.umask(old)
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "movievault.db") == 0o600


def test_an_existing_instance_with_loose_modes_is_tightened(instance: Path) -> None:
    instance.mkdir(mode=0o755)
    os.chmod(instance, 0o755)
    (instance / "secret_key").write_text("k" * 64)
    os.chmod(instance / "secret_key", 0o644)
    sqlite3.connect(instance / "movievault.db").close()
    os.chmod(instance / "movievault.db", 0o664)
    app = create_app()
    assert app.config["SECRET_KEY"] == "k" * 64
    assert mode(instance) == 0o700
    assert mode(instance / "secret_key") == 0o600
    assert mode(instance / "movievault.db") == 0o600


@pytest.mark.parametrize("stored", ["", "\n", "too-short-a-key"], ids=["empty", "blank", "short"])
def test_an_empty_or_short_key_file_is_refused(instance: Path, stored: str) -> None:
    instance.mkdir()
    (instance / "secret_key").write_text(stored)
    with pytest.raises(ConfigError, match="secret key in .* shorter than 32 bytes: delete"):
        create_app()


@pytest.mark.parametrize("setting", ["", "short", "x" * 31], ids=["empty", "short", "31-bytes"])
def test_a_short_key_setting_is_refused(
    instance: Path, monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", setting)
    with pytest.raises(ConfigError, match="MOVIEVAULT_SECRET_KEY must be at least 32 bytes"):
        create_app()
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        create_app({"SECRET_KEY": setting or "x"})
    assert not (instance / "secret_key").exists()


def test_the_cli_refuses_a_short_key_in_one_sentence_without_a_traceback(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", "short")
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: MOVIEVAULT_SECRET_KEY must be at least 32 bytes")
    assert "Traceback" not in result.output


def test_movievault_serve_refuses_an_empty_key_file_and_exits_non_zero(
    instance: Path, tmp_path: Path
) -> None:
    instance.mkdir()
    (instance / "secret_key").write_text("")
    done = subprocess.run(
        [*MOVIEVAULT, "serve", "--port", "9"], env=environment(INSTANCE_PATH=instance),
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip().splitlines()[-1] == (
        f"Error: The secret key in {instance / 'secret_key'} is empty or shorter than 32 bytes: "
        "delete that file and start MovieVault again to generate a new one (everyone will "
        "have to sign in again)."
    )


@pytest.mark.parametrize("failing", ["write", "fsync"])
def test_a_key_write_cut_short_leaves_no_key_file_and_the_next_start_makes_one(
    instance: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    def full_disk(*_: object) -> int:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(os, failing, full_disk)
        with pytest.raises(ConfigError, match="Could not write a new secret key .*No space left"):
            create_app()
    assert not (instance / "secret_key").exists()
    assert [p.name for p in instance.iterdir() if "secret" in p.name] == []  # no temp file
    key = create_app().config["SECRET_KEY"]
    assert len(key) == 64
    assert (instance / "secret_key").read_text() == key
    assert mode(instance / "secret_key") == 0o600


def test_workers_starting_together_agree_on_one_key(instance: Path) -> None:
    from movievault.config import _write_secret_key

    instance.mkdir()
    first = _write_secret_key(instance / "secret_key", "a" * 64)
    second = _write_secret_key(instance / "secret_key", "b" * 64)
    assert first == second == "a" * 64
    assert sorted(p.name for p in instance.iterdir()) == ["secret_key"]


def test_probing_settings_default_to_one_worker_per_two_cores_and_a_minute(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores = os.cpu_count() or 1
    assert default_media_workers() == max(1, min(4, cores // 2))
    assert settings(create_app()).probing == ProbeSettings(
        timeout=60, workers=default_media_workers()
    )
    monkeypatch.setenv("MOVIEVAULT_MEDIA_WORKERS", "0")  # no background probing
    monkeypatch.setenv("MOVIEVAULT_PROBE_TIMEOUT", "20")
    configured = settings(create_app()).probing
    assert configured == ProbeSettings(timeout=20, workers=0)
    assert configured.lease.total_seconds() == 80  # the limit, and a minute to record it


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("MEDIA_WORKERS", "-1", "MEDIA_WORKERS must be 0"),
     ("MEDIA_WORKERS", "many", "MEDIA_WORKERS must be an integer"),
     ("PROBE_TIMEOUT", "0", "PROBE_TIMEOUT must be at least 1")],
)
def test_bad_probing_settings_are_refused(
    instance: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"MOVIEVAULT_{name}", value)
    with pytest.raises(ConfigError, match=message):
        create_app()


def test_one_of_many_hosts_refuses_a_generated_key(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_INSTANCES", "many")
    with pytest.raises(ConfigError, match="MOVIEVAULT_INSTANCES=many needs the same "
                                          "MOVIEVAULT_SECRET_KEY on every host"):
        create_app()
    assert not (instance / "secret_key").exists()
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", "shared-by-every-host-32-bytes-long")
    assert settings(create_app()).instances == "many"
    monkeypatch.setenv("MOVIEVAULT_STORAGE", "embedded-s3")
    with pytest.raises(ConfigError, match="embedded S3 store lives inside one process"):
        create_app()


def test_one_of_many_hosts_says_what_only_this_host_can_share(
    instance: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Instances on one host may share a folder and a SQLite file; on several hosts each
    would keep a library of its own, so start-up says so (it does not refuse: one host's
    instances are a fine use)."""
    monkeypatch.setenv("MOVIEVAULT_INSTANCES", "many")
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", "shared-by-every-host-32-bytes-long")
    monkeypatch.setenv("MOVIEVAULT_STORAGE", "local")
    create_app()
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("with the local store: only instances on this host" in m for m in said), said
    assert any("with a SQLite catalogue: only instances on this host" in m for m in said), said
    caplog.clear()
    monkeypatch.delenv("MOVIEVAULT_INSTANCES")
    create_app()
    assert not [r for r in caplog.records if "INSTANCES=many" in r.getMessage()]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("WORKERS", "0", "MOVIEVAULT_WORKERS must be at least 1, not 0."),
     ("INSTANCES", "several", "MOVIEVAULT_INSTANCES must be one of one, many, not 'several'")],
)
def test_bad_process_settings_are_refused(
    instance: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(f"MOVIEVAULT_{name}", value)
    with pytest.raises(ConfigError) as refused:
        create_app()
    assert str(refused.value) == message
