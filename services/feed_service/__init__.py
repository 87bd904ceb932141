"""The feed service: who follows whom, and home timelines."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.web import create_base_app

from .settings import FeedSettings, get_settings
from .store import FeedStore

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: FeedSettings | None = None) -> APIFlask:
    settings = settings or get_settings()
    store = FeedStore(settings)
    app = create_base_app(__name__, "Chirp feed service", settings, store.db)
    app.extensions["store"] = store
    migrations.wait_for_schema(app, MIGRATIONS, "feed_service")

    from .routes import blueprints
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
