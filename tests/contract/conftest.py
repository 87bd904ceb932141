"""The contract suite's stacks: both services wired together for real.

A stack is one storage setup (PostgreSQL + Redis, or the SQLite dev mode
without Redis) holding:

- `users`: a Flask test client of an in-process user service app;
- `tweets`: a Flask test client of an in-process tweet service app, whose
  user-service client calls `user_process` over HTTP;
- `user_process`: a second replica of the user service, under real gunicorn,
  on the same user database (and Redis), so cache invalidation must be seen
  across replicas.

Every test starts from empty tables (ids restart at 1) and an empty Redis.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest
import requests
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

import tweet_service
import user_service
from tweet_service.settings import TweetSettings
from user_service.settings import UserSettings
from support.feed_stack import SERVICES as FEED_SERVICES, FeedStack
from support.servers import ServiceProcess, find_free_port, migrate
from support.storage import empty_tables, flush_redis

USER_TABLES = ("users", "outbox", "idempotency_keys")
TWEET_TABLES = ("tweets", "outbox", "idempotency_keys", "received_events", "deleted_users")
# This stack has no feed: events for it (and the user service's for the
# tweet service) wait in the outboxes, retried against a port nothing serves.
NOWHERE = "http://127.0.0.1:9"
NO_CONSUMER = {"TWEET_SERVICE_URL": NOWHERE, "FEED_SERVICE_URL": NOWHERE}


@dataclass
class Stack:
    name: str
    user_db_url: str
    tweet_db_url: str
    redis_url: str | None
    user_process: ServiceProcess
    user_app: object = field(init=False)
    tweet_app: object = field(init=False)
    users: FlaskClient = field(init=False)
    tweets: FlaskClient = field(init=False)
    extra_apps: list = field(init=False, default_factory=list)

    def __post_init__(self):
        self.user_app = user_service.create_app(self.user_config())
        self.tweet_app = tweet_service.create_app(self.tweet_config())
        self.users = self.user_app.test_client()
        self.tweets = self.tweet_app.test_client()
        self._user_db = create_engine(self.user_db_url)
        self._tweet_db = create_engine(self.tweet_db_url)

    # -- building more apps on the same storage (e.g. with a dependency down)

    def user_config(self, **overrides) -> UserSettings:
        return UserSettings(**{"database_url": self.user_db_url, "redis_url": self.redis_url,
                               "tweet_service_url": NOWHERE, "feed_service_url": NOWHERE,
                               **overrides})

    def tweet_config(self, **overrides) -> TweetSettings:
        return TweetSettings(**{"database_url": self.tweet_db_url,
                                "user_service_url": self.user_process.url,
                                "feed_service_url": NOWHERE, **overrides})

    def app(self, service: str, **overrides):
        """Another in-process app of `service` ("users" or "tweets") on this
        stack's storage, with settings overridden; closed after the test."""
        if service == "users":
            app = user_service.create_app(self.user_config(**overrides))
        else:
            app = tweet_service.create_app(self.tweet_config(**overrides))
        self.extra_apps.append(app)
        return app

    def close_extra_apps(self) -> None:
        while self.extra_apps:
            self.extra_apps.pop().extensions["store"].close()

    # -- the second user-service replica, over HTTP

    def replica_get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.user_process.url + path, timeout=10, **kwargs)

    def replica(self, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(method, self.user_process.url + path, timeout=10, **kwargs)

    def user_access_log(self) -> list[dict]:
        """The gunicorn user service's JSON access log lines, oldest first."""
        lines = []
        for line in self.user_process.log_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if "method" in entry and "status" in entry:
                    lines.append(entry)
        return lines

    # -- direct database access, to count what was stored

    def user_db(self) -> Engine:
        return self._user_db

    def tweet_db(self) -> Engine:
        return self._tweet_db

    def count(self, engine: Engine, table: str) -> int:
        with engine.connect() as connection:
            return connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()

    def user_count(self) -> int:
        return self.count(self._user_db, "users")

    def tweet_count(self) -> int:
        return self.count(self._tweet_db, "tweets")

    def reset(self) -> None:
        """Empty every table, restart ids at 1 and flush the cache."""
        for engine, tables in ((self._user_db, USER_TABLES), (self._tweet_db, TWEET_TABLES)):
            empty_tables(engine, tables)
        if self.redis_url:
            flush_redis(self.redis_url)

    def close(self) -> None:
        # Keep-alive connections to the gunicorn replica would delay its graceful stop.
        for app in (self.user_app, self.tweet_app):
            app.extensions["store"].close()
        self._user_db.dispose()
        self._tweet_db.dispose()


def _start_stack(name: str, user_db_url: str, tweet_db_url: str, redis_url: str | None):
    with ThreadPoolExecutor() as pool:  # two subprocesses: run them side by side
        for done in [pool.submit(migrate, "user_service", user_db_url),
                     pool.submit(migrate, "tweet_service", tweet_db_url)]:
            done.result()
    env = {"DATABASE_URL": user_db_url, "REDIS_URL": redis_url or "", "LOG_LEVEL": "info",
           **NO_CONSUMER}
    with ServiceProcess("user_service", env=env, workers=2, threads=4) as process:
        stack = Stack(name, user_db_url, tweet_db_url, redis_url, process)
        try:
            yield stack
        finally:
            stack.close()


@pytest.fixture(scope="session")
def postgres_stack(postgres, redis_server):
    yield from _start_stack(
        "postgres",
        postgres.create_database("contract_users"),
        postgres.create_database("contract_tweets"),
        redis_server.url,
    )


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("contract-sqlite")
    yield from _start_stack("sqlite", f"sqlite:///{data / 'users.db'}",
                            f"sqlite:///{data / 'tweets.db'}", None)


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
def stack(request) -> Stack:
    """Each contract test runs on both stacks."""
    return request.getfixturevalue(f"{request.param}_stack")


@pytest.fixture(autouse=True)
def _empty_stack(request):
    """Every test starts on empty databases and an empty cache."""
    stacks = [request.getfixturevalue(name) for name in ("stack", "postgres_stack", "sqlite_stack")
              if name in request.fixturenames]
    for stack in stacks:
        stack.reset()
    yield
    for stack in stacks:
        stack.close_extra_apps()


@pytest.fixture
def second_replica(postgres_stack):
    """One more gunicorn user service on the PostgreSQL stack's database and Redis."""
    env = {"DATABASE_URL": postgres_stack.user_db_url, "REDIS_URL": postgres_stack.redis_url,
           **NO_CONSUMER}
    with ServiceProcess("user_service", env=env, workers=2, threads=4) as process:
        yield process


@pytest.fixture
def closed_port_url() -> str:
    """A base URL nothing listens on."""
    return f"http://127.0.0.1:{find_free_port()}"


# -- the feed: all three services under gunicorn (support/feed_stack.py)


def _feed_stack(name: str, db_urls: dict, redis_url: str | None):
    # A low fan-out limit, so that tests reach the read-time merge of big
    # accounts with a handful of followers.
    stack = FeedStack(name, db_urls, redis_url, feed_env={"FANOUT_MAX_FOLLOWERS": "3"})
    try:
        yield stack.start()
    finally:
        stack.close()


@pytest.fixture(scope="session")
def feed_postgres_stack(postgres, redis_server):
    # Its own Redis database: the other stacks flush theirs between tests.
    yield from _feed_stack("postgres", {
        service: postgres.create_database(f"feed_stack_{service}") for service in FEED_SERVICES
    }, redis_server.url.rsplit("/", 1)[0] + "/1")


@pytest.fixture(scope="session")
def feed_sqlite_stack(tmp_path_factory):
    data = tmp_path_factory.mktemp("feed-sqlite")
    yield from _feed_stack("sqlite", {
        service: f"sqlite:///{data / service}.db" for service in FEED_SERVICES}, None)


@pytest.fixture(params=["postgres", "sqlite"])
def feed_stack(request) -> FeedStack:
    """The three services on PostgreSQL and Redis, then on SQLite without Redis (`make dev`)."""
    stack = request.getfixturevalue(f"feed_{request.param}_stack")
    stack.reset()
    return stack
