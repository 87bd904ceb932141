"""The container images, proven: built with `make images` on a base made
here (no registry), inspected, migrated and run with the Helm chart's
security settings against real PostgreSQL and Redis, exercised over HTTP,
and stopped with SIGTERM in the middle of a burst of requests.

Run with `make test-images` (root: it may install Debian packages and start
dockerd). Under a plain `pytest` run these tests are skipped.
"""
from __future__ import annotations

import http.client
import json
import os
import threading
import time

import pytest

if os.environ.get("CHIRP_IMAGE_TESTS") != "1":
    pytest.skip("image harness: run `make test-images`", allow_module_level=True)

import infra  # noqa: E402
from harness import (IMAGE_TAG, REPORT, SERVICES, Service, docker, inspect,  # noqa: E402
                     run_container)
from httpc import request  # noqa: E402

PORTS = {"user_service": 5001, "tweet_service": 5002, "feed_service": 5003}
DATABASES = {"user_service": "user_db", "tweet_service": "tweet_db", "feed_service": "feed_db"}
PROBLEM = "application/problem+json"


# ------------------------------------------------------------ what the images are
@pytest.mark.parametrize("service", SERVICES)
def test_image_metadata(images, service):
    cfg = inspect(images[service])["Config"]
    assert cfg["User"] == "10001:10001"
    # gunicorn is PID 1, with no shell and no entrypoint in front of it, so
    # `docker run IMAGE <other command>` runs that command instead.
    assert not cfg.get("Entrypoint")
    assert cfg["Cmd"][:3] == ["gunicorn", "--config", "/app/gunicorn.conf.py"]
    # Exec-form health check ("CMD", not "CMD-SHELL"): no shell, no curl.
    assert cfg["Healthcheck"]["Test"][0] == "CMD"
    assert cfg["Healthcheck"]["Test"][1:] == ["/opt/venv/bin/python", "/app/healthcheck.py"]
    env = dict(e.split("=", 1) for e in cfg["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PORT"] == str(PORTS[service])
    assert f"{PORTS[service]}/tcp" in cfg["ExposedPorts"]
    labels = cfg["Labels"]
    for key in ("source", "version", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.version"] == IMAGE_TAG


PROBE = r"""
import importlib.util, json, os, sys
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "app": sorted(os.listdir("/app")),
    "pip": importlib.util.find_spec("pip") is not None,
    "writable": [p for p in ("/", "/app", "/opt/venv", "/opt/venv/lib", "/etc")
                 if os.access(p, os.W_OK)],
    "tmp_writable": os.access("/tmp", os.W_OK),
    "shm_writable": os.access("/dev/shm", os.W_OK),
    "python": sys.executable, "version": sys.version.split()[0],
    "imports": [m for m in ("gunicorn", "flask", "sqlalchemy", "psycopg2", "alembic",
                            "prometheus_client", "redis")
                if importlib.util.find_spec(m) is None],
}))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_runtime_stage_holds_only_the_venv_and_this_service(images, service):
    r = run_container(images[service], "python", "-c", PROBE, env={})
    assert r.returncode == 0, r.stderr
    facts = json.loads(r.stdout)
    REPORT.setdefault("extra", {})[f"{service} python"] = f"{facts['version']} ({facts['python']})"
    assert (facts["uid"], facts["gid"]) == (10001, 10001)
    # The shared package and this one service; not the other service, no tests.
    assert facts["app"] == sorted(["__pycache__", "common", service, "gunicorn.conf.py",
                                   "healthcheck.py"])
    assert facts["pip"] is False, "pip is a build tool: not in the runtime venv"
    assert facts["imports"] == [], "missing runtime dependencies"
    # Code and dependencies are root-owned: the service cannot rewrite them,
    # and the root filesystem is read-only anyway; /tmp and /dev/shm are not.
    assert facts["writable"] == []
    assert facts["tmp_writable"] and facts["shm_writable"]


# ------------------------------------------------------------ migrations
def test_migrations_run_through_the_image_and_are_idempotent(images, backing_servers, migrated):
    for svc, r in migrated.items():
        assert r.returncode == 0, f"{svc}: {r.stdout}{r.stderr}"
    pg = backing_servers["postgres"]
    for svc, db in (("user_service", "chirp_users"), ("tweet_service", "chirp_tweets"),
                    ("feed_service", "chirp_feed")):
        with pg.connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            first = cur.fetchall()
        conn.close()
        assert len(first) == 1, f"{svc}: one alembic head expected, got {first}"
        # Running it again (as every Helm upgrade does) changes nothing.
        r = run_container(images[svc], "python", "-m", svc, "upgrade",
                          env={"DATABASE_URL": backing_servers[DATABASES[svc]]})
        assert r.returncode == 0, r.stdout + r.stderr
        with pg.connect(db) as conn, conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchall() == first
        conn.close()


# ------------------------------------------------------------ running containers
@pytest.mark.parametrize("service", SERVICES)
def test_container_serves_its_operational_endpoints(services, service):
    s = services[service]
    assert request("GET", s.port, "/healthz").status == 200
    assert request("GET", s.port, "/readyz").status == 200
    m = request("GET", s.port, "/metrics")
    assert m.status == 200
    assert m.content_type == "text/plain"
    assert b"# TYPE" in m.body
    o = request("GET", s.port, "/openapi.json")
    assert o.status == 200
    assert o.json()["openapi"].startswith("3.1")


@pytest.mark.parametrize("service", SERVICES)
def test_docker_healthcheck_reports_healthy(services, service):
    s = services[service]
    deadline = time.monotonic() + 45
    health = None
    while time.monotonic() < deadline:
        health = inspect(s.name, "container")["State"].get("Health", {})
        if health.get("Status") == "healthy":
            return
        time.sleep(0.5)
    pytest.fail(f"{service}: health {health}\n{s.logs()}")


def test_contract_smoke_through_the_containers(services):
    users, tweets = services["user_service"].port, services["tweet_service"].port

    r = request("POST", users, "/users", json={"name": "Ali"}, headers={"X-Request-ID": "smoke-1"})
    assert r.status == 201, r.body
    assert r.json()["id"] == 1 and r.json()["name"] == "Ali"
    assert r.headers.get("location")
    assert r.headers.get("x-request-id") == "smoke-1"

    r = request("GET", users, "/users/1")
    assert r.status == 200 and r.json()["name"] == "Ali"
    r = request("GET", users, "/users/1")  # now from the Redis cache
    assert r.status == 200 and r.json()["id"] == 1

    r = request("POST", tweets, "/tweets", json={"user_id": 1, "content": "Hello"})
    assert r.status == 201, r.body
    tweet = r.json()
    assert tweet["user_id"] == 1 and tweet["content"] == "Hello"
    assert r.headers.get("location")

    r = request("GET", tweets, f"/tweets/{tweet['id']}")
    assert r.status == 200 and r.json()["content"] == "Hello"
    r = request("GET", tweets, "/tweets?user_id=1")
    assert r.status == 200 and [t["id"] for t in r.json()["data"]] == [tweet["id"]]

    for port, path in ((users, "/users/999999"), (tweets, "/tweets/999999"), (users, "/nope")):
        r = request("GET", port, path)
        assert r.status == 404, (path, r.status)
        assert r.content_type == PROBLEM, (path, r.headers)
        assert r.json()["status"] == 404

    # The tweet service asks the user service (another container) about users.
    r = request("POST", tweets, "/tweets", json={"user_id": 999999, "content": "Hi"})
    assert r.status == 422, r.body
    assert r.content_type == PROBLEM

    # The feed asks both of them, and hears of new tweets through events.
    feed = services["feed_service"].port
    r = request("POST", users, "/users", json={"name": "Bo"})
    assert r.status == 201, r.body
    bo = r.json()["id"]
    r = request("PUT", feed, f"/follows/{bo}/1")
    assert r.status == 201, r.body
    r = request("GET", feed, f"/timelines/{bo}")
    assert r.status == 200 and [t["id"] for t in r.json()["data"]] == [tweet["id"]], r.body
    assert r.json()["data"][0]["author"]["name"] == "Ali"
    r = request("POST", tweets, "/tweets", json={"user_id": 1, "content": "Again"})
    assert r.status == 201, r.body
    second = r.json()["id"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        r = request("GET", feed, f"/timelines/{bo}")
        if [t["id"] for t in r.json()["data"]] == [second, tweet["id"]]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the new tweet did not reach the timeline: {r.body}")


def test_containers_wrote_nothing_outside_tmp(services):
    # --read-only makes this so; `docker diff` shows it (tmpfs is not listed).
    for s in services.values():
        assert docker("diff", s.name).stdout.strip() == "", s.service


# ------------------------------------------------------------ SIGTERM under load
CLIENTS = 16
# The signal goes out once the burst is under way: at least WARMUP_S passed
# and WARMUP_REQUESTS answered (a loaded machine is slower), at most WARMUP_MAX_S.
WARMUP_S = 1.5
WARMUP_REQUESTS = 4 * CLIENTS
WARMUP_MAX_S = 30


def _burst_request(service: str, port: int, n: int):
    if service == "user_service":
        if n % 2:
            return request("GET", port, "/users/1", timeout=30)
        return request("POST", port, "/users", json={"name": f"burst {n}"}, timeout=30)
    if service == "feed_service":
        if n % 2:
            return request("GET", port, "/timelines/1?limit=5", timeout=30)
        return request("GET", port, "/follows?follower_id=1", timeout=30)
    if n % 2:
        return request("GET", port, "/tweets?user_id=1&limit=5", timeout=30)
    return request("POST", port, "/tweets", json={"user_id": 1, "content": f"burst {n}"}, timeout=30)


@pytest.mark.parametrize("service", SERVICES)
def test_sigterm_mid_burst_drains_every_accepted_request(services, backing_servers, images, service):
    """A dedicated container gets SIGTERM while CLIENTS threads keep sending
    requests (a fresh connection each), reads and writes; the tweet service's
    writes also call the user service. Every request sent before the signal
    must get a complete, non-5xx response; after it, new connections may be
    refused, but nothing accepted may be cut off; gunicorn exits 0."""
    main = services[service]
    victim = Service(service, images[service], infra.free_port(), dict(main.env))
    victim.env["PORT"] = str(victim.port)
    victim.name += "-sigterm"
    victim.start()
    try:
        results = []  # (t_start, t_end, outcome)
        lock = threading.Lock()
        stop = threading.Event()
        counter = iter(range(10**9))

        def client():
            while not stop.is_set():
                n = next(counter)
                t0 = time.monotonic()
                try:
                    r = _burst_request(service, victim.port, n)
                    outcome = r.status
                except ConnectionRefusedError:
                    outcome = "refused"
                except (ConnectionResetError, BrokenPipeError, http.client.HTTPException) as exc:
                    # RemoteDisconnected, IncompleteRead, a torn status line...
                    outcome = f"cut off: {type(exc).__name__}"
                except OSError as exc:  # timeouts and the like
                    outcome = f"error: {exc!r}"
                with lock:
                    results.append((t0, time.monotonic(), outcome))

        threads = [threading.Thread(target=client, daemon=True) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        started = time.monotonic()
        while time.monotonic() - started < WARMUP_MAX_S:
            if time.monotonic() - started >= WARMUP_S and len(results) >= WARMUP_REQUESTS:
                break
            time.sleep(0.05)
        stop.set()
        t_sig = time.monotonic()
        docker("kill", "--signal", "TERM", victim.name)
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "clients hung"
        exit_code = int(docker("wait", victim.name, timeout=60).stdout.strip())
        stopped_after = time.monotonic() - t_sig
        logs = victim.logs()
    finally:
        victim.remove()

    before = [r for r in results if r[0] < t_sig]
    after = [r for r in results if r[0] >= t_sig]
    in_flight = [r for r in before if r[1] > t_sig]
    bad_before = [r for r in before if not (isinstance(r[2], int) and r[2] < 500)]
    bad_after = [r for r in after if not (r[2] == "refused" or (isinstance(r[2], int) and r[2] < 500))]
    statuses = sorted({str(r[2]) for r in results})
    REPORT.setdefault("extra", {})[f"SIGTERM drill, {service}"] = (
        f"{len(before)} requests sent before the signal ({len(in_flight)} in flight at it), "
        f"all answered; exit {exit_code} after {stopped_after:.1f} s")
    assert len(before) >= WARMUP_REQUESTS, f"the burst never got going: {len(before)} requests"
    assert in_flight, "no request was in flight at the signal: nothing was tested"
    assert not bad_before, f"requests cut off or failed: {bad_before[:10]} (statuses {statuses})\n{logs}"
    assert not bad_after, f"after the signal: {bad_after[:10]}\n{logs}"
    assert exit_code == 0, logs
