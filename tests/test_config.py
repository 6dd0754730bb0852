"""Settings: defaults, MOVIEVAULT_* variables, the generated secret key."""

from __future__ import annotations

from pathlib import Path

import pytest

from movievault import create_app
from movievault.storage import storage_kind


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
    monkeypatch.setenv("MOVIEVAULT_SECRET_KEY", "from-the-environment")
    app = create_app()
    assert app.config["URL_EXPIRES"] == 600
    assert app.config["S3_BUCKET"] == "12345"
    assert storage_kind(app.config) == "s3"
    assert app.config["PUBLIC_URL"] == "https://movies.example.org"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SECRET_KEY"] == "from-the-environment"
    assert not (instance / "secret_key").exists()


def test_bad_numbers_and_unknown_storage_are_reported(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVIEVAULT_PART_SIZE", '"lots"')
    with pytest.raises(ValueError, match="MOVIEVAULT_PART_SIZE must be an integer"):
        create_app()
    with pytest.raises(ValueError, match="MOVIEVAULT_STORAGE must be one of"):
        storage_kind({"STORAGE": "floppy"})
