"""The package as users get it: a wheel, installed into a fresh virtual environment, serving
pages and static files from a directory outside the checkout.

The wheel is built the way pip and pipx build it (in an isolated build environment, whose
setuptools comes from PyPI or pip's cache), from a copy of what the build needs, so that
the checkout gets no build/ or *.egg-info/ folders whose leftovers could end up in a later
wheel. The fresh environment has the wheel and nothing else of MovieVault; the packages it
depends on are this environment's, put on its path, so the test downloads none of them.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

import pytest
import requests

from tests.support import ROOT, free_port, stop_process, wait_for_port

#: What building the wheel needs from the checkout (pyproject.toml says what of it ships).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "movievault", "templates", "static")
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH or MOVIEVAULT_* variables (nothing may find the
    checkout's code or settings), plus `extra`."""
    env = {name: value for name, value in os.environ.items()
           if name != "PYTHONPATH" and not name.startswith("MOVIEVAULT_")}
    env.update(extra)
    return env


def run(command: list[str | Path], **options: object) -> str:
    """Run `command` to its end and return its output; fail with it if the command failed."""
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=300,
        **options,  # type: ignore[call-overload]
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Installed:
    """The built wheel, and the fresh environment it is installed in."""

    wheel: Path
    venv: Path

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        return self.venv / "bin" / "python"

    @property
    def command(self) -> Path:
        """The `movievault` command pip installed there."""
        return self.venv / "bin" / "movievault"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel and install it, without its dependencies, into a new environment."""
    work = tmp_path_factory.mktemp("package")
    source = work / "source"
    for name in BUILD_INPUTS:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(origin, source / name)
    dist = work / "dist"
    env = clean_environment(PIP_DISABLE_PIP_VERSION_CHECK="1")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", dist, source],
        env=env)
    (wheel,) = dist.glob("movievault-*.whl")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], env=env)
    # The dependencies: this environment's site-packages, after the new one's own. Plain
    # paths in a .pth file are added without reading the .pth files found there, so an
    # editable install of the checkout in this environment stays out of the new one.
    (purelib,) = (venv / "lib").glob("python*/site-packages")
    (purelib / "movievault-test-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in site.getsitepackages())
    )
    run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
         "--no-deps", "--no-index", wheel], env=env)
    yield Installed(wheel=wheel, venv=venv)


def test_the_wheel_carries_the_templates_static_files_and_migrations(
    installed: Installed,
) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    for folder in ("templates", "static"):
        shipped = {
            f"movievault/{path.relative_to(ROOT).as_posix()}"
            for path in (ROOT / folder).rglob("*") if path.is_file()
        }
        assert shipped <= names, sorted(shipped - names)
    assert "movievault/templates/base.html" in names
    assert "movievault/static/js/app.js" in names
    assert "movievault/static/vendor/htmx/htmx.min.js" in names
    migrations = {
        f"movievault/migrations/versions/{path.name}"
        for path in (ROOT / "movievault" / "migrations" / "versions").glob("*.py")
    }
    assert migrations and migrations <= names
    assert "movievault/migrations/script.py.mako" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)
    # Nothing of the checkout but the package: no tests, benchmarks or instance data.
    assert {name.split("/")[0] for name in names} == {
        "movievault", f"movievault-{VERSION}.dist-info"
    }


def test_the_metadata_is_complete(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        text = wheel.read(f"movievault-{VERSION}.dist-info/METADATA").decode()
    metadata = Parser().parsestr(text)
    assert metadata["Name"] == "movievault" and metadata["Version"] == VERSION
    assert metadata["License-Expression"] == "MIT"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Author"] == "MovieVault contributors"
    assert metadata["Requires-Python"] == ">=3.11"
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Issues", "Source"}
    assert all(url.startswith("https://") for url in urls.values())
    classifiers = metadata.get_all("Classifier") or []
    assert "Framework :: Flask" in classifiers
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert metadata["Keywords"]
    assert metadata["Summary"] and "# MovieVault" in metadata.get_payload()


def test_movievault_version(installed: Installed, tmp_path: Path) -> None:
    output = run([installed.command, "--version"], cwd=tmp_path, env=clean_environment())
    assert output == f"movievault {VERSION}\n"


def test_the_installed_app_serves_pages_and_static_files_from_anywhere(
    installed: Installed, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"  # outside the checkout: nothing relative to it
    elsewhere.mkdir()
    data_home = tmp_path / "data"
    env = clean_environment(XDG_DATA_HOME=str(data_home))
    # The code that runs is the wheel's, not the checkout's.
    imported = run([installed.python, "-c", "import movievault; print(movievault.__file__)"],
                   cwd=elsewhere, env=env)
    assert Path(imported.strip()).is_relative_to(installed.venv)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [installed.command, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=elsewhere, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        base = f"http://127.0.0.1:{port}"
        # No account yet: the sign-in page sends the first visitor to create the owner's.
        page = requests.get(f"{base}/login", timeout=30)
        assert page.status_code == 200, log.read_text()
        assert page.url == f"{base}/setup"
        assert "<title>Welcome · MovieVault</title>" in page.text
        for path, kind in [("js/app.js", "text/javascript"),
                           ("vendor/htmx/htmx.min.js", "text/javascript"),
                           ("css/app.css", "text/css")]:
            asset = requests.get(f"{base}/static/{path}", timeout=30)
            assert asset.status_code == 200, path
            assert asset.headers["Content-Type"].split(";")[0] == kind
            assert asset.content == (ROOT / "static" / path).read_bytes()
    finally:
        stop_process(process)
    assert process.returncode is not None
    # With no MOVIEVAULT_INSTANCE_PATH, an installed MovieVault keeps its library in the
    # user's data folder, never inside the environment (which a reinstall replaces).
    instance = data_home / "movievault"
    assert (instance / "secret_key").is_file() and (instance / "movievault.db").is_file()
    assert not list(installed.venv.glob("var/*"))
