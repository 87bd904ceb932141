"""All three Chirp services under real gunicorn, wired to each other: the
user service, the tweet service and the feed service, each on its own
database, the user and feed services on one Redis (or, in the SQLite dev
mode, none). Timelines and deletions only work end to end across real
processes: events travel over HTTP from one service's outbox to another's
/internal/events, and the feed reads users and tweets over HTTP."""
from __future__ import annotations

from dataclasses import dataclass, field

import requests
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from support.servers import ServiceProcess, find_free_port, migrate
from support.storage import empty_tables, flush_redis

SERVICES = ("user_service", "tweet_service", "feed_service")
# Tables emptied between tests; those a branch does not have yet are skipped.
TABLES = {
    "user_service": ("users", "cache_invalidations", "idempotency_keys", "outbox"),
    "tweet_service": ("tweets", "idempotency_keys", "outbox", "received_events", "deleted_users"),
    "feed_service": ("follows", "follower_counts", "received_events", "deleted_users"),
}


@dataclass
class FeedStack:
    name: str
    db_urls: dict[str, str]
    redis_url: str | None
    feed_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    engines: dict[str, Engine] = field(default_factory=dict)

    def __post_init__(self):
        self.http = requests.Session()
        ports = {service: find_free_port() for service in SERVICES}
        urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
        env = {
            "user_service": {"REDIS_URL": self.redis_url or "",
                             "TWEET_SERVICE_URL": urls["tweet_service"],
                             "FEED_SERVICE_URL": urls["feed_service"]},
            "tweet_service": {"USER_SERVICE_URL": urls["user_service"],
                              "FEED_SERVICE_URL": urls["feed_service"]},
            "feed_service": {"REDIS_URL": self.redis_url or "",
                             "USER_SERVICE_URL": urls["user_service"],
                             "TWEET_SERVICE_URL": urls["tweet_service"], **self.feed_env},
        }
        for service in SERVICES:
            self.processes[service] = ServiceProcess(
                service, port=ports[service], workers=2 if service == "feed_service" else 1,
                threads=4, env={"DATABASE_URL": self.db_urls[service], "LOG_LEVEL": "info",
                                **env[service]})
            self.engines[service] = create_engine(self.db_urls[service])

    def start(self) -> "FeedStack":
        for service in SERVICES:
            migrate(service, self.db_urls[service])
        for process in self.processes.values():
            process.start()
        return self

    def close(self) -> None:
        self.http.close()
        for process in self.processes.values():
            process.close()
        for engine in self.engines.values():
            engine.dispose()

    # -- HTTP

    def url(self, service: str) -> str:
        return self.processes[service].url

    def request(self, method: str, service: str, path: str, **kwargs) -> requests.Response:
        return self.http.request(method, self.url(service) + path, timeout=10, **kwargs)

    def create_user(self, name: str = "Ali") -> int:
        response = self.request("POST", "user_service", "/users", json={"name": name})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def tweet(self, user_id: int, content: str = "Hello") -> dict:
        response = self.request("POST", "tweet_service", "/tweets",
                                json={"user_id": user_id, "content": content})
        assert response.status_code == 201, response.text
        return response.json()

    def follow(self, follower_id: int, followee_id: int) -> requests.Response:
        response = self.request("PUT", "feed_service", f"/follows/{follower_id}/{followee_id}")
        assert response.status_code in (200, 201), response.text
        return response

    def timeline(self, user_id: int, **params) -> requests.Response:
        return self.request("GET", "feed_service", f"/timelines/{user_id}", params=params)

    def timeline_ids(self, user_id: int, page_size: int = 100) -> list[int]:
        """Every tweet id of a home timeline, newest first, page after page."""
        ids, cursor = [], None
        while True:
            params = {"limit": page_size, **({"cursor": cursor} if cursor else {})}
            response = self.timeline(user_id, **params)
            assert response.status_code == 200, response.text
            body = response.json()
            ids += [tweet["id"] for tweet in body["data"]]
            if not (cursor := body["next_cursor"]):
                return ids

    # -- storage

    def count(self, service: str, table: str, where: str = "", **params) -> int:
        with self.engines[service].connect() as connection:
            sql = f"SELECT count(*) FROM {table}" + (f" WHERE {where}" if where else "")
            return connection.execute(text(sql), params).scalar_one()

    def reset(self) -> None:
        """Empty every table, restart ids at 1 and flush Redis."""
        for service, engine in self.engines.items():
            empty_tables(engine, TABLES[service])
        if self.redis_url:
            flush_redis(self.redis_url)
