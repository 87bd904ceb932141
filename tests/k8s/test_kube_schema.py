"""Every rendered object against the strict Kubernetes schemas of the oldest
and newest supported versions (kubernetes-validate; unknown fields fail)."""
from __future__ import annotations

import pytest
import kubernetes_validate

from conftest import ALL_CASES, KUBE_VERSIONS, KUBECTL, ROOT, render, run

# Custom resources: not in the Kubernetes schemas; checked structurally in
# test_policy.py (test_httproute_*).
CRD_KINDS = {"HTTPRoute"}


def _validate(docs, version):
    checked = 0
    for d in docs:
        if d["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(d, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{d['kind']}/{d['metadata']['name']} invalid for {version}: "
                        f"{e.message} at {list(e.absolute_path)}")
        checked += 1
    assert checked


def test_validator_ships_the_versions_we_claim():
    shipped = set(kubernetes_validate.utils.all_versions())
    for v in KUBE_VERSIONS:
        assert any(s.startswith(v + ".") for s in shipped), (v, sorted(shipped))


def test_validator_is_strict():
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": 80}], "selectr": {}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBE_VERSIONS[0], strict=True)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
@pytest.mark.parametrize("chart,scenario", ALL_CASES)
def test_rendered_objects_validate(chart, scenario, version):
    _validate(render("helm4", chart, scenario), version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_helm3_default_render_validates(version):
    _validate(render("helm3", "chirp", "default"), version)


@pytest.mark.parametrize("version", KUBE_VERSIONS)
def test_plain_manifests_validate(version):
    import yaml
    res = run([KUBECTL, "kustomize", ROOT / "k8s/manifests"])
    assert res.returncode == 0, res.stderr
    docs = [d for d in yaml.safe_load_all(res.stdout) if d]
    assert {d["kind"] for d in docs} >= {"Namespace", "Deployment", "StatefulSet", "Ingress"}
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"].get("namespace") == "chirp", d["metadata"]
    _validate(docs, version)
