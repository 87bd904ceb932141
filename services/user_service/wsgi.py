"""Entry point for gunicorn: `user_service.wsgi:app`."""
from user_service import create_app

app = create_app()
