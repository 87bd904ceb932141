"""Prometheus metrics, summed across gunicorn workers.

With PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it) each worker
writes its samples to files there and /metrics reads them all; without it
(`make dev`, tests) the process's own registry is served.
"""
from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter,
                               Histogram, generate_latest, multiprocess)

REQUESTS = Counter("http_requests_total", "HTTP requests served.",
                   ["method", "route", "status"])
LATENCY = Histogram("http_request_duration_seconds", "Time to serve an HTTP request.",
                    ["method", "route", "status"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def _start_timer() -> None:
    g.request_started = time.perf_counter()


# (method, route, status) -> its request counter and latency histogram. The
# set is as small as the routes times the statuses, and labels() costs a
# validation and a lock per call.
_series: dict[tuple[str, str, str], tuple] = {}


def _observe(response):
    route = request.url_rule.rule if request.url_rule else "<unmatched>"
    labels = (request.method, route, str(response.status_code))
    series = _series.get(labels)
    if series is None:
        series = _series[labels] = (REQUESTS.labels(*labels), LATENCY.labels(*labels))
    series[0].inc()
    started = g.get("request_started")
    if started is not None:
        series[1].observe(time.perf_counter() - started)
    return response


def metrics_view() -> Response:
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.before_request(_start_timer)
    app.after_request(_observe)
