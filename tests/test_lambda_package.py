"""The AWS Lambda deployment zip (`make lambda-package`): what it holds, its size, and the
handler running from it under the runtime's Python with its own (manylinux) dependencies.

Building it installs the dependencies' wheels for the runtime into build/lambda/ once (a
download of about 70 MB the first time; later builds reuse them and take ~15 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

from tests.apigateway import BASE_URL, http_event
from tests.support import ROOT, SECRET_KEY

pytestmark = [pytest.mark.lambda_package, pytest.mark.xdist_group("lambda-package")]

#: Lambda's limit on a function's code, unzipped.
UNZIPPED_LIMIT = 250 * 1024 * 1024
RUNTIME_PYTHON = "python3.12"


def _pyenv_pythons() -> list[str]:
    """The python3.12 of each 3.12 that pyenv (when there is one) has installed."""
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return []
    done = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return []
    versions = Path(done.stdout.strip()) / "versions"
    return [str(path) for path in sorted(versions.glob(f"3.12*/bin/{RUNTIME_PYTHON}"))]


def runtime_python() -> str | None:
    """The runtime's Python here, if one runs: $LAMBDA_PYTHON, else python3.12 on PATH, else
    a 3.12 of pyenv's (whose shim on PATH runs only the versions it is told to)."""
    named = os.environ.get("LAMBDA_PYTHON")
    found = shutil.which(RUNTIME_PYTHON)
    for python in ([named] if named else [found] if found else []) + _pyenv_pythons():
        done = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0 and done.stdout.strip() == "(3, 12)":
            return python
        if named:
            return None  # the one asked for does not run: say so rather than use another
    return None


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip, built by the script `make lambda-package` runs."""
    out = tmp_path_factory.mktemp("lambda") / "movievault-lambda.zip"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build-lambda-package"), "--out", str(out)],
        capture_output=True, text=True, timeout=1200,
    )
    assert done.returncode == 0, done.stderr
    assert "handler: movievault.serverless.handler" in done.stdout
    return out


def test_the_zip_holds_the_handler_app_and_dependencies_and_nothing_of_the_tests(
    package: Path,
) -> None:
    with zipfile.ZipFile(package) as archive:
        infos = archive.infolist()
    names = {info.filename for info in infos}
    for required in (
        "movievault/serverless.py", "movievault/__init__.py", "movievault/static_urls.py",
        "movievault/templates/base.html", "movievault/migrations/script.py.mako",
        "apig_wsgi/__init__.py", "flask/__init__.py", "psycopg/__init__.py",
        "psycopg_binary/__init__.py", "av/__init__.py", "boto3/__init__.py",
    ):
        assert required in names, required
    for folder in ("static", "templates"):
        shipped = {f"movievault/{folder}/{p.relative_to(ROOT / folder).as_posix()}"
                   for p in (ROOT / folder).rglob("*") if p.is_file()}
        if folder == "templates":
            shipped = {name for name in shipped if name.endswith(".html")}
        assert shipped <= names, sorted(shipped - names)
    migrations = {f"movievault/migrations/versions/{p.name}"
                  for p in (ROOT / "movievault" / "migrations" / "versions").glob("*.py")}
    assert migrations <= names
    # No tests, caches, test tools, nor moto (the embedded store, refused in Lambda).
    tops = {name.split("/")[0] for name in names}
    assert not tops & {"tests", "moto", "pytest", "_pytest", "playwright", "hypothesis", "bin"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Readable by the runtime's user, whoever built it.
    assert all((info.external_attr >> 16) & 0o444 == 0o444 for info in infos)
    unzipped = sum(info.file_size for info in infos)
    assert unzipped < UNZIPPED_LIMIT, f"{unzipped / 2**20:.0f} MiB unzipped"


def test_the_handler_answers_from_the_zip_under_the_runtime_python(
    package: Path, tmp_path: Path, s3_endpoint: str, postgres_url: str
) -> None:
    python = runtime_python()
    if python is None:
        pytest.skip(f"no {RUNTIME_PYTHON} (the Lambda runtime's Python) here: install it, or "
                    "name it in LAMBDA_PYTHON")
    task = tmp_path / "task"  # what Lambda unpacks to /var/task
    with zipfile.ZipFile(package) as archive:
        archive.extractall(task)
    bucket = f"mv-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    env = {
        "PATH": os.environ["PATH"],
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MOVIEVAULT_SECRET_KEY": SECRET_KEY, "MOVIEVAULT_DATABASE_URL": postgres_url,
        "MOVIEVAULT_STORAGE": "s3", "MOVIEVAULT_S3_BUCKET": bucket,
        "MOVIEVAULT_S3_ENDPOINT_URL": s3_endpoint, "MOVIEVAULT_PUBLIC_URL": BASE_URL,
        "MOVIEVAULT_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    events = [http_event("GET", f"{BASE_URL}/login"), {"movievault": "gc"}]
    # The runtime's way: the task folder first on the path, the handler imported by name.
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {str(task)!r})\n"
        "from movievault.serverless import handler\n"
        "class Context:\n"
        "    def get_remaining_time_in_millis(self): return 30000\n"
        "for event in json.load(sys.stdin):\n"
        "    print(json.dumps(handler(event, Context())))\n"
    )
    done = subprocess.run(
        [python, "-I", "-c", script], input=json.dumps(events), env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    page, gc = (json.loads(line) for line in done.stdout.splitlines()[-2:])
    assert page["statusCode"] == 302  # no account yet: on to creating the owner's
    assert page["headers"]["location"].endswith("/setup")
    assert gc["task"] == "gc" and gc["failures"] == []
    assert "Running upgrade" in done.stderr  # the cold start made the catalogue's tables
