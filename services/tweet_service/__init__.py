"""The tweet service: what Chirp users say."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.web import create_base_app

from .config import load_config
from .user_client import UserClient

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict | None = None) -> APIFlask:
    settings = {**load_config(), **(config or {})}
    app = create_base_app(__name__, "Chirp tweet service", settings)
    migrations.wait_for_schema(app, MIGRATIONS, "tweet_service")
    app.extensions["user_client"] = UserClient(settings)

    from .routes import bp
    app.register_blueprint(bp)
    return app
