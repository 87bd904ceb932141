"""Assertions and small utilities the fault scenarios share."""
from __future__ import annotations

import time

from support.servers import ServiceProcess

from faults.load import Result

# Rows of the summary table, one per scenario (printed by conftest.py).
SUMMARY: list[dict] = []


def is_problem(r: Result) -> bool:
    if not r.headers.get("content-type", "").startswith("application/problem+json"):
        return False
    try:
        body = r.json()
    except Exception:
        return False
    return isinstance(body, dict) and body.get("status") == r.status and "type" in body


def is_503(r: Result) -> bool:
    """A dependency outage, answered the documented way."""
    return r.status == 503 and is_problem(r) and r.headers.get("retry-after", "").isdigit()


def wait_until(check, timeout: float, interval: float = 0.05, what: str = "condition"):
    """Poll check() until truthy; returns (value, seconds waited)."""
    start = time.monotonic()
    while True:
        value = check()
        if value:
            return value, time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def describe(results: list[Result], limit: int = 5) -> str:
    return "; ".join(f"{r.method} {r.path} -> {r.status} {r.error or ''} {r.body[:120]!r}"
                     for r in results[:limit])


def service_env(**extra) -> dict:
    # No access log: at a few hundred requests a second it would only cost CPU.
    # SO_REUSEPORT: a replacement process can bind the port while the old one
    # drains (the SIGTERM handover scenario); it changes nothing otherwise.
    # Events for consumers a scenario does not start wait in the outboxes,
    # retried against a port nothing serves (never a developer's own :5002/:5003).
    return {"LOG_LEVEL": "warning", "GUNICORN_ACCESS_LOG": "", "GUNICORN_CMD_ARGS": "--reuse-port",
            "TWEET_SERVICE_URL": "http://127.0.0.1:9", "FEED_SERVICE_URL": "http://127.0.0.1:9",
            **extra}


def start_service(service: str, env: dict, port: int | None = None, workers: int = 2,
                  threads: int | None = None) -> ServiceProcess:  # None: the service's default
    return ServiceProcess(service, env=service_env(**env), port=port, workers=workers,
                          threads=threads).start(timeout=30)


