"""Fixtures of the image harness (`make test-images`).

Session-wide, in this order: a Docker engine (started here when none
answers), a local base image (debootstrap, cached by tag), both service
images built with `make images`, throwaway PostgreSQL and Redis on the
loopback, migrations run through the images, and both services running as
containers with the Helm chart's security settings.

`make test-images` runs pytest with --confcutdir=tests/images, so the other
suites' conftest is not loaded here; the PostgreSQL and Redis servers still
come from tests/support/servers.py.
"""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))  # tests/, for support.servers

import infra  # noqa: E402
from harness import (IMAGE_PREFIX, IMAGE_TAG, LABEL, REPO, REPORT, SERVICES,  # noqa: E402
                     Service, docker, image_ref, inspect, run_container, write_report)


# --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def engine():
    engine = infra.DockerEngine().start()
    REPORT["engine"] = "started by the harness" if engine.started_here else "already running"
    try:
        yield engine
    finally:
        # Whatever this session started, and only that.
        ids = docker("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
        if ids:
            docker("rm", "-f", *ids, check=False)
        engine.stop()


@pytest.fixture(scope="session")
def base_image(engine) -> str:
    """PYTHON_IMAGE for the builds: CHIRP_PYTHON_IMAGE if given (e.g. an
    official python image already on the machine), else the local base."""
    given = os.environ.get("CHIRP_PYTHON_IMAGE")
    if given:
        REPORT["base"] = {"tag": given, "build_s": None}
        return given
    cached = infra.image_exists(infra.base_image_tag())
    started = time.monotonic()
    tag = infra.ensure_base_image()
    REPORT["base"] = {"tag": tag, "build_s": None if cached else round(time.monotonic() - started, 1),
                      "size": inspect(tag)["Size"]}
    return tag


@pytest.fixture(scope="session")
def images(base_image) -> dict[str, str]:
    """Both images, built the way a developer does: `make images`."""
    env = infra.docker_env()
    env.pop("MAKEFLAGS", None)
    started = time.monotonic()
    proc = subprocess.run(
        ["make", "--no-print-directory", "images", f"PYTHON_IMAGE={base_image}",
         f"IMAGE_TAG={IMAGE_TAG}", f"IMAGE_PREFIX={IMAGE_PREFIX}"],
        cwd=REPO, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - started
    log = pathlib.Path(os.environ.get("TMPDIR", "/tmp")) / "chirp-make-images.log"
    log.write_text(proc.stdout)
    if proc.returncode != 0:
        pytest.fail(f"make images failed ({proc.returncode}); log {log}:\n{proc.stdout[-6000:]}",
                    pytrace=False)
    cached_steps = proc.stdout.count("Using cache") + proc.stdout.count("CACHED")
    REPORT["build"] = {"make_images_s": round(elapsed, 1), "cached_steps": cached_steps}
    refs = {svc: image_ref(svc) for svc in SERVICES}
    REPORT["images"] = {ref: inspect(ref)["Size"] for ref in refs.values()}
    return refs


@pytest.fixture(scope="session")
def backing_servers():
    """Throwaway PostgreSQL (two databases) and Redis on the loopback."""
    infra.ensure_server_software()
    from support import servers

    try:
        pg = servers.postgres_server()
        rd = servers.redis_server()
    except servers.ServerUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    with pg, rd:
        yield {
            "postgres": pg,
            "redis": rd,
            "user_db": pg.create_database("chirp_users"),
            "tweet_db": pg.create_database("chirp_tweets"),
            "feed_db": pg.create_database("chirp_feed"),
        }


@pytest.fixture(scope="session")
def migrated(images, backing_servers):
    """Migrations through the images themselves: `python -m <svc> upgrade`."""
    results = {}
    for svc, db in (("user_service", backing_servers["user_db"]),
                    ("tweet_service", backing_servers["tweet_db"]),
                    ("feed_service", backing_servers["feed_db"])):
        r = run_container(images[svc], "python", "-m", svc, "upgrade", env={"DATABASE_URL": db})
        results[svc] = r
    return results


@pytest.fixture(scope="session")
def services(images, backing_servers, migrated):
    for svc, r in migrated.items():
        if r.returncode != 0:
            pytest.fail(f"migration of {svc} failed ({r.returncode}):\n{r.stdout}{r.stderr}",
                        pytrace=False)
    user = Service("user_service", images["user_service"], infra.free_port(), {
        "DATABASE_URL": backing_servers["user_db"],
        "REDIS_URL": backing_servers["redis"].url,
    })
    tweet = Service("tweet_service", images["tweet_service"], infra.free_port(), {
        "DATABASE_URL": backing_servers["tweet_db"],
        "USER_SERVICE_URL": user.url(),
    })
    feed = Service("feed_service", images["feed_service"], infra.free_port(), {
        "DATABASE_URL": backing_servers["feed_db"],
        "REDIS_URL": backing_servers["redis"].url,
        "USER_SERVICE_URL": user.url(),
        "TWEET_SERVICE_URL": tweet.url(),
    })
    # The producers deliver their events to the feed (and the user service to the tweet service).
    user.env.update(TWEET_SERVICE_URL=tweet.url(), FEED_SERVICE_URL=feed.url())
    tweet.env["FEED_SERVICE_URL"] = feed.url()
    started = []
    try:
        for s in (user, tweet, feed):
            s.start()
            started.append(s)
        yield {"user_service": user, "tweet_service": tweet, "feed_service": feed}
    finally:
        for s in started:
            s.remove()




def pytest_terminal_summary(terminalreporter):
    write_report(terminalreporter)
