"""P9: `movievault import` of a collection (≥ 2 GiB) against the tools a person would use.

Local store: `movievault import` (hashing, duplicate check, crash-safe copy with fsync,
recording) against `sha256sum` of the same files followed by `cp` to a folder on the same
disk, and the same followed by `sync` (the import makes its copies durable, plain `cp`
does not). S3: `movievault import` against a Python script calling boto3's `upload_file`
(default transfer settings) for the same files, to the same moto server; each runs in a
process of its own, its start-up counted. Rounds alternate the order; each ratio is taken
per round, then the median.

The files are ISO BMFF containers: an `ftyp` box, then one `mdat` box of random bytes up to
the size, so import's content sniffing takes them as MP4 (as it would a real movie) and
nothing compresses. They are not playable (no `moov`); import never plays or probes
inline: probing is queued for the server's worker.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (  # noqa: E402
    GIB,
    MIB,
    PASSWORD,
    USERNAME,
    Result,
    base_env,
    free_port,
    main_for,
    median,
    moto_server,
    s3_client,
    temp_dir,
)

TARGET = 1.2
FTYP = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
MOVIEVAULT = [sys.executable, "-c", "from movievault.main import cli; cli()"]


def container_file(path: Path, size: int, chunk: int = 16 * MIB) -> Path:
    """An `ftyp` box, then an `mdat` box (64-bit size) of random bytes up to `size`."""
    with path.open("wb") as out:
        out.write(FTYP)
        out.write(struct.pack(">I", 1) + b"mdat" + struct.pack(">Q", size - len(FTYP)))
        left = size - len(FTYP) - 16
        while left:
            step = min(chunk, left)
            out.write(os.urandom(step))
            left -= step
    return path


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    """Run a command; its wall time in seconds (it must succeed)."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return seconds


def command_env() -> dict[str, str]:
    """The environment of a timed command: Python's bytecode cache on, as on an installed
    system (pip writes it at install). Without it, as where PYTHONDONTWRITEBYTECODE is set,
    every run would compile MovieVault's own modules again, which no user's run does."""
    env = base_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def app_env(work: Path, storage: str, endpoint: str | None) -> dict[str, str]:
    """Settings of a fresh catalogue and store, with the bench's account in it (the
    commands that make them also leave the bytecode cache written before any timing)."""
    tag = free_port()
    env = command_env()
    env.update(
        MOVIEVAULT_INSTANCE_PATH=str(work / f"instance-{tag}"),
        MOVIEVAULT_SECRET_KEY="bench-secret-key-at-least-32-bytes-long",
        MOVIEVAULT_STORAGE=storage,
        XDG_CACHE_HOME=str(work / f"cache-{tag}"),  # a cold hash cache: every file hashed
    )
    if storage == "s3":
        assert endpoint
        env.update(MOVIEVAULT_S3_ENDPOINT_URL=endpoint, MOVIEVAULT_S3_BUCKET=f"bench-{tag}")
    else:
        env["MOVIEVAULT_DATA_DIR"] = str(work / f"objects-{tag}")
    subprocess.run([*MOVIEVAULT, "create-user", USERNAME], env=env, input=PASSWORD + "\n",
                   text=True, check=True, capture_output=True)
    subprocess.run([*MOVIEVAULT, "setup-bucket"], env=env, check=True, capture_output=True)
    return env


def import_once(work: Path, source: Path, storage: str, endpoint: str | None = None) -> float:
    """`movievault import` of the folder into a fresh catalogue and store; seconds."""
    env = app_env(work, storage, endpoint)
    seconds = timed([*MOVIEVAULT, "import", str(source), "--user", USERNAME], env)
    if storage == "local":
        shutil.rmtree(env["MOVIEVAULT_DATA_DIR"])
    else:
        client = s3_client(env["MOVIEVAULT_S3_ENDPOINT_URL"])
        bucket = env["MOVIEVAULT_S3_BUCKET"]
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
    return seconds


def sha256sum_cp(work: Path, files: list[Path], sync: bool) -> float:
    """`sha256sum` of the files, then `cp` of them (then `sync`, if asked); seconds."""
    target = work / "copies"
    target.mkdir()
    started = time.perf_counter()
    subprocess.run(["sha256sum", *map(str, files)], check=True, capture_output=True)
    subprocess.run(["cp", *map(str, files), str(target)], check=True)
    if sync:
        subprocess.run(["sync", "-f", str(target)], check=True)
    seconds = time.perf_counter() - started
    shutil.rmtree(target)
    return seconds


# The reference: a script a person would write, with boto3's default transfer settings.
BOTO3_SCRIPT = """
import sys
import boto3
from botocore.config import Config

endpoint, bucket, *paths = sys.argv[1:]
client = boto3.client("s3", endpoint_url=endpoint, config=Config(
    signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=16))
for path in paths:
    client.upload_file(path, bucket, path.rsplit("/", 1)[-1])
"""


def boto3_upload(endpoint: str, files: list[Path]) -> float:
    """A Python script calling boto3's `upload_file` for each file (default transfer
    settings), in its own process as `movievault import` is; seconds."""
    client = s3_client(endpoint)
    bucket = f"reference-{free_port()}"
    client.create_bucket(Bucket=bucket)
    seconds = timed([sys.executable, "-c", BOTO3_SCRIPT, endpoint, bucket, *map(str, files)],
                    command_env())
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert sorted(item["Key"] for item in listed) == sorted(path.name for path in files)
    for path in files:
        client.delete_object(Bucket=bucket, Key=path.name)
    return seconds


def run(*, quick: bool = False) -> Result:
    """Measure import against the references, side by side, a few rounds."""
    count, size = (4, 64 * MIB) if quick else (8, 256 * MIB)
    rounds = 2
    result = Result("P9", "Server-side import of a collection")
    times: dict[str, list[float]] = {k: [] for k in
                                     ("import_local", "sha_cp", "sha_cp_sync", "import_s3",
                                      "boto3")}
    with temp_dir() as work:
        source = work / "collection"
        source.mkdir()
        files = [container_file(source / f"Movie {n:02d}.mp4", size) for n in range(count)]
        with moto_server(work) as endpoint:
            for number in range(rounds):
                steps = [
                    ("import_local", lambda: import_once(work, source, "local")),
                    ("sha_cp", lambda: sha256sum_cp(work, files, sync=False)),
                    ("sha_cp_sync", lambda: sha256sum_cp(work, files, sync=True)),
                    ("import_s3", lambda: import_once(work, source, "s3", endpoint)),
                    ("boto3", lambda: boto3_upload(endpoint, files)),
                ]
                for name, step in (steps if number % 2 == 0 else steps[::-1]):
                    times[name].append(step())
                    print(f"round {number + 1}: {name} {times[name][-1]:.2f} s", flush=True)
    total = count * size

    def ratio(mine: str, reference: str) -> float:
        return median([m / r for m, r in zip(times[mine], times[reference], strict=True)])

    def speed(name: str) -> str:
        return f"{total / median(times[name]) / 1e6:.0f} MB/s"

    result.raw = {"files": count, "size": size, "seconds": times}
    shown = f"{count} files, {total / GIB:.2f} GiB"
    result.row(
        f"import, local store ({shown}; {speed('import_local')}) ÷ sha256sum + cp + sync "
        f"({speed('sha_cp_sync')})",
        f"{ratio('import_local', 'sha_cp_sync'):.2f}", f"≤ {TARGET}",
        ratio("import_local", "sha_cp_sync") <= TARGET,
    )
    result.row(
        f"import, local store ÷ sha256sum + cp without sync ({speed('sha_cp')})",
        f"{ratio('import_local', 'sha_cp'):.2f}", f"≤ {TARGET}",
        ratio("import_local", "sha_cp") <= TARGET,
    )
    result.row(
        f"import, S3 (moto; {speed('import_s3')}) ÷ boto3 upload_file ({speed('boto3')})",
        f"{ratio('import_s3', 'boto3'):.2f}", f"≤ {TARGET}", ratio("import_s3", "boto3") <= TARGET,
    )
    result.notes.append(
        f"{rounds} rounds, order alternating; each import is a fresh process, catalogue, "
        "store and hash cache (so every file is hashed), its time including start-up. "
        "The files are ISO BMFF (ftyp + an mdat of random bytes), warm in the page cache "
        "for every contender alike. Commands run with Python's bytecode cache on, as "
        "installed (the reference script too)."
    )
    return result


if __name__ == "__main__":
    main_for(run, __doc__.splitlines()[0])
