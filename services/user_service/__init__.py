"""The user service: who is on Chirp."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask
from sqlalchemy import select

from common import migrations
from common.outbox import HttpSink, Relay
from common.web import create_base_app

from .cache import PendingInvalidations, UserCache
from .models import OutboxEvent
from .config import load_config

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict | None = None) -> APIFlask:
    settings = {**load_config(), **(config or {})}
    app = create_base_app(__name__, "Chirp user service", settings)
    migrations.check_current(app.extensions["db_engine"], MIGRATIONS, "user_service")

    cache = UserCache(settings["REDIS_URL"], settings["CACHE_TTL_SECONDS"],
                      settings["CACHE_NEGATIVE_TTL_SECONDS"], settings["CACHE_SOCKET_TIMEOUT"],
                      near_size=settings["NEAR_CACHE_SIZE"])
    app.extensions["user_cache"] = cache
    relay = Relay(app.extensions["db_engine"], OutboxEvent.__table__, "users")
    # Inline: a write answers once Redis and every near cache dropped the
    # user. Retried often: lookups skip the cache for a pending user.
    relay.add_destination("cache", cache.apply, inline=True, max_backoff=0.5)
    relay.add_destination("tweet", HttpSink(settings["TWEET_SERVICE_URL"]))
    relay.add_destination("feed", HttpSink(settings["FEED_SERVICE_URL"]))
    relay.install(app.extensions["db_sessionmaker"])
    app.before_request(relay.ensure_running)  # in each worker, once it serves
    app.extensions["outbox_relay"] = relay
    app.extensions["pending_invalidations"] = PendingInvalidations(
        cache, lambda: _pending_invalidations(app.extensions["db_autocommit_engine"]))

    from .routes import bp
    app.register_blueprint(bp)
    return app


def _pending_invalidations(engine) -> set[int]:
    outbox = OutboxEvent.__table__
    with engine.connect() as connection:
        payloads = connection.execute(select(outbox.c.payload).where(outbox.c.destination == "cache"))
        return {payload["user_id"] for payload, in payloads}
