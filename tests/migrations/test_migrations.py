"""Migrations in any start order and at any scale, on real PostgreSQL: what the
pods' migrate init containers and a service started early rely on."""
from __future__ import annotations

import subprocess
import sys
import threading
import time

import requests
from sqlalchemy import create_engine, text

from support.servers import REPO, ServiceProcess, _service_env

def _upgrade(service: str, url: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", service, "upgrade", *args],
                            env=_service_env({"DATABASE_URL": url}), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(procs: list[subprocess.Popen]) -> list[str]:
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"exit {proc.returncode}:\n{out}{err}"
        outs.append(out)
    return outs


def _versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))]
    finally:
        engine.dispose()


# `python -m user_service upgrade`, held at the start line until GO exists, so
# that N of them really migrate at the same moment (not staggered by their
# interpreters' start-up).
_AT_THE_START_LINE = """
import os, sys, time
from pathlib import Path
from common.cli import main
from user_service import MIGRATIONS
Path(os.environ["READY"]).touch()
while not Path(os.environ["GO"]).exists():
    time.sleep(0.002)
sys.exit(main("user_service", MIGRATIONS, ["upgrade"]))
"""


def test_concurrent_upgrades_migrate_once_and_all_succeed(postgres, tmp_path):
    url = postgres.create_database("mig_concurrent")
    go = tmp_path / "go"
    procs = []
    for i in range(4):  # as 4 pods starting together
        env = _service_env({"DATABASE_URL": url, "READY": str(tmp_path / f"ready-{i}"), "GO": str(go)})
        procs.append(subprocess.Popen([sys.executable, "-c", _AT_THE_START_LINE], env=env, cwd=REPO,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < len(procs):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    outs = _finish(procs)
    migrated = [o for o in outs if "migrated from revision none" in o]
    assert len(migrated) == 1, outs
    assert sum("already at revision" in o for o in outs) == 3, outs
    assert len(_versions(url)) == 1
    # And again later: nothing to do, still exit 0.
    (out,) = _finish([_upgrade("user_service", url)])
    assert "already at revision" in out


def test_upgrade_waits_for_a_database_that_is_not_there_yet(postgres):
    url = postgres.create_database("mig_late")
    postgres.drop_database("mig_late")  # as a pod started before its database
    proc = _upgrade("user_service", url, "--wait", "60")
    time.sleep(2)
    assert proc.poll() is None, proc.communicate()
    postgres.create_database("mig_late")
    (out,) = _finish([proc])
    assert "migrated from revision none" in out
    assert len(_versions(url)) == 1


def test_upgrade_without_wait_fails_fast_on_a_missing_database(postgres):
    url = postgres.create_database("mig_missing")
    postgres.drop_database("mig_missing")
    proc = _upgrade("user_service", url)
    proc.communicate(timeout=60)
    assert proc.returncode != 0


def test_service_started_before_its_schema_serves_once_it_arrives(postgres):
    """Started on an empty database (its migration has not run yet), the
    service stays up: 503 and unready, never a 500; ready once migrated."""
    url = postgres.create_database("mig_early")
    statuses: list[int] = []
    stop = threading.Event()
    with ServiceProcess("user_service", env={"DATABASE_URL": url, "REDIS_URL": ""},
                        workers=1, threads=2) as svc:
        assert requests.get(svc.url + "/healthz", timeout=5).status_code == 200
        ready = requests.get(svc.url + "/readyz", timeout=5)
        assert ready.status_code == 503
        assert ready.headers["Content-Type"].startswith("application/problem+json")
        assert "schema" in ready.json()["detail"]

        def hammer():  # requests all along, while the migration runs
            while not stop.is_set():
                statuses.append(requests.get(svc.url + "/users?limit=1", timeout=5).status_code)

        thread = threading.Thread(target=hammer)
        thread.start()
        try:
            time.sleep(0.3)
            _finish([_upgrade("user_service", url)])
            deadline = time.monotonic() + 15
            while requests.get(svc.url + "/readyz", timeout=5).status_code != 200:
                assert time.monotonic() < deadline, svc.log_text()
                time.sleep(0.2)
            while not statuses or statuses[-1] != 200:
                assert time.monotonic() < deadline, svc.log_text()
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join()
        created = requests.post(svc.url + "/users", json={"name": "Early", "handle": "early_bird"},
                                timeout=5)
        assert created.status_code == 201, created.text
    assert set(statuses) <= {200, 503}, statuses
    assert statuses[0] == 503 and statuses[-1] == 200
