"""Helm 3 and Helm 4: lint --strict and template every chart over the values matrix."""
from __future__ import annotations

import re

import pytest
import yaml

from conftest import ALL_CASES, HELMS, ROOT, SCENARIOS, render, render_text, run, template_args


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart,scenario", ALL_CASES)
def test_lint_strict(helm, chart, scenario):
    render_text(helm, chart, scenario)  # builds the umbrella's dependencies first
    res = run([HELMS[helm], "lint", "--strict", *template_args(chart, scenario)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in res.stdout


@pytest.mark.parametrize("helm", sorted(HELMS))
@pytest.mark.parametrize("chart,scenario", ALL_CASES)
def test_template_renders_well_formed_objects(helm, chart, scenario):
    docs = render(helm, chart, scenario)
    seen = set()
    for d in docs:
        assert {"apiVersion", "kind", "metadata"} <= d.keys(), d
        name = d["metadata"]["name"]
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name) and len(name) <= 63, name
        key = (d["kind"], name)
        assert key not in seen, f"duplicate {key}"
        seen.add(key)


_RANDOM = re.compile(r'^(\s+(?:password|database-url|checksum/secret): ).*$', re.M)


@pytest.mark.parametrize("chart,scenario", ALL_CASES)
def test_helm3_and_helm4_render_the_same(chart, scenario):
    """Same objects from both majors (generated passwords aside)."""
    a = _RANDOM.sub(r"\1<random>", render_text("helm3", chart, scenario))
    b = _RANDOM.sub(r"\1<random>", render_text("helm4", chart, scenario))
    assert list(yaml.safe_load_all(a)) == list(yaml.safe_load_all(b))


@pytest.mark.parametrize("helm", sorted(HELMS))
def test_kube_version_floor(helm):
    """The charts declare kubeVersion >=1.30 (preStop sleep action)."""
    ok = run([HELMS[helm], "template", "x", ROOT / "charts/user-service", "--kube-version", "1.30.0"])
    assert ok.returncode == 0, ok.stderr
    old = run([HELMS[helm], "template", "x", ROOT / "charts/user-service", "--kube-version", "1.29.9"])
    assert old.returncode != 0 and "kubeVersion" in old.stderr


def test_matrix_covers_the_required_variations():
    names = set(SCENARIOS["chirp"])
    assert {"default", "external-db-redis", "hpa", "gateway-no-ingress", "replicas-5"} <= names


def test_umbrella_dependencies_are_local_files():
    chart = yaml.safe_load((ROOT / "charts/chirp/Chart.yaml").read_text())
    deps = {d["name"]: d for d in chart["dependencies"]}
    assert set(deps) == {"user-service", "tweet-service"}
    for name, dep in deps.items():
        assert dep["repository"] == f"file://../{name}"
        sub = yaml.safe_load((ROOT / "charts" / name / "Chart.yaml").read_text())
        assert dep["version"] == sub["version"]


def test_service_charts_share_one_template_set():
    """The two service charts differ only by name (values carry the differences)."""
    us, ts = ROOT / "charts/user-service/templates", ROOT / "charts/tweet-service/templates"
    files = sorted(p.relative_to(us) for p in us.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ts) for p in ts.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == "NOTES.txt":
            continue
        a = (us / rel).read_text()
        b = (ts / rel).read_text().replace("tweet-service", "user-service")
        assert a == b, f"{rel} drifted between the service charts"
