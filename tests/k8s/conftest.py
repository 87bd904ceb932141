"""Offline proof suite for charts/, k8s/ and skaffold.yaml (`make test-k8s`).

Renders every chart with Helm 3 and Helm 4 (real binaries from .tools/,
installed by k8s/tools/install-tools.sh) over a matrix of values, and hands
the rendered objects to the tests. Run with --confcutdir=tests/k8s so the
services' tests/conftest.py is not loaded.
"""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

try:
    import kubernetes_validate  # noqa: F401  (the suite's own venv: .tools/venv)
    import yaml
except ImportError:
    # Collected from another venv (e.g. `pytest tests` in .venv): stay out of
    # the way. `make test-k8s` sets CHIRP_K8S_STRICT=1, where this is an error.
    if os.environ.get("CHIRP_K8S_STRICT") == "1":
        raise
    collect_ignore_glob = ["test_*.py"]

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools"
HELMS = {"helm3": TOOLS / "helm3" / "helm", "helm4": TOOLS / "helm4" / "helm"}
KUBECTL = TOOLS / "helm4" / "kubectl"
RELEASE = "chirp"
NAMESPACE = "chirp"
# Oldest supported (preStop sleep action is GA from 1.30) and the newest
# schema set kubernetes-validate ships.
KUBE_VERSIONS = ["1.30", "1.37"]

_EXT_DB = "postgresql+psycopg2://u:p@db.example.internal:5432/"


def _set(*pairs: str) -> list[str]:
    args: list[str] = []
    for pair in pairs:
        args += ["--set", pair]
    return args


# chart -> scenario -> extra `helm template` arguments.
SCENARIOS: dict[str, dict[str, list[str]]] = {
    "chirp": {
        "default": [],
        "external-db-redis": _set(
            "user-service.postgresql.enabled=false",
            f"user-service.externalDatabase.url={_EXT_DB}users",
            "tweet-service.postgresql.enabled=false",
            "tweet-service.externalDatabase.existingSecret=tweets-db",
            "tweet-service.externalDatabase.maxConnections=200",
            "feed-service.postgresql.enabled=false",
            f"feed-service.externalDatabase.url={_EXT_DB}feed",
            "feed-service.externalDatabase.maxConnections=200",
            "redis.enabled=false",
            "user-service.redis.url=redis://cache.example.internal:6379/0",
            "user-service.redis.inCluster=false",
            "feed-service.redis.url=redis://cache.example.internal:6379/1",
            "feed-service.redis.inCluster=false",
        ),
        "hpa": _set("user-service.autoscaling.enabled=true",
                    "tweet-service.autoscaling.enabled=true",
                    "tweet-service.autoscaling.maxReplicas=20",
                    # (20 + 1 surge) pods x 2 workers x 8 threads x 2 pools + 10 reserved
                    "tweet-service.postgresql.maxConnections=700"),
        "gateway-no-ingress": _set("ingress.enabled=false", "httpRoute.enabled=true"),
        "replicas-5": _set("user-service.replicaCount=5", "tweet-service.replicaCount=5",
                           "tweet-service.postgresql.maxConnections=250",
                           "feed-service.replicaCount=5",
                           "feed-service.postgresql.maxConnections=250"),
        "ingress-tls": _set("ingress.tls.enabled=true", "ingress.tls.secretName=chirp-tls",
                            "ingress.host=chirp.example.org", "ingress.className=nginx"),
        "minimal": _set(
            "user-service.networkPolicy.enabled=false", "tweet-service.networkPolicy.enabled=false",
            "feed-service.networkPolicy.enabled=false",
            "redis.networkPolicy.enabled=false",
            "user-service.podDisruptionBudget.enabled=false",
            "tweet-service.podDisruptionBudget.enabled=false",
            "feed-service.podDisruptionBudget.enabled=false",
            "user-service.topologySpread.enabled=false",
            "tests.enabled=false", "user-service.tests.enabled=false",
            "tweet-service.tests.enabled=false", "feed-service.tests.enabled=false",
            "user-service.migrations.enabled=false", "tweet-service.migrations.enabled=false",
            "feed-service.migrations.enabled=false",
        ),
        "digests": _set(
            "user-service.image.digest=sha256:" + "a" * 64,
            "tweet-service.image.digest=sha256:" + "b" * 64,
            "feed-service.image.digest=sha256:" + "c" * 64,
            "user-service.image.repository=registry.example.org/chirp/user-service",
        ),
        "values-kind": ["-f", str(ROOT / "k8s/values/kind.yaml")],
        "values-minikube": ["-f", str(ROOT / "k8s/values/minikube.yaml")],
        "values-ci": ["-f", str(ROOT / "k8s/values/ci.yaml")],
    },
    "user-service": {
        "default": [],
        "external-db": _set("postgresql.enabled=false",
                            f"externalDatabase.url={_EXT_DB}users",
                            "redis.url=redis://cache:6379/0"),
        "redis-secret": _set("redis.existingSecret=redis-conn", "redis.inCluster=true"),
    },
    "tweet-service": {
        "default": [],
        "external-db": _set("postgresql.enabled=false", "externalDatabase.existingSecret=tweets-db",
                            "externalDatabase.maxConnections=200",
                            "userService.url=http://users.example.internal:5001"),
    },
    "feed-service": {
        "default": [],
        "external-db-redis": _set("postgresql.enabled=false",
                                  f"externalDatabase.url={_EXT_DB}feed",
                                  "externalDatabase.maxConnections=200",
                                  "redis.url=redis://cache:6379/1",
                                  "tweetService.url=http://tweets.example.internal:5002"),
    },
}

ALL_CASES = [(c, s) for c, scen in SCENARIOS.items() for s in scen]


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


@functools.lru_cache(maxsize=None)
def _dependencies_built() -> None:
    res = run([HELMS["helm4"], "dependency", "build", ROOT / "charts/chirp"])
    assert res.returncode == 0, res.stderr


def template_args(chart: str, scenario: str) -> list:
    return [ROOT / "charts" / chart, *SCENARIOS[chart][scenario]]


@functools.lru_cache(maxsize=None)
def render_text(helm: str, chart: str, scenario: str, extra: tuple = ()) -> str:
    _dependencies_built()
    res = run([HELMS[helm], "template", RELEASE, *template_args(chart, scenario),
               "--namespace", NAMESPACE, *extra])
    assert res.returncode == 0, f"{helm} template {chart} [{scenario}] failed:\n{res.stderr}"
    return res.stdout


def render(helm: str, chart: str, scenario: str) -> list[dict]:
    docs = [d for d in yaml.safe_load_all(render_text(helm, chart, scenario)) if d]
    assert docs, f"{chart} [{scenario}] rendered nothing"
    return docs


@pytest.fixture(scope="session", autouse=True)
def tools_installed():
    missing = [str(p) for p in [*HELMS.values(), KUBECTL] if not p.exists()]
    if missing:
        pytest.fail("missing tools (run k8s/tools/install-tools.sh): " + ", ".join(missing))


def pod_specs(docs: list[dict]):
    """(owner, pod spec, pod labels) for every workload and bare Pod."""
    for d in docs:
        kind = d["kind"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            tpl = d["spec"]["template"]
            yield d, tpl["spec"], tpl["metadata"].get("labels", {})
        elif kind == "Pod":
            yield d, d["spec"], d["metadata"].get("labels", {})


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def find(docs: list[dict], kind: str, name: str) -> dict:
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]
