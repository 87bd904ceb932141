"""POST /tweets' author checks share batch lookups under load, and are never
answered by a call sent before they began (tweet_service/coalescing.py).
Against the gunicorn user service of the stack, over HTTP."""
from __future__ import annotations

import threading
import time

import pytest

from contract.api import create_user
from tweet_service.user_client import UserClient, UserServiceUnavailable


@pytest.fixture
def client(postgres_stack):
    client = UserClient(postgres_stack.tweet_config())
    yield client
    client.close()


class HeldLookups:
    """Wraps the client's batch lookup: records each call's ids, and holds
    the first call (after it was answered) until released."""

    def __init__(self, client: UserClient):
        self.calls: list[list[int]] = []
        self.first_answered = threading.Event()
        self.release = threading.Event()
        self._lookup = client._author_checks._lookup
        client._author_checks._lookup = self

    def __call__(self, ids: list[int]):
        self.calls.append(ids)
        found = self._lookup(ids)
        if len(self.calls) == 1:
            self.first_answered.set()
            assert self.release.wait(10)
        return found


def _check_in_thread(client, user_id, answers):
    thread = threading.Thread(target=lambda: answers.__setitem__(user_id, client.user_exists(user_id)))
    thread.start()
    return thread


def _wait_queued(client, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(getattr(client._author_checks._queued, "keys", ())) < n:
        assert time.monotonic() < deadline, "the checks never queued"
        time.sleep(0.005)


def test_checks_that_arrive_during_a_call_share_the_next_one(postgres_stack, client):
    for _ in range(5):
        create_user(postgres_stack)
    held, answers = HeldLookups(client), {}
    threads = [_check_in_thread(client, 1, answers)]
    assert held.first_answered.wait(5)
    threads += [_check_in_thread(client, user_id, answers) for user_id in (2, 3, 4, 99)]
    _wait_queued(client, 4)
    held.release.set()
    for thread in threads:
        thread.join(10)

    assert held.calls == [[1], [2, 3, 4, 99]]
    assert answers == {1: True, 2: True, 3: True, 4: True, 99: False}


def test_a_check_is_never_answered_by_a_call_sent_before_it(postgres_stack, client):
    user = create_user(postgres_stack)
    held, answers = HeldLookups(client), {}
    first = _check_in_thread(client, user["id"], answers)  # answered "exists", then held
    assert held.first_answered.wait(5)
    assert postgres_stack.replica("DELETE", f"/users/{user['id']}").status_code == 204

    late: dict[int, bool] = {}
    second = _check_in_thread(client, user["id"], late)  # began after the 204
    _wait_queued(client, 1)
    held.release.set()
    first.join(10)
    second.join(10)

    assert answers == {user["id"]: True}
    assert late == {user["id"]: False}
    assert held.calls == [[user["id"]], [user["id"]]]


def test_a_slow_call_holds_other_checks_no_longer_than_max_wait(postgres_stack, client):
    create_user(postgres_stack)
    client._author_checks.max_wait = 0.05
    held, answers = HeldLookups(client), {}
    first = _check_in_thread(client, 1, answers)
    assert held.first_answered.wait(5)
    started = time.monotonic()
    assert client.user_exists(1)  # sent on its own while the first call is held
    assert time.monotonic() - started < 1
    held.release.set()
    first.join(10)
    assert held.calls == [[1], [1]]


def test_every_check_in_a_failed_batch_gets_the_error(postgres_stack, client, closed_port_url):
    client = UserClient(postgres_stack.tweet_config(user_service_url=closed_port_url,
                                                    user_service_retries=0))
    errors: list[Exception] = []

    def check(user_id):
        try:
            client.user_exists(user_id)
        except UserServiceUnavailable as error:
            errors.append(error)

    threads = [threading.Thread(target=check, args=(i,)) for i in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(errors) == 5
