"""The tweet service: what Chirp users say."""
from __future__ import annotations

from pathlib import Path

from apiflask import APIFlask

from common import migrations
from common.outbox import HttpSink, Relay
from common.web import create_base_app

from .config import load_config
from .models import OutboxEvent
from .user_client import UserClient

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(config: dict | None = None) -> APIFlask:
    settings = {**load_config(), **(config or {})}
    app = create_base_app(__name__, "Chirp tweet service", settings)
    migrations.check_current(app.extensions["db_engine"], MIGRATIONS, "tweet_service")
    app.extensions["user_client"] = UserClient(settings)
    relay = Relay(app.extensions["db_engine"], OutboxEvent.__table__, "tweets")
    relay.add_destination("feed", HttpSink(settings["FEED_SERVICE_URL"]))
    relay.install(app.extensions["db_sessionmaker"])
    app.before_request(relay.ensure_running)  # in each worker, once it serves
    app.extensions["outbox_relay"] = relay

    from . import events
    from .routes import bp
    app.register_blueprint(bp)
    app.register_blueprint(events.bp)
    return app
