"""The user service: who is on Chirp."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.web import create_base_app

from .cache import InvalidationReplayer, UserCache
from .config import load_config

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict | None = None) -> APIFlask:
    settings = {**load_config(), **(config or {})}
    app = create_base_app(__name__, "Chirp user service", settings)
    migrations.wait_for_schema(app, MIGRATIONS, "user_service")

    cache = UserCache(settings["REDIS_URL"], settings["CACHE_TTL_SECONDS"],
                      settings["CACHE_NEGATIVE_TTL_SECONDS"], settings["CACHE_SOCKET_TIMEOUT"],
                      near_size=settings["NEAR_CACHE_SIZE"])
    app.extensions["user_cache"] = cache
    app.extensions["cache_replayer"] = InvalidationReplayer(cache, app.extensions["db_sessionmaker"])

    from .routes import bp
    app.register_blueprint(bp)
    return app
