"""The WSGI entry point for gunicorn: one app per worker, built after fork."""

from flask_front import create_app

app = create_app()
