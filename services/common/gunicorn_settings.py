"""Gunicorn settings shared by both services. Each service's gunicorn.conf.py
imports these (the worker class, the access log, the hooks), applies
`server_settings` of its settings object (workers, threads, port, ...: the
environment's, read once) and names its app."""
from __future__ import annotations

import atexit
import collections
import gc
import logging
import os
import tempfile
import threading
import time

import orjson
from gunicorn.glogging import Logger
from gunicorn.workers import gthread

from common.settings import ServerSettings


def server_settings(settings: ServerSettings) -> dict:
    """gunicorn's settings from the service's settings object, the one its
    app reads too; a service's gunicorn.conf.py applies them."""
    return {
        "bind": f"{settings.host}:{settings.port}",
        # Two workers by default, fixed rather than derived from
        # os.cpu_count(): in a pod that counts the node's CPUs, not the pod's
        # limit, and `make run` runs what the chart runs. The charts' values
        # equal these defaults (tests/test_gunicorn_settings.py).
        "workers": settings.web_concurrency,
        "threads": settings.gunicorn_threads,
        # A listening socket per worker (SO_REUSEPORT), not one shared by all:
        # the kernel then spreads new connections over the workers by their
        # addresses. On a shared socket whichever worker wakes first accepts,
        # and a proxy's keep-alive pool, opened in one burst, can sit on one
        # worker while the other idles, for as long as the connections live.
        # Linux only: elsewhere SO_REUSEPORT does not spread connections. It
        # also lets a second server bind a port that is in use instead of
        # failing; `ss -ltnp` shows who holds it.
        "reuse_port": settings.gunicorn_reuse_port,
        "worker_connections": settings.gunicorn_worker_connections,
        "timeout": settings.gunicorn_timeout,
        # Kubernetes waits preStop (5 s) + this before SIGKILL; see the Helm chart.
        "graceful_timeout": settings.gunicorn_graceful_timeout,
        # Longer than the proxy's idle timeout for its upstream connections
        # (Traefik 90 s, ingress-nginx 60 s): the proxy, not gunicorn, closes
        # an idle connection, so a request the proxy sends just as gunicorn
        # closes it cannot come back as a 502 (gunicorn's docs: higher behind
        # a load balancer).
        "keepalive": settings.gunicorn_keepalive,
        "backlog": settings.gunicorn_backlog,
        "loglevel": settings.log_level.lower(),
        "accesslog": settings.gunicorn_access_log or None,
    }


# gthread: keep-alive connections (from the Ingress, from the tweet service's
# pooled client) and threads that wait on the database or another service.
worker_class = "common.gunicorn_settings.ThreadWorker"
# Load the app once in the master, then fork: workers start at once, so a
# SIGHUP (reload) never leaves a moment without a worker accepting requests.
# Connections the master opened are not shared: see common.db.
preload_app = True
# Heartbeat files on tmpfs: a read-only root filesystem has no /tmp disk I/O to stall on.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
errorlog = "-"


class JsonAccessLogger(Logger):
    """One JSON object per request, naming its X-Request-ID.

    Cheap enough to leave on: it reads the few fields it logs straight from
    the response and environ (gunicorn's atoms() builds a dict of every
    header and environ entry), formats the timestamp once a second, and
    leaves the writing to a thread of its own. A request's thread only
    appends its line; the writer writes a line at once when the log has
    been quiet, and under load what gathered, at most every FLUSH_SECONDS,
    in one write. A write per request would release and retake the GIL on
    every request, and each of a worker's threads would wait its turn for
    it. The cost: the last lines (FLUSH_SECONDS at most) are lost if the
    worker is killed with SIGKILL; a worker that exits writes them. Other
    handlers (syslog, a logging config) get each line through `logging`,
    as gunicorn's own logger does."""

    FLUSH_SECONDS = 0.1
    _second = None
    _stamp = ""
    _writer_pid = None

    def _now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(second))
            self._second = second
        return self._stamp

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
        line = orjson.dumps({
            "time": self._now(),
            "request_id": request_id,
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "query": environ.get("QUERY_STRING"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote": environ.get("REMOTE_ADDR", "-"),
            "user_agent": environ.get("HTTP_USER_AGENT", "-"),
        }).decode()
        if self._stream_handler() is None:
            self.access_log.info(line)
            return
        if self._writer_pid != os.getpid():  # first line in this (forked) process
            self._start_writer()
        self._lines.append(line)
        if not self._wake.is_set():
            self._wake.set()

    def _stream_handler(self):
        handlers = self.access_log.handlers
        if len(handlers) == 1 and type(handlers[0]) in (logging.StreamHandler, logging.FileHandler):
            return handlers[0]
        return None

    def _start_writer(self):
        self._writer_pid = os.getpid()
        self._lines = collections.deque()  # append and popleft need no lock
        self._wake = threading.Event()
        threading.Thread(target=self._write_forever, name="access-log", daemon=True).start()
        atexit.register(self.flush)

    def _write_forever(self):
        last = 0.0
        while True:
            self._wake.wait()
            pause = last + self.FLUSH_SECONDS - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            self._wake.clear()
            self.flush()
            last = time.monotonic()

    def flush(self):
        """Write the lines gathered so far (the writer thread, and at exit)."""
        handler = self._stream_handler()
        if handler is None or not self._lines:
            return
        with handler.lock:  # the lock reopen_files() takes to swap a file's stream
            lines = [self._lines.popleft() for _ in range(len(self._lines))]
            handler.stream.write("\n".join(lines) + "\n")
            handler.stream.flush()


logger_class = JsonAccessLogger


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's gthread worker, which leaves the port as soon as it stops.

    With a socket of its own (reuse_port), a stopping worker that kept its
    socket open while it finishes its requests would still be handed new
    connections by the kernel, and nobody would accept them: they would
    hang, then be reset when the socket closes. So it serves what is
    already queued and closes the socket at once; new connections go to
    the other workers (or, on a handover, to the new server). What a
    socket of its own cannot do: hand its queue to the others when a
    worker dies (SIGKILL, timeout); connections queued there are reset."""

    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled)
        if enabled or self.alive or not self.cfg.reuse_port:
            return
        for listener in self.sockets:
            while True:
                try:
                    client, address = listener.accept()
                except OSError:  # nothing left in its queue (EAGAIN), or gone
                    break
                self.nr_conns += 1
                client.setblocking(True)
                self.enqueue_req(gthread.TConn(self.cfg, client, address, listener.getsockname()))
            listener.close()


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


def pre_fork(server, worker):
    # What the master loaded (the app, its libraries: most of a worker's
    # objects) lives as long as the worker. Frozen, a worker's full garbage
    # collection skips it instead of walking it all while every request
    # thread waits on the GIL, and the pages stay shared with the master
    # (the gc.freeze() documentation describes both).
    gc.freeze()


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
