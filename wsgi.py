"""WSGI entry point: `waitress-serve wsgi:app`, `gunicorn wsgi:app`, or `movievault serve`.

Each process serving requests through this also probes new files in the background
(MOVIEVAULT_MEDIA_WORKERS at a time, 0 for none), from its first request on; jobs are
claimed in the database, so processes never share one.
"""

from movievault import create_app
from movievault.background import start_with_first_request

app = create_app()
start_with_first_request(app)
