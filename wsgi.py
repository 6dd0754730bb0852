"""WSGI entry point: `waitress-serve wsgi:app`, `gunicorn wsgi:app`, or `movievault serve`."""

from movievault import create_app

app = create_app()
