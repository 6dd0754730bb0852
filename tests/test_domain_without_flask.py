"""The domain stands on its own: accounts, the upload protocol and the catalogue, no Flask."""

from __future__ import annotations

from pathlib import Path

from tests.support import run_without

# Flask, and the app's web and wiring modules: a domain module that needs them, even
# indirectly, fails to load.
BLOCKED = (
    "flask", "flask_login", "flask_wtf", "movievault.config", "movievault.db",
    "movievault.backends", "movievault.handlers", "movievault.api", "movievault.pages",
    "movievault.auth", "movievault.security", "movievault.background",
)
SCRIPT = r'''
import hashlib
import io
import os
import sys
import tempfile
from urllib.parse import parse_qs, urlsplit

from sqlmodel import Session, create_engine

from movievault import (
    api_tokens, completion, jobs, library, migrations, probing, quotas, throttle, uploads, users,
    validation,
)
from movievault.worker import ProbeWorker
from movievault.storage.local import LocalStorage
from movievault.storage.local_requests import receive_form

folder = tempfile.mkdtemp()
engine = create_engine(f"sqlite:///{folder}/catalogue.db")
migrations.upgrade(engine)
store = LocalStorage(root=os.path.join(folder, "objects"), secret="s" * 32)
store.setup()
settings = uploads.UploadSettings(
    url_expires=60, upload_ttl=3600, multipart_threshold=10**8, part_size=16 * 2**20,
    max_file_size=10**11, form_upload_ttl=600, max_pending_uploads=10,
)
data = os.urandom(200_000)
sha256 = hashlib.sha256(data).hexdigest()
with Session(engine, expire_on_commit=False) as session:
    owner = users.create_user(session=session, username="alice", password="long enough")
    attempt = throttle.begin_attempt(session=session, username="ALICE", address="192.0.2.1")
    assert users.authenticate(session=session, username="Alice", password="long enough")
    throttle.succeeded(session=session, attempt=attempt, user_id=owner.id)
    request = {"name": "Film (1999).mkv", "size": len(data), "sha256": sha256,
               "content_type": "video/x-matroska"}
    started = uploads.start_upload(
        session=session, storage=store, settings=settings, owner_id=owner.id, data=request
    )
    assert started.status == "created"
    shown = uploads.describe(started.upload, storage=store, settings=settings)
    boundary = "b0undary"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in shown.post.fields.items()
    ) + (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n'
        "Content-Type: video/x-matroska\r\n\r\n"
    ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
    receive_form(store, stream=io.BytesIO(body), boundary=boundary.encode())
    done = completion.complete_upload(
        session=session, storage=store, owner_id=owner.id, upload_id=started.upload.id, data={}
    )
    assert not done.duplicate and done.file.sha256 == sha256
    assert (done.file.title, done.file.year, done.file.media_status) == ("Film", 1999, "pending")
    # Its probe job was queued with it; random bytes are no movie: recorded as failed.
    worker = ProbeWorker(
        session_factory=lambda: Session(engine, expire_on_commit=False), storage=store,
        settings=jobs.ProbeSettings(timeout=30, workers=1),
    )
    assert worker.run_once() == "failed"
    session.refresh(done.file)
    assert done.file.media_status == "failed" and done.file.media_error
    page = library.list_files(session=session, owner_id=owner.id, query="film")
    assert [f.name for f in page.files] == ["Film (1999).mkv"]
    assert quotas.usage(session=session, owner_id=owner.id).stored_bytes == len(data)
    again = uploads.start_upload(
        session=session, storage=store, settings=settings, owner_id=owner.id, data=request
    )
    assert again.status == "duplicate"
    assert validation.content_type("text/html") == "application/octet-stream"
    token, secret = api_tokens.create_token(session=session, user_id=owner.id, name="script")
    found = api_tokens.user_for_token(session=session, secret=secret, now=token.created_at)
    assert found is not None and found.id == owner.id
print("the domain ran without Flask")
'''


def test_the_domain_imports_no_flask_and_runs_an_upload(tmp_path: Path) -> None:
    assert run_without(BLOCKED, SCRIPT, tmp_path) == "the domain ran without Flask"
