"""WSGI entry point: `waitress-serve wsgi:app`, `gunicorn wsgi:app`, or `movievault serve`.

Each process importing this probes new files in the background (MOVIEVAULT_MEDIA_WORKERS
at a time, 0 for none); jobs are claimed in the database, so processes never share one.
"""

from movievault import create_app
from movievault.background import start_probe_worker

app = create_app()
start_probe_worker(app)
