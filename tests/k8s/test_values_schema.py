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
