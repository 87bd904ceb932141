"""Gunicorn settings shared by both services; every one can be overridden
from the environment. Each service's gunicorn.conf.py imports these and names
its app and default port."""
from __future__ import annotations

import json
import os
import tempfile
import time

from gunicorn.glogging import Logger


def _env(name: str, default):
    return type(default)(os.environ.get(name, default))


def bind_address(default_port: int) -> str:
    return f"{os.environ.get('HOST', '0.0.0.0')}:{_env('PORT', default_port)}"


# gthread: keep-alive connections (from the Ingress, from the tweet service's
# pooled client) and threads that wait on the database or another service.
worker_class = "gthread"
workers = _env("WEB_CONCURRENCY", max(2, 2 * (os.cpu_count() or 1)))
threads = _env("GUNICORN_THREADS", 4)
# Connections one worker holds at most (active + keep-alive). Workers accept
# from one shared socket, so a burst of new connections can all land on one
# worker while the others idle; a cap makes the rest go elsewhere.
worker_connections = _env("GUNICORN_WORKER_CONNECTIONS", 1000)
timeout = _env("GUNICORN_TIMEOUT", 30)
# Kubernetes waits preStop (5 s) + this before SIGKILL; see the Helm chart.
graceful_timeout = _env("GUNICORN_GRACEFUL_TIMEOUT", 20)
keepalive = _env("GUNICORN_KEEPALIVE", 5)
backlog = _env("GUNICORN_BACKLOG", 2048)
# Heartbeat files on tmpfs: a read-only root filesystem has no /tmp disk I/O to stall on.
# Load the app once in the master, then fork: workers start at once, so a
# SIGHUP (reload) never leaves a moment without a worker accepting requests.
# Connections the master opened are not shared: see common.db.
preload_app = True
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
errorlog = "-"


class JsonAccessLogger(Logger):
    """One JSON object per request, naming its X-Request-ID.

    Reads the few fields it logs straight from the response and environ
    instead of gunicorn's atoms(), which builds a dict of every header and
    environ entry per request: 20 -> 7 us per request (bench/README.md)."""

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        request_id = None
        for name, value in resp.headers:
            if name.lower() == "x-request-id":
                request_id = value
                break
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        self.access_log.info(json.dumps({
            "time": time.strftime("%d/%b/%Y:%H:%M:%S %z"),
            "request_id": request_id,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", "-"),
        }))


logger_class = JsonAccessLogger


# prometheus_client's multiprocess mode: each worker writes its samples under
# this directory and /metrics sums them. Set before the app (and so
# prometheus_client) is loaded, which preload_app does before on_starting.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="chirp-metrics-"))


def on_starting(server):
    # Start from an empty directory: samples of a previous run would be summed in.
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    for name in os.listdir(path) if os.path.isdir(path) else []:
        os.remove(os.path.join(path, name))
    os.makedirs(path, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
