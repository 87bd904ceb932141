"""The fault suite's world: both services under real gunicorn, each on its
own private PostgreSQL (so one database can go down while the other stays
up), the user service on a private Redis that tests stop and freeze.

Every test gets fresh databases, an empty Redis and freshly started
services; whatever a test broke (a stopped database, a frozen Redis) is
repaired before the next one. Each scenario adds one row to the summary
table printed at the end of the run (and written to FAULTS_SUMMARY, default
.data/faults-summary.md).
"""
from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
import pytest

from support.servers import (REPO, PostgresServer, RedisServer, ServerUnavailable, ServiceProcess,
                             migrate)

from faults.helpers import SUMMARY, start_service
from faults.load import Client

_db_counter = itertools.count(1)


def _own(factory):
    if os.environ.get("TEST_DATABASE_URL") or os.environ.get("TEST_REDIS_URL"):
        pytest.skip("fault tests stop and kill their servers: they need private ones")
    try:
        server = factory()
    except ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    server.start()
    return server


@pytest.fixture(scope="session")
def user_pg():
    server = _own(PostgresServer)
    yield server
    server.close()


@pytest.fixture(scope="session")
def tweet_pg():
    server = _own(PostgresServer)
    yield server
    server.close()


@pytest.fixture(scope="session")
def fault_redis():
    server = _own(RedisServer)
    yield server
    server.close()


def _ensure_up(pg: PostgresServer) -> None:
    if pg.postmaster_pid() is None:
        pg.start()


def _ensure_redis(redis_server: RedisServer) -> None:
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    with redis_server.client(socket_timeout=10) as c:
        c.execute_command("CLIENT", "UNPAUSE")
        c.flushall()


@dataclass
class Stack:
    user_pg: PostgresServer
    tweet_pg: PostgresServer
    redis: RedisServer
    user_db: str
    tweet_db: str
    users: ServiceProcess
    tweets: ServiceProcess
    extra: list = field(default_factory=list)

    @property
    def user_db_url(self) -> str:
        return self.user_pg.url(self.user_db)

    def uc(self) -> Client:
        return Client(self.users.url)

    def tc(self) -> Client:
        return Client(self.tweets.url)

    def query(self, which: str, sql: str, args=()) -> list[tuple]:
        pg, name = (self.user_pg, self.user_db) if which == "users" else (self.tweet_pg, self.tweet_db)
        conn = pg.connect(name, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall()
        finally:
            conn.close()

    def metric(self, service: str, name: str, **labels) -> float:
        """Sum of a /metrics sample over all label sets matching `labels`."""
        import urllib.request

        url = (self.users if service == "users" else self.tweets).url + "/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
        total = 0.0
        for line in text.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            sample, value = line.rsplit(" ", 1)
            if all(f'{k}="{v}"' in sample for k, v in labels.items()):
                total += float(value)
        return total

    def create_users(self, n: int) -> list[int]:
        client = self.uc()
        ids = []
        for i in range(n):
            r = client.post("/users", json={"name": f"user {i}", "handle": f"u{i}"})
            assert r.status == 201, (r.status, r.body)
            ids.append(r.json()["id"])
        client.close()
        return ids


@pytest.fixture
def stack(user_pg, tweet_pg, fault_redis):
    for pg in (user_pg, tweet_pg):
        _ensure_up(pg)
    _ensure_redis(fault_redis)
    n = next(_db_counter)
    user_db, tweet_db = f"faults_users_{n}", f"faults_tweets_{n}"
    migrate("user_service", user_pg.create_database(user_db))
    migrate("tweet_service", tweet_pg.create_database(tweet_db))
    users = start_service("user_service", {"DATABASE_URL": user_pg.url(user_db),
                                           "REDIS_URL": fault_redis.url})
    tweets = None
    try:
        tweets = start_service("tweet_service", {"DATABASE_URL": tweet_pg.url(tweet_db),
                                                 "USER_SERVICE_URL": users.url})
        s = Stack(user_pg, tweet_pg, fault_redis, user_db, tweet_db, users, tweets)
        yield s
    finally:
        for proc in [tweets, users, *(s.extra if tweets else [])]:
            if proc is not None:
                proc.kill()
                proc.close()
        # Leave the servers running and thawed for the next test.
        for pg in (user_pg, tweet_pg):
            _ensure_up(pg)
        _ensure_redis(fault_redis)
        for pg, name in ((user_pg, user_db), (tweet_pg, tweet_db)):
            try:
                pg.drop_database(name)
            except psycopg2.Error:
                pass


@pytest.fixture
def summary():
    """summary(scenario, requests, errors, lost, duplicates, note=''): one table row."""

    def add(scenario: str, requests: int, errors: int, lost: int = 0, duplicates: int = 0,
            note: str = ""):
        SUMMARY.append(dict(scenario=scenario, requests=requests, errors=errors, lost=lost,
                            duplicates=duplicates, note=note))

    return add


def summary_table() -> str:
    rows = ["| scenario | requests | errors | lost writes | duplicates | notes |",
            "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in SUMMARY:
        rows.append(f"| {r['scenario']} | {r['requests']} | {r['errors']} | {r['lost']} | "
                    f"{r['duplicates']} | {r['note']} |")
    return "\n".join(rows)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not SUMMARY:
        return
    table = summary_table()
    terminalreporter.write_sep("=", "fault suite summary")
    terminalreporter.write_line(table)
    path = Path(os.environ.get("FAULTS_SUMMARY", REPO / ".data" / "faults-summary.md"))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        path.write_text(f"Fault suite run of {stamp} (exit status {int(exitstatus)}):\n\n{table}\n")
        terminalreporter.write_line(f"(written to {path})")
    except OSError as exc:
        terminalreporter.write_line(f"(could not write {path}: {exc})")
