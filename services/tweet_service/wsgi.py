"""Entry point for gunicorn: `tweet_service.wsgi:app`."""
from tweet_service import create_app

app = create_app()
