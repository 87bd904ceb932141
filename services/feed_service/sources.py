"""What the feed reads from the other services, over their public HTTP APIs:
which users exist (user service) and tweets (tweet service)."""
from __future__ import annotations

import heapq
from itertools import islice

from common.pagination import encode_cursor
from common.service_client import MAX_BATCH, ServiceClient

from .settings import FeedSettings


def _chunks(items: list, size: int = MAX_BATCH):
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _csv(ids) -> str:
    return ",".join(map(str, ids))


def client(settings: FeedSettings, name: str, base_url: str) -> ServiceClient:
    return ServiceClient(
        name, base_url, connect_timeout=settings.service_connect_timeout,
        read_timeout=settings.service_read_timeout, retries=settings.service_retries,
        pool_size=settings.service_pool_size, breaker_threshold=settings.breaker_threshold,
        breaker_reset=settings.breaker_reset_seconds)


class Users:
    def __init__(self, client: ServiceClient):
        self.client = client

    def existing(self, user_ids: list[int]) -> set[int]:
        """The ids among `user_ids` of users that exist now."""
        return {user["id"] for user in self.client.get_batch("/users", sorted(set(user_ids)))}


class Tweets:
    def __init__(self, client: ServiceClient):
        self.client = client

    def by_ids(self, tweet_ids: list[int]) -> list[dict]:
        """The tweets that still exist among `tweet_ids`, in that order, each
        with its author embedded (null when the author no longer exists)."""
        return self.client.get_batch("/tweets", tweet_ids, expand="author")

    def newest(self, user_ids: list[int], count: int, before: int | None = None,
               expand: bool = True) -> list[dict]:
        """The `count` newest tweets by any of `user_ids` (older than the tweet
        `before`), newest first: pages of each group of MAX_BATCH authors,
        merged."""
        streams = [self._pages(chunk, count, before, expand)
                   for chunk in _chunks(sorted(set(user_ids)))]
        merged = heapq.merge(*streams, key=lambda tweet: -tweet["id"])
        return list(islice(merged, count))

    def _pages(self, user_ids: list[int], count: int, before: int | None, expand: bool):
        params = {"user_ids": _csv(user_ids), "limit": min(count, MAX_BATCH)}
        if expand:
            params["expand"] = "author"
        if before is not None:
            # Both services page by id with common.pagination: "older than
            # tweet N" is the cursor after tweet N.
            params["cursor"] = encode_cursor(before)
        while True:
            page = self.client.get_json("/tweets", **params)
            yield from page["data"]
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]
