"""The test infrastructure itself: the servers every suite relies on really work."""

import os
import signal
import textwrap
import time
import urllib.request

import pytest

from support import servers


def test_postgres_create_database_and_query(postgres):
    url = postgres.create_database("support_check")
    assert url.startswith("postgresql+psycopg2://") and url.endswith("/support_check")
    with postgres.connect("support_check") as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (v text)")
        cur.execute("INSERT INTO t VALUES ('héllo') RETURNING v")
        assert cur.fetchone() == ("héllo",)
    # Creating it again gives an empty database.
    postgres.create_database("support_check")
    with postgres.connect("support_check") as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
        assert cur.fetchone() == (0,)


def test_postgres_survives_kill_and_restart(postgres):
    if not postgres.managed:
        pytest.skip("external PostgreSQL cannot be killed")
    postgres.create_database("support_crash")
    conn = postgres.connect("support_crash")
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (42)")
    pid = postgres.postmaster_pid()

    postgres.kill()
    assert postgres.postmaster_pid() is None
    with pytest.raises(Exception):  # the open connection is dead
        with conn.cursor() as cur:
            cur.execute("SELECT 1")

    postgres.restart()
    assert postgres.postmaster_pid() not in (None, pid)
    with postgres.connect("support_crash") as conn2, conn2.cursor() as cur:
        cur.execute("SELECT v FROM t")  # committed data survived the crash
        assert cur.fetchall() == [(42,)]


def test_redis_set_get(redis_server):
    with redis_server.client() as r:
        r.set("k", "v")
        assert r.get("k") == b"v"


def test_redis_pause_freezes_clients(redis_server):
    redis_server.pause(300)
    with redis_server.client() as r:
        start = time.monotonic()
        r.get("k")
        assert time.monotonic() - start > 0.2


def test_missing_postgres_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(servers, "PG_LIB_GLOB", str(tmp_path / "none" / "*"))
    with pytest.raises(servers.ServerUnavailable, match="apt-get install postgresql.*TEST_DATABASE_URL"):
        servers.PostgresServer()


# ServiceProcess is checked against a stand-in WSGI app, so this file does not
# depend on the real services.
APP = """
import os
if os.environ.get("BROKEN"):
    raise RuntimeError("boom")  # fails at import, so no worker can boot
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]
"""
CONF = """
import os
bind = f"{os.environ['HOST']}:{os.environ['PORT']}"
workers = int(os.environ["WEB_CONCURRENCY"])
pythonpath = os.path.dirname(__file__)
wsgi_app = "app:app"
"""


@pytest.fixture
def stand_in_conf(tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "gunicorn.conf.py").write_text(textwrap.dedent(CONF))
    return tmp_path / "gunicorn.conf.py"


def test_service_process_lifecycle(stand_in_conf):
    with servers.ServiceProcess("stand_in", config=stand_in_conf, workers=2) as svc:
        with urllib.request.urlopen(f"{svc.url}/healthz") as resp:
            assert resp.read() == b"/healthz"
        workers = svc.worker_pids()
        assert len(workers) == 2 and svc.pid not in workers
        assert "Booting worker" in svc.log_text()

        # gunicorn replaces a killed worker.
        os.kill(workers[0], signal.SIGKILL)
        servers._wait_for(lambda: len(svc.worker_pids()) == 2 and workers[0] not in svc.worker_pids(),
                          10, "a replacement worker")
        assert svc.stop() == 0


def test_service_process_kill_takes_workers_down(stand_in_conf):
    svc = servers.ServiceProcess("stand_in", config=stand_in_conf).start()
    workers = svc.worker_pids()
    svc.kill()
    servers._wait_for(lambda: not any(servers._alive(p) for p in workers), 5, "workers to die")
    svc.close()


def test_service_process_startup_failure_shows_log(stand_in_conf):
    svc = servers.ServiceProcess("stand_in", config=stand_in_conf, env={"BROKEN": "1"})
    with pytest.raises(RuntimeError, match="(?s)exited.*boom"):
        svc.start(timeout=10)
    svc.close()
