"""The user service: who is on Chirp."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.web import create_base_app

from .settings import UserSettings, get_settings
from .store import UserStore

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: UserSettings | None = None) -> APIFlask:
    settings = settings or get_settings()
    store = UserStore(settings)
    app = create_base_app(__name__, "Chirp user service", settings, store.db)
    app.extensions["store"] = store
    app.before_request(store.outbox.ensure_running)  # in each worker, once it serves
    migrations.wait_for_schema(app, MIGRATIONS, "user_service")

    from .routes import bp
    app.register_blueprint(bp)
    return app
