"""Helm 3 and Helm 4: lint --strict and template every chart over the values matrix."""
from __future__ import annotations

import fnmatch
import re
import tarfile
from pathlib import Path

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
    assert set(deps) == {"user-service", "tweet-service", "feed-service"}
    for name, dep in deps.items():
        assert dep["repository"] == f"file://../{name}"
        sub = yaml.safe_load((ROOT / "charts" / name / "Chart.yaml").read_text())
        assert dep["version"] == sub["version"]


SERVICE_CHARTS = ["user-service", "tweet-service", "feed-service"]
LIBRARY = ROOT / "charts/chirp-common"
_INCLUDE = re.compile(r'\{\{- include "(chirp-common\.[A-Za-z]+)" \. \}\}\n')
_DEFINE = re.compile(r'\{\{-? define "([^"]+)"')


def _library_defines() -> set[str]:
    return {m for f in (LIBRARY / "templates").glob("*.tpl") for m in _DEFINE.findall(f.read_text())}


def test_library_chart_is_a_library():
    chart = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())
    assert chart["type"] == "library"
    tpl = sorted(p.name for p in (LIBRARY / "templates").rglob("*") if p.is_file())
    assert tpl and all(n.startswith("_") and n.endswith(".tpl") for n in tpl), tpl
    assert all(d.startswith("chirp-common.") for d in _library_defines())


@pytest.mark.parametrize("helm", sorted(HELMS))
def test_library_chart_lints_and_does_not_install(helm):
    res = run([HELMS[helm], "lint", "--strict", LIBRARY])
    assert res.returncode == 0, res.stdout + res.stderr
    res = run([HELMS[helm], "template", "x", LIBRARY])
    assert res.returncode != 0 and "library" in res.stderr.lower()


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_service_chart_depends_on_the_library(chart):
    meta = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text())
    lib = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())
    assert meta["type"] == "application"
    assert meta["dependencies"] == [
        {"name": "chirp-common", "version": lib["version"], "repository": "file://../chirp-common"}]
    lock = yaml.safe_load((ROOT / "charts" / chart / "Chart.lock").read_text())
    assert [(d["name"], d["version"]) for d in lock["dependencies"]] == [("chirp-common", lib["version"])]


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_service_chart_templates_only_include_the_library(chart):
    """No templating of its own: every object is one include of a library
    define, and both service charts render the same set of objects."""
    defines = _library_defines()
    tdir = ROOT / "charts" / chart / "templates"
    used = {}
    for path in sorted(p for p in tdir.rglob("*") if p.is_file()):
        rel = str(path.relative_to(tdir))
        text = path.read_text()
        if rel == "NOTES.txt":
            assert "define" not in text
            continue
        m = _INCLUDE.fullmatch(text)
        assert m, f"{chart}/templates/{rel} is more than one chirp-common include:\n{text}"
        assert m.group(1) in defines, f"{chart}/templates/{rel}: {m.group(1)} is not defined"
        used[rel] = m.group(1)
    other = "tweet-service" if chart != "tweet-service" else "user-service"
    odir = ROOT / "charts" / other / "templates"
    assert used == {str(p.relative_to(odir)): _INCLUDE.fullmatch(p.read_text()).group(1)
                    for p in odir.rglob("*") if p.is_file() and p.name != "NOTES.txt"}
    # Every object define of the library is rendered by the charts (no dead code).
    helpers = set(_DEFINE.findall((LIBRARY / "templates/_helpers.tpl").read_text()))
    assert set(used.values()) == defines - helpers


def _chart_files(root: Path) -> dict[str, bytes]:
    """What `helm package` takes from a chart directory (.helmignore applied)."""
    ignore = [ln.strip().rstrip("/") for ln in (root / ".helmignore").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and not any(fnmatch.fnmatch(part, pat)
                                       for part in p.relative_to(root).parts for pat in ignore)}


@pytest.mark.parametrize("chart", SERVICE_CHARTS)
def test_vendored_library_is_fresh(chart):
    """charts/<svc>/charts/ holds exactly the library as it is in the tree
    (committed so the chart installs from a clean checkout)."""
    lib = yaml.safe_load((LIBRARY / "Chart.yaml").read_text())
    vendored = sorted(p.name for p in (ROOT / "charts" / chart / "charts").iterdir())
    assert vendored == [f"chirp-common-{lib['version']}.tgz"], vendored
    with tarfile.open(ROOT / "charts" / chart / "charts" / vendored[0]) as tar:
        packed = {m.name.removeprefix("chirp-common/"): tar.extractfile(m).read()
                  for m in tar.getmembers() if m.isfile()}
    want = _chart_files(LIBRARY)
    stale = "is stale: run `make chart-deps`"
    assert yaml.safe_load(packed.pop("Chart.yaml")) == yaml.safe_load(want.pop("Chart.yaml")), stale
    assert packed == want, f"charts/{chart}/charts/{vendored[0]} {stale}"
