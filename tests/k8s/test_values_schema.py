"""values.schema.json rejects wrong values (under Helm 3 and Helm 4), and the
templates refuse contradictory settings."""
from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from conftest import HELMS, RELEASE, ROOT, render_text, run

CHARTS = ["user-service", "tweet-service", "chirp"]

# (chart, --set or -f args, text expected in the error)
BAD_VALUES = [
    ("user-service", ["--set", "replicaCount=-1"], "replicaCount"),
    ("user-service", ["--set", "image.pullPolicy=Sometimes"], "pullPolicy"),
    ("user-service", ["--set", "replicas=3"], "replicas"),                       # unknown key
    ("user-service", ["--set", "config.logLevel=LOUD"], "logLevel"),
    ("user-service", ["--set", "image.digest=latest"], "digest"),
    ("user-service", ["--set", "resources.limits=null"], "limits"),             # limits required
    ("user-service", ["--set", "postgresql.auth.password=p@ss/word"], "password"),  # not URL-safe
    ("tweet-service", ["--set", "userService.url=user-service:5001"], "url"),   # no scheme
    ("tweet-service", ["--set", "redis.url=redis://x:6379"], "redis"),          # user-service only
    ("tweet-service", ["--set", "autoscaling.targetCPUUtilizationPercentage=150"], "targetCPUUtilizationPercentage"),
    ("chirp", ["--set", "ingres.enabled=false"], "ingres"),                      # typo
    ("chirp", ["--set", "ingress.host=Chirp Local"], "host"),
    ("chirp", ["--set", "user-service.replicaCount=many"], "replicaCount"),      # subchart schema
    ("chirp", ["--set", "tweet-service.service.port=70000"], "port"),
    ("chirp", ["--set-json", "httpRoute.parentRefs=[]"], "parentRefs"),
    ("user-service", ["--set", "database.poolsPerWorker=0"], "poolsPerWorker"),
    ("user-service", ["--set", "postgresql.maxConnections=5"], "maxConnections"),
    ("tweet-service", ["--set", "migrations.backoffLimit=3"], "backoffLimit"),     # the Job is gone
]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart,args,needle", BAD_VALUES)
def test_schema_rejects_bad_values(helm, chart, args, needle):
    render_text("helm4", "chirp", "default")  # dependencies built
    res = run([HELMS[helm], "template", RELEASE, ROOT / "charts" / chart, *args])
    assert res.returncode != 0, f"accepted {args}"
    assert "schema" in res.stderr.lower() and needle in res.stderr, res.stderr


# (chart, args, message from the template's `fail`)
CONTRADICTIONS = [
    ("user-service", ["--set", "externalDatabase.url=postgresql://u:p@h/db"], "not both"),
    ("user-service", ["--set", "postgresql.enabled=false"], "needs externalDatabase"),
    ("user-service", ["--set", "terminationGracePeriodSeconds=20"], "must exceed"),
    ("tweet-service", ["--set", "preStopSleepSeconds=30"], "must exceed"),
    ("user-service", ["--set", "redis.url=redis://a:6379", "--set", "redis.existingSecret=s"], "not both"),
    ("chirp", ["--set", "redis.enabled=false"], "redis.enabled=false"),
    ("chirp", ["--set", "ingress.tls.enabled=true"], "secretName"),
    # The connection budget (chirp-common.connectionBudget).
    ("user-service", ["--set", "replicaCount=20"], "connection budget exceeded"),
    ("tweet-service", ["--set", "autoscaling.enabled=true"], "postgresql.maxConnections (200)"),
    ("chirp", ["--set", "tweet-service.autoscaling.enabled=true"], "tweet-service: connection budget"),
    ("tweet-service", ["--set", "postgresql.enabled=false", "--set", "externalDatabase.url=postgresql://u:p@h/db"],
     "externalDatabase.maxConnections (100)"),
    ("user-service", ["--set", "strategy.maxSurge=100%", "--set", "replicaCount=6"], "12 pods"),
    # A chart built on chirp-common without the budget's keys is told which.
    ("user-service", ["--set", "postgresql.maxConnections=null"], "postgresql.maxConnections is required"),
    ("tweet-service", ["--set", "database=null"], "database.poolsPerWorker is required"),
]


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart,args,needle", CONTRADICTIONS)
def test_templates_refuse_contradictions(helm, chart, args, needle):
    render_text("helm4", "chirp", "default")
    res = run([HELMS[helm], "template", RELEASE, ROOT / "charts" / chart, *args])
    assert res.returncode != 0 and needle in res.stderr, res.stderr


@pytest.mark.parametrize("chart", CHARTS)
def test_defaults_satisfy_the_schema(chart):
    schema = json.loads((ROOT / "charts" / chart / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    values = yaml.safe_load((ROOT / "charts" / chart / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)


@pytest.mark.parametrize("chart", CHARTS)
def test_schema_is_closed(chart):
    """additionalProperties: false on every object with declared properties."""
    schema = json.loads((ROOT / "charts" / chart / "values.schema.json").read_text())

    def walk(node, path):
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("additionalProperties") is False, path
            for k, v in node.items():
                walk(v, f"{path}/{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}/{i}")

    walk(schema, "#")


@pytest.mark.parametrize("chart", CHARTS)
def test_readme_documents_every_top_level_value(chart):
    readme = (ROOT / "charts" / chart / "README.md").read_text()
    values = yaml.safe_load((ROOT / "charts" / chart / "values.yaml").read_text())
    for key in values:
        assert f"`{key}" in readme, f"{chart}/README.md misses {key}"


# user-service at its defaults: 2 workers x 4 threads x 2 pools = 16 connections a pod.
@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("args,fits", [
    # (2 replicas + 1 surge) x 16 = 48 = 58 - 10 reserved: fits exactly.
    (["--set", "postgresql.maxConnections=58"], True),
    (["--set", "postgresql.maxConnections=57"], False),
    (["--set", "postgresql.maxConnections=58", "--set", "database.poolsPerWorker=1",
      "--set", "replicaCount=5"], True),                                   # (5 + 1) x 8 = 48
    (["--set", "postgresql.maxConnections=58", "--set", "database.reservedConnections=11"], False),
    (["--set", "autoscaling.enabled=true", "--set", "autoscaling.maxReplicas=3",
      "--set", "postgresql.maxConnections=74"], True),                      # (3 + 1) x 16 = 64
    (["--set", "autoscaling.enabled=true", "--set", "autoscaling.maxReplicas=3",
      "--set", "postgresql.maxConnections=73"], False),
])
def test_connection_budget_boundary(helm, args, fits):
    res = run([HELMS[helm], "template", RELEASE, ROOT / "charts/user-service", *args])
    assert (res.returncode == 0) == fits, res.stderr
    if not fits:
        assert "connection budget exceeded" in res.stderr


@pytest.mark.parametrize("chart", ["user-service", "tweet-service"])
def test_in_chart_postgres_sets_max_connections_explicitly(chart):
    docs = [d for d in yaml.safe_load_all(render_text("helm4", chart, "default")) if d]
    (sts,) = [d for d in docs if d["kind"] == "StatefulSet"]
    values = yaml.safe_load((ROOT / "charts" / chart / "values.yaml").read_text())
    (c,) = sts["spec"]["template"]["spec"]["containers"]
    assert c["args"] == ["-c", f"max_connections={values['postgresql']['maxConnections']}"]
