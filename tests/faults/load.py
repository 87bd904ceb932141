"""A small, bounded HTTP load generator for the fault suite (loopback only).

`Client` is a keep-alive HTTP/1.1 client (one connection per thread and
service) with the retry policy a well-behaved production client has, and no
more:

- a connection that was *refused* never carried the request: always retried
  (until the request's deadline);
- a failure on a connection before any byte of the answer came back (the
  server closed an idle keep-alive connection, or a worker died) is retried
  only when repeating is safe: GET/PATCH/DELETE, or a POST carrying an
  `Idempotency-Key` (the key makes the repeat exactly-once);
- `409` for a key still in flight (`urn:chirp:problem:idempotency-key-in-use`)
  and `503` with `Retry-After` are retried only when the caller asks for it.

Every attempt is counted, so the summary shows what retrying cost.

`run_load` drives an open-loop schedule: request i starts at t0 + i/rate,
whatever happened to the previous ones, on a bounded thread pool; it stops
at `duration` seconds and never sends more than rate*duration requests.
"""
from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlsplit

import orjson

IN_USE = "urn:chirp:problem:idempotency-key-in-use"
SAFE_METHODS = {"GET", "HEAD", "PATCH", "PUT", "DELETE"}


@dataclass
class Result:
    method: str
    path: str
    status: int | None = None  # None: no HTTP answer at all
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    error: str | None = None
    attempts: int = 0
    started: float = 0.0
    latency: float = 0.0  # from the scheduled start to the final answer
    tag: str = ""
    key: str | None = None
    retried: list = field(default_factory=list)  # why each earlier attempt was repeated

    def json(self):
        return orjson.loads(self.body)

    @property
    def problem_type(self) -> str | None:
        if self.headers.get("content-type", "").startswith("application/problem+json"):
            try:
                return self.json().get("type")
            except orjson.JSONDecodeError:
                return None
        return None


class Client:
    """Thread-safe: each thread has its own keep-alive connection per host."""

    def __init__(self, base_url: str, timeout: float = 10.0):
        parts = urlsplit(base_url)
        assert parts.hostname in ("127.0.0.1", "localhost"), "loopback only"
        self.host, self.port = parts.hostname, parts.port
        self.timeout = timeout
        self._local = threading.local()

    def _conn(self) -> tuple[http.client.HTTPConnection, bool]:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, True
        conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._local.conn = conn
        return conn, False

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self._drop()

    def request(self, method: str, path: str, json=None, body: bytes | None = None,
                headers: dict | None = None, deadline: float = 10.0, retry_busy: bool = False,
                tag: str = "", scheduled: float | None = None) -> Result:
        headers = dict(headers or {})
        if json is not None:
            body = orjson.dumps(json)
            headers.setdefault("Content-Type", "application/json")
        key = headers.get("Idempotency-Key")
        repeatable = method in SAFE_METHODS or key is not None
        start = scheduled if scheduled is not None else time.monotonic()
        result = Result(method, path, tag=tag, key=key, started=start)
        give_up = time.monotonic() + deadline
        backoff = 0.02
        while True:
            result.attempts += 1
            retry, result.error = False, None
            try:
                conn, reused = self._conn()
            except ConnectionRefusedError:
                retry, result.error = True, "connection refused"
            except OSError as error:
                result.error = f"connect: {error.__class__.__name__}"
            else:
                try:
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        http.client.BadStatusLine, ConnectionAbortedError) as error:
                    self._drop()
                    result.error = f"{'reused' if reused else 'fresh'} connection: {error.__class__.__name__}"
                    retry = repeatable
                except (TimeoutError, socket.timeout, OSError) as error:
                    self._drop()
                    result.error = f"timeout/oserror: {error.__class__.__name__}"
                    retry = False
                else:
                    result.status, result.body = response.status, data
                    result.headers = {k.lower(): v for k, v in response.getheaders()}
                    if response.will_close:
                        self._drop()
                    if retry_busy and (
                        (response.status == 409 and result.problem_type == IN_USE)
                        or (response.status == 503 and "retry-after" in result.headers)):
                        retry = True
                    else:
                        break
            if not retry or time.monotonic() + backoff > give_up:
                break
            result.retried.append(result.error or result.status)
            time.sleep(backoff)
            backoff = min(backoff * 2, 0.25)
        result.latency = time.monotonic() - start
        return result

    # shorthands
    def get(self, path: str, **kw) -> Result:
        return self.request("GET", path, **kw)

    def post(self, path: str, json=None, **kw) -> Result:
        return self.request("POST", path, json=json, **kw)


@dataclass
class LoadReport:
    results: list[Result]
    duration: float
    scheduled: int

    @property
    def count(self) -> int:
        return len(self.results)

    def failures(self, ok: Callable[[Result], bool]) -> list[Result]:
        return [r for r in self.results if not ok(r)]

    def retried(self) -> int:
        return sum(r.attempts - 1 for r in self.results)

    def p(self, q: float) -> float:
        latencies = sorted(r.latency for r in self.results)
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))]


def run_load(op: Callable[[random.Random, float], Result], rate: float, duration: float,
             threads: int = 16, seed: int = 1, stop: threading.Event | None = None) -> LoadReport:
    """Call op(rng, scheduled_time) at `rate` per second for `duration` seconds."""
    total = int(rate * duration)
    results: list[Result] = []
    lock = threading.Lock()
    counter = iter(range(total))
    t0 = time.monotonic() + 0.05
    hard_stop = t0 + duration + 30  # an op never runs past this

    def worker(n: int):
        rng = random.Random(seed * 1000 + n)
        while True:
            with lock:
                i = next(counter, None)
            if i is None or (stop is not None and stop.is_set()):
                return
            when = t0 + i / rate
            delay = when - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if time.monotonic() > hard_stop:
                return
            result = op(rng, when)
            with lock:
                results.append(result)

    pool = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=max(0.0, hard_stop + 5 - time.monotonic()))
    return LoadReport(results, time.monotonic() - t0, total)


class Background:
    """run_load in a background thread: `with Background(...) as bg: ...; bg.report`."""

    def __init__(self, op, rate: float, duration: float, threads: int = 16, seed: int = 1):
        self.args = (op, rate, duration, threads, seed)
        self.stop = threading.Event()
        self.report: LoadReport | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        op, rate, duration, threads, seed = self.args
        self.report = run_load(op, rate, duration, threads, seed, self.stop)

    def __enter__(self):
        self._thread.start()
        return self

    def wait(self) -> LoadReport:
        self._thread.join(timeout=self.args[2] + 60)
        assert self.report is not None, "load generator did not finish"
        return self.report

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.stop.set()
        self.wait()
