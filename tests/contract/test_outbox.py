"""common.outbox on real PostgreSQL and SQLite: an event commits with its
transaction, reaches its sink, survives a failing sink, and two relays on
one database never deliver the same event twice."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import orjson
import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import DeclarativeBase, sessionmaker

from common.outbox import HttpSink, OutboxMixin, Relay, emit


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


@pytest.fixture(params=["postgres", "sqlite"])
def engine(request, tmp_path):
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").create_database("outbox_test")
        engine = create_engine(url, pool_size=10)
    else:
        engine = create_engine(f"sqlite:///{tmp_path / 'outbox.db'}",
                               connect_args={"check_same_thread": False, "timeout": 15})
    Base.metadata.create_all(engine)
    yield engine
    while RELAYS:
        RELAYS.pop().stop()
    engine.dispose()


RELAYS: list[Relay] = []  # stopped after each test


class Recorder:
    """A sink that keeps what it was given; fails while `failures` > 0."""

    def __init__(self, failures: int = 0, delay: float = 0.0):
        self.events: list[dict] = []
        self.failures = failures
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, events):
        time.sleep(self.delay)
        with self.lock:
            self.calls += 1
            if self.failures > 0:
                self.failures -= 1
                raise ConnectionError("consumer down")
            self.events.extend(events)

    def ids(self) -> list[str]:
        return [e["id"] for e in self.events]



def make_relay(engine, sink, inline=False, **options) -> tuple[Relay, sessionmaker]:
    relay = Relay(engine, Outbox.__table__, "test", poll_every=0.1, min_backoff=0.05,
                  max_backoff=0.2, **options)
    relay.add_destination("feed", sink, inline=inline)
    RELAYS.append(relay)
    maker = sessionmaker(engine)
    relay.install(maker)
    return relay, maker


def rows_left(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Outbox)).scalar_one()


def wait_until(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_committed_event_reaches_its_sink_and_leaves_the_table(engine):
    sink = Recorder()
    relay, maker = make_relay(engine, sink)
    with maker.begin() as session:
        emit(session, "feed", "tweet.created", {"tweet_id": 7})
        assert sink.events == []  # not before the commit
    wait_until(lambda: sink.events and rows_left(engine) == 0)
    (event,) = sink.events
    assert event["type"] == "tweet.created" and event["data"] == {"tweet_id": 7}
    assert event["id"].startswith("test:") and event["occurred_at"].endswith("Z")


def test_a_rolled_back_event_is_never_delivered(engine):
    sink = Recorder()
    relay, maker = make_relay(engine, sink)
    with maker() as session:
        emit(session, "feed", "tweet.created", {"tweet_id": 1})
        session.rollback()
    relay.wake()
    time.sleep(0.3)
    assert sink.calls == 0 and rows_left(engine) == 0


def test_an_inline_destination_is_delivered_before_commit_returns(engine):
    sink = Recorder()
    relay, maker = make_relay(engine, sink, inline=True)
    with maker.begin() as session:
        emit(session, "feed", "user.updated", {"user_id": 3})
    assert [e["data"] for e in sink.events] == [{"user_id": 3}]
    assert rows_left(engine) == 0
    assert relay._thread is None  # nothing was left for a thread to do


def test_a_failing_sink_loses_nothing_and_keeps_the_order(engine):
    sink = Recorder(failures=10**9)
    relay, maker = make_relay(engine, sink, inline=True)
    for n in range(5):
        with maker.begin() as session:
            emit(session, "feed", "tweet.created", {"n": n})
    time.sleep(0.5)  # the consumer is down: inline and relay attempts fail
    assert sink.calls > 5 and sink.events == []
    assert rows_left(engine) == 5  # the rows wait
    sink.failures = 0  # the consumer is back
    wait_until(lambda: rows_left(engine) == 0)
    assert [e["data"]["n"] for e in sink.events] == list(range(5))  # each once, in order


def test_rows_left_by_a_dead_process_are_delivered_by_polling(engine):
    dead_sink = Recorder(failures=1)
    dead, dead_maker = make_relay(engine, dead_sink, inline=True)
    dead.wake = lambda: None  # it "dies" before its thread could retry
    with dead_maker.begin() as session:  # committed, never delivered: its process "died"
        emit(session, "feed", "tweet.deleted", {"tweet_id": 9})
    assert rows_left(engine) == 1

    sink = Recorder()
    relay, _ = make_relay(engine, sink)
    relay.ensure_running()  # never woken by a commit: it finds the row by polling
    wait_until(lambda: rows_left(engine) == 0)
    assert [e["data"] for e in sink.events] == [{"tweet_id": 9}]


def test_two_relays_never_deliver_an_event_twice(engine):
    first, second = Recorder(delay=0.01), Recorder(delay=0.01)
    relays = [make_relay(engine, first, batch_size=5)[0], make_relay(engine, second, batch_size=5)[0]]
    with sessionmaker(engine).begin() as session:  # no relay installed: none is woken
        for n in range(60):
            relays[0].record(session, "feed", "tweet.created", {"n": n})

    def drain(relay):
        while relay.deliver("feed"):
            pass

    threads = [threading.Thread(target=drain, args=(r,)) for r in relays]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    delivered = first.ids() + second.ids()
    assert len(delivered) == len(set(delivered)) == 60
    assert rows_left(engine) == 0
    if engine.dialect.name == "postgresql":
        assert first.events and second.events  # SKIP LOCKED: both worked at once


class _Consumer(BaseHTTPRequestHandler):
    status = 204
    received: list = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, self.headers.get("X-Request-ID"), orjson.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def consumer():
    _Consumer.received, _Consumer.status = [], 204
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Consumer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield _Consumer, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_the_http_sink_posts_a_batch_and_fails_on_an_error_status(consumer):
    handler, url = consumer
    sink = HttpSink(url)
    events = [{"id": "test:1", "type": "tweet.created", "request_id": "req-1",
               "occurred_at": "2026-11-30T00:00:00Z", "data": {"tweet_id": 1}}]
    sink(events)
    assert handler.received == [("/internal/events", "req-1", {"events": events})]
    handler.status = 503
    with pytest.raises(requests.HTTPError):
        sink(events)
