"""Entry point for gunicorn: `feed_service.wsgi:app`."""
from feed_service import create_app

app = create_app()
