"""The feed service: who follows whom, and home timelines."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.forking import in_forked_children
from common.service_client import client_from_config
from common.web import create_base_app

from .config import load_config
from .sources import Tweets, Users
from .store import FeedStore
from .timeline_cache import TimelineCache

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict | None = None) -> APIFlask:
    settings = {**load_config(), **(config or {})}
    app = create_base_app(__name__, "Chirp feed service", settings)
    migrations.check_current(app.extensions["db_engine"], MIGRATIONS, "feed_service")

    users = Users(client_from_config(settings, "user service", "USER_SERVICE"))
    tweets = Tweets(client_from_config(settings, "tweet service", "TWEET_SERVICE"))
    cache = None
    if settings["REDIS_URL"]:
        cache = TimelineCache(settings["REDIS_URL"], settings["TIMELINE_SIZE"],
                              settings["REDIS_SOCKET_TIMEOUT"])
        # A forked worker must not share the master's Redis sockets.
        in_forked_children(cache.redis, lambda client: client.connection_pool.reset())
    app.extensions["feed_store"] = FeedStore(settings, users, tweets, cache)

    from .routes import blueprints
    for blueprint in blueprints:
        app.register_blueprint(blueprint)
    return app
