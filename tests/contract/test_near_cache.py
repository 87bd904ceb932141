"""The near cache (each worker's own copy of users, in front of Redis) is
never staler than Redis: a write is seen by the very next read on any
replica, a lookup racing a write cannot keep the old user, and nothing is
served while the worker cannot prove it hears every invalidation."""
from __future__ import annotations

import threading
import time

import pytest
import redis
import requests

from contract.api import metric
from user_service.cache import CHANNEL, UserCache
from user_service.settings import UserSettings
from user_service.near_cache import DROP_ALL, NearCache
from user_service.subscription import Subscription

LEASE = 0.1


@pytest.fixture
def redis_url(postgres_stack) -> str:
    return postgres_stack.redis_url


@pytest.fixture
def near(redis_url):
    near = NearCache(lambda: Subscription(redis_url, CHANNEL, LEASE), size=100, ttl=60,
                     lease=LEASE, reconnect_every=0.2)
    yield near
    near.close()


def until_live(near: NearCache, timeout: float = 2.0) -> int:
    """Wait for the subscription's first PING to come back; its generation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        near.fill({0: b"probe"}, near.get_many([])[1])
        found, generation = near.get_many([0])
        if found:
            return generation
        time.sleep(0.005)
    raise AssertionError("the near cache never became live")


def test_nothing_is_kept_before_the_subscription_is_proven(near, redis_url):
    with redis.Redis.from_url(redis_url) as client:
        client.execute_command("CLIENT", "PAUSE", 300, "ALL")  # the first PING cannot come back
    _, generation = near.get_many([1])  # subscribes, sends the first PING
    near.fill({1: b"user 1"}, generation)
    assert near.get_many([1])[0] == {}
    until_live(near)
    near.fill({1: b"user 1"}, near.get_many([1])[1])
    assert near.get_many([1])[0] == {1: b"user 1"}


def test_an_invalidation_drops_the_user_before_the_next_answer(near, redis_url):
    until_live(near)
    near.fill({1: b"user 1", 2: b"user 2"}, near.get_many([])[1])
    cache = UserCache(UserSettings(redis_url=redis_url, cache_socket_timeout=1, near_cache_size=0), set)
    assert cache.invalidate([1])  # publishes, then waits for delivery
    assert near.get_many([1, 2])[0] == {2: b"user 2"}


def test_a_lookup_that_began_before_an_invalidation_cannot_fill(near, redis_url):
    until_live(near)
    _, generation = near.get_many([1])  # a lookup begins, reads the old user...
    UserCache(UserSettings(redis_url=redis_url, cache_socket_timeout=1, near_cache_size=0), set).invalidate([1])
    near.get_many([2])  # ...another request applies the invalidation...
    near.fill({1: b"old user 1"}, generation)  # ...and the slow lookup ends
    assert near.get_many([1])[0] == {}


def test_drop_all_empties_the_copy(near, redis_url):
    until_live(near)
    near.fill({1: b"user 1", 2: b"user 2"}, near.get_many([])[1])
    with redis.Redis.from_url(redis_url) as client:
        client.publish(CHANNEL, DROP_ALL)
        client.ping()
    assert near.get_many([1, 2])[0] == {}


def test_a_frozen_redis_stops_the_copy_within_the_lease(near, redis_url):
    until_live(near)
    near.fill({1: b"user 1"}, near.get_many([])[1])
    with redis.Redis.from_url(redis_url) as client:
        client.execute_command("CLIENT", "PAUSE", 600, "ALL")
    frozen_at = time.monotonic()
    served_late = []
    while time.monotonic() - frozen_at < 0.5:
        if near.get_many([1])[0] and time.monotonic() - frozen_at > LEASE:
            served_late.append(time.monotonic() - frozen_at)
        time.sleep(0.005)
    assert not served_late, f"served from memory {max(served_late):.3f} s into a freeze"
    until_live(near, timeout=3)  # answers again once Redis does, starting empty
    assert near.get_many([1])[0] == {}


def test_a_lost_subscription_drops_the_copy_and_comes_back(near, redis_url):
    until_live(near)
    near.fill({1: b"user 1"}, near.get_many([])[1])
    with redis.Redis.from_url(redis_url) as client:
        assert client.client_kill_filter(_type="pubsub") >= 1
    time.sleep(0.05)
    assert near.get_many([1])[0] == {}
    until_live(near)
    assert near.get_many([1])[0] == {}


def test_a_pause_in_traffic_keeps_the_copy_until_the_keeper_stops(redis_url):
    near = NearCache(lambda: Subscription(redis_url, CHANNEL, LEASE), size=100, ttl=60,
                     lease=LEASE, keep_for=0.6)
    try:
        until_live(near)
        near.fill({1: b"user 1"}, near.get_many([])[1])
        time.sleep(0.4)  # four leases without a lookup: the keeper renewed it
        assert near.get_many([1])[0] == {1: b"user 1"}
        time.sleep(1.0)  # longer than keep_for: the keeper stopped, the lease lapsed
        assert near._keeper is None
        assert near.get_many([1])[0] == {}
    finally:
        near.close()


def test_a_lookup_that_finds_the_socket_closed_under_it_takes_the_lock(near):
    until_live(near)
    near.fill({1: b"user 1"}, near.get_many([])[1])
    near._subscription.close()  # as if the keeper closed it between the read and the select
    # Answered under the lock, without an error; the copy went with the subscription.
    assert near.get_many([1])[0] == {}


def test_the_copy_holds_at_most_size_users(redis_url):
    near = NearCache(lambda: Subscription(redis_url, CHANNEL, 1.0), size=3, ttl=60, lease=1.0)
    until_live(near)
    generation = near.get_many([])[1]
    near.fill({i: b"user %d" % i for i in range(1, 6)}, generation)
    assert set(near.get_many(range(6))[0]) == {3, 4, 5}


def test_every_write_is_read_next_on_the_other_replica_while_it_serves_from_memory(
        postgres_stack, second_replica):
    writer, reader = postgres_stack.user_process.url, second_replica.url
    session = requests.Session()
    user_id = session.post(f"{writer}/users", json={"name": "v0"}, timeout=10).json()["id"]
    stop = threading.Event()

    def keep_reading():  # keeps the reader's workers live and their copies warm
        with requests.Session() as background:
            while not stop.is_set():
                background.get(f"{reader}/users/{user_id}", timeout=10)

    threads = [threading.Thread(target=keep_reading) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.3)
        before = session.get(f"{reader}/metrics", timeout=10).text
        stale = []
        for version in range(1, 101):
            assert session.patch(f"{writer}/users/{user_id}", json={"name": f"v{version}"},
                                 timeout=10).status_code == 200
            seen = session.get(f"{reader}/users/{user_id}", timeout=10).json()["name"]
            if seen != f"v{version}":
                stale.append((version, seen))
        after = session.get(f"{reader}/metrics", timeout=10).text
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    near_hits = (metric(after, "user_cache_lookups_total", result="hit", tier="near")
                 - metric(before, "user_cache_lookups_total", result="hit", tier="near"))
    assert not stale, f"{len(stale)} of 100 reads after a write were stale: {stale[:5]}"
    assert near_hits > 100, "the reader hardly served from memory: the test proved nothing"


def test_one_keeper_thread_per_near_cache(redis_url):
    near = NearCache(lambda: Subscription(redis_url, CHANNEL, 1.0), size=3, ttl=60, lease=1.0,
                     keep_for=0.3)

    def keepers() -> int:
        return sum(1 for thread in threading.enumerate() if thread.name == near.keeper_name)

    try:
        for _ in range(3):
            until_live(near)
            assert keepers() == 1
            time.sleep(0.8)  # idle past keep_for: the keeper stops; the next lookup starts one
            assert keepers() == 0
    finally:
        near.close()
