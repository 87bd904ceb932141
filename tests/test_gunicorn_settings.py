"""One set of gunicorn settings: the services' code defaults are what the
Helm charts deploy and what `make run` serves, and the access log they
ship with writes one JSON line per request. Offline: no server, no cluster."""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SERVICES = {"user-service": "user_service", "tweet-service": "tweet_service",
            "feed-service": "feed_service"}
# Environment variables the gunicorn confs read: set by the chart or not at all.
SERVER_ENV = re.compile(r"^(HOST|PORT|WEB_CONCURRENCY|GUNICORN_\w+|LOG_LEVEL)$")
# A ConfigMap data line: `NAME: "literal"` or `NAME: {{ .Values.some.key | quote }}`.
CONFIGMAP_LINE = re.compile(
    r'^\s*([A-Z][A-Z0-9_]*):\s*(?:"([^"]*)"|\{\{-?\s*\.Values\.([\w.]+)\s*\|\s*quote\s*-?\}\})\s*$', re.M)

LOADER = """
import json, sys
from gunicorn.app.wsgiapp import WSGIApplication
sys.argv = ["gunicorn", "-c", sys.argv[1]]
cfg = WSGIApplication().cfg
def show(value):  # a hook or class by its name: its repr carries an address
    name = getattr(value, "__qualname__", None)
    return f"{value.__module__}.{name}" if name and callable(value) else repr(value)
print(json.dumps({name: show(setting.get()) for name, setting in sorted(cfg.settings.items())}))
"""


def gunicorn_settings(conf: Path, env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """Every setting gunicorn runs with under this conf and environment, read
    through gunicorn's own loader (a fresh interpreter per call)."""
    clean = {k: v for k, v in os.environ.items() if not SERVER_ENV.match(k)}
    clean.update(env, PYTHONPATH=str(REPO / "services"), PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", LOADER, str(conf)], env=clean, cwd=REPO,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    return json.loads(out.splitlines()[-1])


def chart_env(chart: str) -> dict[str, str]:
    """The server settings the chart's ConfigMap sets, with its default values."""
    values = yaml.safe_load((REPO / "charts" / chart / "values.yaml").read_text())
    templates = [*(REPO / "charts" / chart / "templates").glob("*.yaml"),
                 *(REPO / "charts" / "chirp-common" / "templates").glob("*.tpl")]
    env = {}
    for template in templates:
        for name, literal, key in CONFIGMAP_LINE.findall(template.read_text()):
            if not SERVER_ENV.match(name):
                continue
            if key:
                value = values
                for part in key.split("."):
                    value = value[part]
                literal = str(value)
            env[name] = literal
    for name, value in (values.get("config", {}).get("extraEnv") or {}).items():
        if SERVER_ENV.match(name):
            env[name] = str(value)
    return env


@pytest.mark.parametrize("chart", SERVICES)
def test_chart_values_are_the_code_defaults(chart, tmp_path):
    env = chart_env(chart)
    # The parse found the settings the ConfigMap is known to carry.
    assert {"WEB_CONCURRENCY", "GUNICORN_THREADS", "PORT"} <= set(env), env
    conf = REPO / "services" / SERVICES[chart] / "gunicorn.conf.py"
    defaults = gunicorn_settings(conf, {}, tmp_path)
    deployed = gunicorn_settings(conf, env, tmp_path)
    diverging = {name: (defaults[name], deployed[name]) for name in defaults
                 if defaults[name] != deployed[name]}
    assert not diverging, f"{chart}: code default vs chart value: {diverging}"


def test_make_run_sets_no_server_settings():
    """`make run` passes the ports and URLs only: gunicorn runs the defaults."""
    env = {k: v for k, v in os.environ.items() if not SERVER_ENV.match(k)}
    env.update(USER_DATABASE_URL="postgresql://x/u", TWEET_DATABASE_URL="postgresql://x/t",
               FEED_DATABASE_URL="postgresql://x/f")
    recipe = subprocess.run(["make", "-n", "--no-print-directory", "run"], cwd=REPO, env=env,
                            capture_output=True, text=True, check=True, timeout=60).stdout
    assert "gunicorn -c services/user_service/gunicorn.conf.py" in recipe
    assert "gunicorn -c services/tweet_service/gunicorn.conf.py" in recipe
    assert "gunicorn -c services/feed_service/gunicorn.conf.py" in recipe
    assert not re.search(r"\b(WEB_CONCURRENCY|GUNICORN_\w+|LOG_LEVEL)=|--(workers|threads|worker-connections)\b",
                         recipe), recipe


def test_access_log_writes_one_json_line_per_request_and_follows_a_reopen(tmp_path, monkeypatch):
    # Importing the settings sets PROMETHEUS_MULTIPROC_DIR unless it is set:
    # set here, it does not outlive this test (in-process apps would count
    # their metrics into files).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    from gunicorn.config import Config

    from common.gunicorn_settings import JsonAccessLogger
    from support.servers import _wait_for

    path = tmp_path / "access.log"
    cfg = Config()
    cfg.set("accesslog", str(path))
    logger = JsonAccessLogger(cfg)

    class Response:
        status = "201 CREATED"
        headers = [("Content-Type", "application/json"), ("X-Request-ID", "req-1")]
        sent = 57

    def lines(file: Path) -> list[dict]:
        return [json.loads(line) for line in file.read_text().splitlines()] if file.exists() else []

    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/tweets", "QUERY_STRING": "a=\"b\"",
               "REMOTE_ADDR": "10.0.0.7", "HTTP_USER_AGENT": "curl/8"}
    logger.access(Response, None, environ, datetime.timedelta(milliseconds=12.5))
    # Written by the logger's own thread, without a flush from the caller.
    (first,) = _wait_for(lambda: lines(path), 5, "the access line")
    assert first == {"time": first["time"], "request_id": "req-1", "method": "POST", "path": "/tweets",
                     "query": 'a="b"', "status": 201, "bytes": 57, "duration_ms": 12.5,
                     "remote": "10.0.0.7", "user_agent": "curl/8"}
    datetime.datetime.strptime(first["time"], "%d/%b/%Y:%H:%M:%S %z")
    # logrotate's move-and-reopen (SIGUSR1): later lines go to the new file, in order.
    path.rename(tmp_path / "access.log.1")
    logger.reopen_files()
    for n in range(3):
        logger.access(Response, None, {**environ, "PATH_INFO": f"/tweets/{n}"}, datetime.timedelta(0))
    logger.flush()  # what the worker does at exit
    assert [line["path"] for line in lines(path)] == ["/tweets/0", "/tweets/1", "/tweets/2"]
    assert len(lines(tmp_path / "access.log.1")) == 1


def _listening_pids(port: int) -> set[int]:
    """PIDs holding a socket that listens on this TCP port (from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    pids = set()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            continue
        if links & inodes:
            pids.add(int(pid))
    return pids


@contextlib.contextmanager
def probe_server(app_source: str):
    """A real gunicorn with the services' shared settings, serving the WSGI
    `app` defined by app_source; stopped and removed on exit."""
    from support.servers import ServiceProcess

    # Not pytest's tmp_path: a reload reads the conf again, and concurrent
    # pytest sessions prune each other's old tmp_path directories.
    directory = Path(tempfile.mkdtemp(prefix="chirp-probe-"))
    (directory / "probe_app.py").write_text(app_source)
    conf = directory / "gunicorn.conf.py"
    conf.write_text(f"import sys\nsys.path.insert(0, {str(directory)!r})\n"
                    "from common.gunicorn_settings import *  # noqa\n"
                    "from common.gunicorn_settings import server_settings\n"
                    "from common.settings import ServerSettings\n"
                    "globals().update(server_settings(ServerSettings()))\n"
                    "wsgi_app = 'probe_app:app'\naccesslog = None\n")
    svc = ServiceProcess("probe", config=conf).start()
    try:
        yield svc
    finally:
        svc.close()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreads connections on Linux only")
def test_each_worker_listens_and_a_stopping_one_leaves_the_port_at_once():
    """A socket per worker (reuse_port), none in the master. On a reload
    (SIGHUP) the old workers stop listening at once, while they finish the
    requests they hold: the kernel hands new connections to the new workers
    only, and every request, old or new, is answered."""
    import http.client
    import signal
    import threading
    import time

    from support.servers import _wait_for

    with probe_server(
            "import time\n"
            "def app(environ, start_response):\n"
            "    if environ['PATH_INFO'] == '/slow':\n"
            "        time.sleep(4)\n"
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
            "    return [b'ok']\n") as svc:
        def get(path: str) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=10)
            try:
                conn.request("GET", path)
                return conn.getresponse().status
            finally:
                conn.close()

        old = set(svc.worker_pids())
        assert _listening_pids(svc.port) == old
        # Slow requests on 8 connections (spread over both workers) keep the
        # old workers in their graceful stop for seconds after the SIGHUP.
        slow = []
        threads = [threading.Thread(target=lambda: slow.append(get("/slow"))) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        svc.signal(signal.SIGHUP)
        _wait_for(lambda: len(set(svc.worker_pids()) - old) == 2, 20, "two new workers")
        _wait_for(lambda: not _listening_pids(svc.port) & old, 1.5, "the old workers to stop listening")
        assert old <= set(svc.worker_pids()), "the old workers had exited already: nothing was checked"
        assert _listening_pids(svc.port) == set(svc.worker_pids()) - old
        assert [get("/") for _ in range(20)] == [200] * 20
        for thread in threads:
            thread.join()
        assert slow == [200] * 8


def test_workers_start_with_what_the_master_loaded_frozen():
    """The objects loaded before the fork are out of the workers' garbage
    collections (gc.freeze in pre_fork): a full collection walks only what
    the worker made since."""
    import urllib.request

    with probe_server(
            "import gc\n"
            "def app(environ, start_response):\n"
            "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
            "    return [b'%d %d' % (gc.get_freeze_count(), len(gc.get_objects()))]\n") as svc:
        with urllib.request.urlopen(f"http://127.0.0.1:{svc.port}/", timeout=10) as response:
            frozen, tracked = map(int, response.read().split())
    # gunicorn, the settings and their libraries: tens of thousands of objects.
    assert frozen > 10_000, frozen
    assert tracked < frozen, (tracked, frozen)
