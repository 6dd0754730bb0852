"""The storage backends stand on their own: no Flask, no catalogue, just their Python API."""

from __future__ import annotations

from pathlib import Path

from tests.support import run_without

# Flask, the database libraries and the app's wiring: any module of movievault.storage
# that needs them fails to load.
BLOCKED = (
    "flask", "flask_login", "flask_wtf", "sqlalchemy", "sqlmodel", "alembic",
    "movievault.config", "movievault.db", "movievault.models", "movievault.backends",
)
SCRIPT = r'''
import hashlib
import importlib
import io
import os
import pkgutil
import sys
import tempfile
from urllib.parse import parse_qs, urlsplit

import movievault.storage

for module in pkgutil.iter_modules(movievault.storage.__path__):
    importlib.import_module(f"movievault.storage.{module.name}")

from movievault.storage.base import MIN_PART_SIZE
from movievault.storage.local import LocalStorage
from movievault.storage.local_requests import receive_form, receive_part, resolve_download


def token_of(url):
    return parse_qs(urlsplit(url).query)["token"][0]


store = LocalStorage(root=tempfile.mkdtemp(), secret="a-secret-of-32-bytes-or-more-0123")
store.setup()

# A form upload: the signed fields, then the file (last, as S3 wants it).
data = os.urandom(300_000)
key = "movies/1/" + "a" * 32
form = store.post_form(key=key, size=len(data), content_type="video/mp4", expires=60)
boundary = "movievault-test-boundary"
body = b"".join(
    f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for name, value in form.fields.items()
)
body += (
    f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n'
    "Content-Type: video/mp4\r\n\r\n"
).encode() + data + f"\r\n--{boundary}--\r\n".encode()
assert receive_form(store, stream=io.BytesIO(body), boundary=boundary.encode()) == key
assert store.object_sha256(key) == hashlib.sha256(data).hexdigest()
url = store.download_url(key=key, filename="a.mp4", content_type="video/mp4", inline=True,
                         expires=60)
download = resolve_download(store, key=key, token=token_of(url))
with download.file:
    assert download.file.read() == data
assert download.etag == f'"{hashlib.sha256(data).hexdigest()}"'

# A multipart upload: each part PUT to its signed URL, then completed.
movie = os.urandom(MIN_PART_SIZE + 1000)
key = "movies/1/" + "b" * 32
upload_id = store.start_multipart(key=key, content_type="video/mp4")
parts = []
for number, chunk in enumerate((movie[:MIN_PART_SIZE], movie[MIN_PART_SIZE:]), start=1):
    url = store.part_url(key=key, upload_id=upload_id, part_number=number, size=len(chunk),
                         expires=60)
    etag = receive_part(store, token=token_of(url), upload_id=upload_id, part_number=number,
                        stream=io.BytesIO(chunk), length=len(chunk))
    parts.append((number, etag))
assert [(p.part_number, p.etag) for p in store.list_parts(key=key, upload_id=upload_id)] == parts
store.complete_multipart(key=key, upload_id=upload_id, parts=parts)
assert store.object_size(key) == len(movie)
assert store.object_sha256(key) == hashlib.sha256(movie).hexdigest()
assert sorted(item.key for item in store.iter_objects()) == ["movies/1/" + "a" * 32, key]
print("storage ran without Flask")
'''


def test_the_storage_package_imports_no_flask_and_no_catalogue(tmp_path: Path) -> None:
    assert run_without(BLOCKED, SCRIPT, tmp_path) == "storage ran without Flask"
