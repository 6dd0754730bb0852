"""Start-up errors: `movievault serve` in its own process, refusing what can never work.

A taken port, a folder it cannot write, a database it cannot open, a bucket that is not
there or not allowed, a bad setting: each is one sentence on stderr and a non-zero exit,
never a traceback, and nothing is served.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.support import (
    MOVIEVAULT,
    SECRET_KEY,
    environment,
    free_port,
    stop_process,
    wait_for_port,
)

#: A refused start takes an interpreter's start-up and one check; a server that did start
#: instead is a failure, found out here rather than after a long wait.
TIMEOUT = 30


def start(
    tmp_path: Path, *args: str, prefix: Sequence[str] = (), aws: dict[str, str] | None = None,
    **settings: object,
) -> subprocess.CompletedProcess[str]:
    """Run `movievault serve` on a free loopback port (or `movievault ARGS`) from `tmp_path`,
    with its instance folder there and `settings` as MOVIEVAULT_* variables, until it exits
    (run through `prefix`, and with `aws` as its only AWS_* variables, when given)."""
    command = list(args) or ["serve", "--host", "127.0.0.1", "--port", str(free_port())]
    env = environment(**{"INSTANCE_PATH": tmp_path / "instance", **settings})
    if aws is not None:
        env = {name: value for name, value in env.items() if not name.startswith("AWS_")}
        env.update(aws)
    return subprocess.run(
        [*prefix, *MOVIEVAULT, *command], env=env, cwd=tmp_path, capture_output=True,
        text=True, timeout=TIMEOUT,
    )


@contextmanager
def read_only(folder: Path) -> Iterator[list[str]]:
    """Make `folder` read-only for a command run through the prefix this yields.

    For an ordinary user its mode does it (the reason given is "Permission denied"). Modes
    do not stop root: then the command runs in a mount namespace of its own where `folder`
    is a read-only bind mount ("Read-only file system"); nothing outside sees that mount.
    """
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield []
        finally:
            folder.chmod(0o700)
        return
    if shutil.which("unshare") is None or subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True
    ).returncode != 0:
        pytest.skip("running as root, whom folder modes do not stop, and without the "
                    "privilege to make a read-only mount (unshare --mount) instead")
    yield ["unshare", "--mount", "sh", "-c",
           'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(folder)]


#: What the system says of a write to a folder made by `read_only`.
REFUSED = ("(Permission denied)", "(Read-only file system)")


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one sentence a refused start printed, once it is sure that is all it did: a
    non-zero exit, no traceback, and the sentence as the last line of stderr (log lines of
    the start-up before it may come first); nothing said about serving."""
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert "Open http" not in done.stdout and "Serving on" not in done.stderr
    return errors[0].removeprefix("Error: ")


# --- the address ----------------------------------------------------------------------------


def test_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port))
    assert refusal(done) == (
        f"Port {port} on 127.0.0.1 is already in use (is MovieVault already running?): stop "
        "what uses it, or choose another port with --port or MOVIEVAULT_PORT."
    )


def test_a_taken_port_with_several_workers(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start(tmp_path, "serve", "--host", "127.0.0.1", "--port", str(port),
                     "--workers", "2")
    assert refusal(done).startswith(f"Port {port} on 127.0.0.1 is already in use")


def test_several_workers_cannot_share_the_embedded_store(tmp_path: Path) -> None:
    done = start(tmp_path, "serve", "--port", str(free_port()), "--workers", "2",
                 STORAGE="embedded-s3")
    assert refusal(done).startswith("The embedded S3 store lives inside one process")


def test_an_address_of_another_machine(tmp_path: Path) -> None:
    # TEST-NET-1 (RFC 5737): never an address of this machine.
    done = start(tmp_path, "serve", "--host", "192.0.2.1", "--port", str(free_port()))
    assert refusal(done).startswith("192.0.2.1 is not an address of this machine")


def test_a_host_name_that_does_not_resolve(tmp_path: Path) -> None:
    done = start(tmp_path, "serve", "--host", "movievault.invalid", "--port", str(free_port()))
    assert "movievault.invalid is neither an address of this machine" in refusal(done)


def test_a_port_out_of_range(tmp_path: Path) -> None:
    assert refusal(start(tmp_path, PORT=70000)) == (
        "MOVIEVAULT_PORT must be from 1 to 65535, not 70000."
    )


# --- folders --------------------------------------------------------------------------------


def test_an_instance_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("in the way")
    done = start(tmp_path, INSTANCE_PATH=tmp_path / "a-file" / "instance")
    assert refusal(done) == (
        f"Could not create the instance folder {tmp_path / 'a-file' / 'instance'} (Not a "
        "directory): set MOVIEVAULT_INSTANCE_PATH to a folder MovieVault may write, or fix "
        "the permissions of the folder above it."
    )


def test_a_read_only_instance_folder(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    with read_only(instance) as prefix:
        message = refusal(start(tmp_path, prefix=prefix))
    key = instance / "secret_key"
    assert any(message.startswith(f"Could not write a new secret key to {key} {why}: ")
               for why in REFUSED), message


def test_a_read_only_instance_folder_with_its_key(tmp_path: Path) -> None:
    """The key is given, and the catalogue cannot be created beside it."""
    instance = tmp_path / "instance"
    instance.mkdir(mode=0o700)
    with read_only(instance) as prefix:
        message = refusal(start(tmp_path, prefix=prefix, SECRET_KEY=SECRET_KEY))
    database = instance / "movievault.db"
    assert any(message.startswith(f"Could not create the catalogue database {database} {why}: "
                                  "check that its folder exists") for why in REFUSED), message


def test_a_read_only_catalogue(tmp_path: Path) -> None:
    """A library made by an earlier start, on a disk that has since become read-only."""
    instance = tmp_path / "instance"
    first = start(tmp_path, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    with read_only(instance) as prefix:
        message = refusal(start(tmp_path, prefix=prefix))
    assert message.startswith(
        f"Could not open the catalogue database sqlite:///{instance / 'movievault.db'} ("
    ), message
    assert message.endswith("check that MovieVault may write to it and to its folder.")


def test_a_data_folder_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("in the way")
    objects = tmp_path / "a-file" / "objects"
    assert refusal(start(tmp_path, STORAGE="local", DATA_DIR=objects)) == (
        f"MovieVault cannot write to its data folder {objects} (Not a directory): fix its "
        "permissions, or set MOVIEVAULT_DATA_DIR to another folder."
    )


def test_a_read_only_data_folder(tmp_path: Path) -> None:
    """A store prepared by an earlier start, whose folder has since become read-only."""
    objects = tmp_path / "objects"
    first = start(tmp_path, "setup-bucket", STORAGE="local", DATA_DIR=objects)
    assert first.returncode == 0, first.stderr
    with read_only(objects) as prefix:
        message = refusal(start(tmp_path, prefix=prefix, STORAGE="local", DATA_DIR=objects))
    assert message in [
        f"MovieVault cannot write to its data folder {objects} {why}: fix its permissions, "
        "or set MOVIEVAULT_DATA_DIR to another folder." for why in REFUSED
    ], message


# --- the database ---------------------------------------------------------------------------


def test_a_database_in_a_folder_that_does_not_exist(tmp_path: Path) -> None:
    database = tmp_path / "gone" / "movievault.db"
    assert refusal(start(tmp_path, DATABASE_URL=f"sqlite:///{database}")) == (
        f"Could not create the catalogue database {database} (No such file or directory): "
        "check that its folder exists and MovieVault may write there, or set "
        "MOVIEVAULT_DATABASE_URL to another place."
    )


def test_a_database_that_is_a_folder(tmp_path: Path) -> None:
    database = tmp_path / "a-folder"
    database.mkdir()
    assert refusal(start(tmp_path, DATABASE_URL=f"sqlite:///{database}")) == (
        f"Could not open the catalogue database sqlite:///{database} (unable to open database "
        "file): check that MovieVault may write to it and to its folder."
    )


def test_a_database_server_that_does_not_answer(tmp_path: Path) -> None:
    """PostgreSQL on a port nothing listens on: refused at once (or, without its driver,
    refused for that), the password never shown."""
    url = f"postgresql://movievault:hunter2-secret@127.0.0.1:{free_port()}/movievault"
    message = refusal(start(tmp_path, DATABASE_URL=url))
    assert "hunter2-secret" not in message
    assert message.startswith((
        "The database postgresql://movievault:***@127.0.0.1:",  # the driver is missing
        "Could not open the catalogue database postgresql://movievault:***@127.0.0.1:",
    )), message


def test_a_database_url_that_is_not_one(tmp_path: Path) -> None:
    message = refusal(start(tmp_path, DATABASE_URL="floppy://drive-a/movies"))
    assert message.startswith("MOVIEVAULT_DATABASE_URL is not a database URL MovieVault can use")


# --- the bucket -----------------------------------------------------------------------------


def test_a_bucket_that_does_not_exist(tmp_path: Path, s3_endpoint: str) -> None:
    bucket = f"mv-missing-{uuid.uuid4().hex[:8]}"
    done = start(tmp_path, S3_ENDPOINT_URL=s3_endpoint, S3_BUCKET=bucket)
    assert refusal(done) == (
        f"The bucket {bucket} at {s3_endpoint} does not exist: run `movievault setup-bucket` "
        "to create it, or set MOVIEVAULT_S3_BUCKET to an existing one."
    )


@dataclass
class GuardedS3:
    """An S3 endpoint that checks who signs (moto with its IAM on), holding one bucket."""

    url: str
    bucket: str
    allowed: dict[str, str]  # credentials of a user who may use the bucket
    refused: dict[str, str]  # credentials of a user who may not


def _credentials(iam: Any, user: str) -> dict[str, str]:
    """A new access key of `user`, as the AWS_* variables boto3 reads."""
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


@pytest.fixture(scope="module")
def guarded_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedS3]:
    """moto in a process of its own (its access checks are process-wide, so the suite's
    shared endpoint keeps answering everyone): a bucket, a user allowed everything on S3
    and one allowed nothing, and then, only then, every request checked."""
    port = free_port()
    log = tmp_path_factory.mktemp("guarded-s3") / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, server, log)
        url = f"http://127.0.0.1:{port}"
        bucket = "movies"
        boto3.client("s3", endpoint_url=url).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", endpoint_url=url)
        everything = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.create_user(UserName="owner")
        iam.put_user_policy(UserName="owner", PolicyName="s3",
                            PolicyDocument=json.dumps(everything))
        iam.create_user(UserName="stranger")
        guarded = GuardedS3(url=url, bucket=bucket, allowed=_credentials(iam, "owner"),
                            refused=_credentials(iam, "stranger"))
        # From here on moto checks every request's signature and the signer's policies.
        requests.post(f"{url}/moto-api/reset-auth", data=b"0", timeout=10).raise_for_status()
        yield guarded
    finally:
        stop_process(server)


def test_the_guarded_endpoint_lets_the_owner_in(guarded_s3: GuardedS3) -> None:
    """What makes the refusals below mean something: the same bucket, another signer."""
    owner = boto3.client(
        "s3", endpoint_url=guarded_s3.url,
        aws_access_key_id=guarded_s3.allowed["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=guarded_s3.allowed["AWS_SECRET_ACCESS_KEY"],
    )
    owner.head_bucket(Bucket=guarded_s3.bucket)


@pytest.mark.parametrize("who", ["no-permission", "unknown-key"])
def test_a_bucket_that_denies_access(tmp_path: Path, guarded_s3: GuardedS3, who: str) -> None:
    credentials = guarded_s3.refused if who == "no-permission" else {
        "AWS_ACCESS_KEY_ID": "AKIAMOVIEVAULTUNKNOWN", "AWS_SECRET_ACCESS_KEY": "not-a-key"}
    done = start(tmp_path, aws=credentials, S3_ENDPOINT_URL=guarded_s3.url,
                 S3_BUCKET=guarded_s3.bucket)
    assert refusal(done) == (
        f"Access to the bucket {guarded_s3.bucket} at {guarded_s3.url} is denied: check the "
        "credentials (AWS_ACCESS_KEY_ID, AWS_PROFILE...) and that they may read and write it."
    )


def test_an_s3_endpoint_that_does_not_answer(tmp_path: Path) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    message = refusal(start(tmp_path, S3_ENDPOINT_URL=endpoint, S3_BUCKET="movies"))
    assert message.startswith(f"Could not reach the bucket movies at {endpoint} (")
    assert message.endswith("check MOVIEVAULT_S3_ENDPOINT_URL and that the service is running.")


def test_no_s3_credentials_at_all(tmp_path: Path, s3_endpoint: str) -> None:
    # Nowhere else to look either: no files, no instance metadata service.
    nowhere = {"AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_EC2_METADATA_DISABLED": "true"}
    done = start(tmp_path, aws=nowhere, S3_ENDPOINT_URL=s3_endpoint, S3_BUCKET="movies")
    assert refusal(done) == (
        "No S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or "
        "AWS_PROFILE), or run MovieVault where an instance role provides them."
    )


# --- settings -------------------------------------------------------------------------------


def test_a_secret_key_too_short(tmp_path: Path) -> None:
    """Given, but too short to keep sessions and upload URLs unforgeable. (Several
    instances sharing one library, which must share a given key, are not a mode yet.)"""
    assert refusal(start(tmp_path, SECRET_KEY="changeme")).startswith(
        "MOVIEVAULT_SECRET_KEY must be at least 32 bytes long"
    )


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("PART_SIZE", "lots", "MOVIEVAULT_PART_SIZE must be an integer."),
        ("THREADS", "0", "MOVIEVAULT_THREADS must be at least 1, not 0."),
        ("STORAGE", "floppy",
         "MOVIEVAULT_STORAGE must be one of local, s3, embedded-s3, not 'floppy'."),
        ("STORAGE_ORIGIN", "ftp://media.example.org",
         "MOVIEVAULT_STORAGE_ORIGIN must be an origin such as https://media.example.org "
         "(scheme, host name and optional port, no path), not 'ftp://media.example.org'."),
    ],
)
def test_a_bad_setting(tmp_path: Path, setting: str, value: str, message: str) -> None:
    assert refusal(start(tmp_path, **{setting: value})) == message


@pytest.mark.parametrize("command", [["create-user", "alice"], ["rename-user", "alice", "bob"]])
def test_other_commands_refuse_the_same_way(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "a-file").write_text("in the way")
    done = start(tmp_path, *command, INSTANCE_PATH=tmp_path / "a-file" / "instance")
    assert refusal(done).startswith("Could not create the instance folder")


def test_help_with_a_bad_setting_still_helps(tmp_path: Path) -> None:
    """`--help` builds the app to list its commands: it says why it could not, in one line,
    and still shows the help (with the commands that need no app)."""
    done = start(tmp_path, "--help", PART_SIZE="lots")
    assert done.returncode == 0
    assert "Traceback" not in done.stderr + done.stdout
    assert done.stderr.strip() == "Error: MOVIEVAULT_PART_SIZE must be an integer."
    assert "Usage:" in done.stdout and "rename-user" in done.stdout
    assert "--version" in done.stdout


def test_a_good_start_still_serves(tmp_path: Path) -> None:
    """The checks let a usable set-up through: the same command, nothing in the way."""
    port = free_port()
    log = tmp_path / "serve.log"
    env = environment(INSTANCE_PATH=tmp_path / "instance", STORAGE="local")
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*MOVIEVAULT, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        wait_for_port(port, process, log)
        answer = requests.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert answer.status_code in (200, 302), log.read_text()
    finally:
        stop_process(process)
