"""The tweet service: what Chirp users say."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.web import create_base_app

from .settings import TweetSettings, get_settings
from .store import TweetStore

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: TweetSettings | None = None) -> APIFlask:
    settings = settings or get_settings()
    store = TweetStore(settings)
    app = create_base_app(__name__, "Chirp tweet service", settings, store.db)
    app.extensions["store"] = store
    app.before_request(store.outbox.ensure_running)  # in each worker, once it serves
    migrations.wait_for_schema(app, MIGRATIONS, "tweet_service")

    from .routes import bp, events
    app.register_blueprint(bp)
    app.register_blueprint(events)
    return app
