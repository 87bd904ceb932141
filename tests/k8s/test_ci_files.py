"""skaffold.yaml, the kind config, Traefik values, the GitHub workflow and the
make targets around the charts."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT, render

SCHEMAS = Path(__file__).parent / "schemas"


def _schema(name):
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


# --- skaffold ------------------------------------------------------------------

def test_skaffold_validates_against_v4beta13():
    v = _schema("skaffold-v4beta13.subset.json")
    doc = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in v.iter_errors(doc)]
    assert not errors, errors
    assert list(v.iter_errors({**doc, "biuld": {}}))


def test_skaffold_builds_both_images_and_sets_their_tags():
    doc = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    arts = {a["image"]: a for a in doc["build"]["artifacts"]}
    assert set(arts) == {"chirp/user-service", "chirp/tweet-service"}
    for image, art in arts.items():
        svc = image.split("/")[1]
        assert (ROOT / art["docker"]["dockerfile"]).exists()
        assert art["docker"]["buildArgs"]["SERVICE"] == svc.replace("-", "_")
    (rel,) = doc["deploy"]["helm"]["releases"]
    assert (ROOT / rel["chartPath"] / "Chart.yaml").exists()
    tpl = rel["setValueTemplates"]
    for image in arts:
        svc, var = image.split("/")[1], re.sub(r"[^A-Za-z0-9]", "_", image)
        assert tpl[f"{svc}.image.repository"] == "{{.IMAGE_REPO_%s}}" % var
        assert tpl[f"{svc}.image.tag"] == "{{.IMAGE_TAG_%s}}" % var
    profiles = {p["name"]: p for p in doc["profiles"]}
    assert set(profiles) == {"kind", "minikube"}
    for name, p in profiles.items():
        (patch,) = p["patches"]
        for f in patch["value"]:
            assert (ROOT / f).exists()
    # portForward names the Services the chart creates for release "chirp".
    docs = render("helm4", "chirp", "default")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for pf in doc["portForward"]:
        assert pf["resourceName"] in services
        assert pf["port"] == services[pf["resourceName"]]["spec"]["ports"][0]["port"]


# --- kind + Traefik ------------------------------------------------------------------

def test_kind_config_validates_and_has_the_shape_we_need():
    cfg = yaml.safe_load((ROOT / "k8s/kind/cluster.yaml").read_text())
    v = _schema("kind-v1alpha4.json")
    assert not [e.message for e in v.iter_errors(cfg)]
    roles = [n.get("role", "control-plane") for n in cfg["nodes"]]
    assert roles == ["control-plane", "worker", "worker"]
    cp = cfg["nodes"][0]
    assert cp["labels"]["ingress-ready"] == "true"
    assert {(m["containerPort"], m["hostPort"]) for m in cp["extraPortMappings"]} == {(80, 80), (443, 443)}


def test_traefik_values_bind_the_mapped_ports_on_the_ingress_node():
    v = yaml.safe_load((ROOT / "k8s/kind/traefik-values.yaml").read_text())
    assert v["nodeSelector"] == {"ingress-ready": "true"}
    assert any(t["key"] == "node-role.kubernetes.io/control-plane" for t in v["tolerations"])
    assert (v["ports"]["web"]["hostPort"], v["ports"]["websecure"]["hostPort"]) == (80, 443)
    assert v["providers"]["kubernetesIngress"]["enabled"] and v["providers"]["kubernetesGateway"]["enabled"]
    # The chart's default IngressClass and the NetworkPolicy's controller selector agree.
    chirp = yaml.safe_load((ROOT / "charts/chirp/values.yaml").read_text())
    assert chirp["ingress"]["className"] == v["ingressClass"]["name"]
    us = yaml.safe_load((ROOT / "charts/user-service/values.yaml").read_text())
    sel = us["networkPolicy"]["ingressController"]
    assert sel["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] == "traefik"
    assert sel["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "traefik"}
    # The HTTPRoute's default parent is the Gateway Traefik's chart creates.
    (parent,) = chirp["httpRoute"]["parentRefs"]
    assert (parent["name"], parent["namespace"], parent["sectionName"]) == ("traefik-gateway", "traefik", "web")
    assert v["gateway"]["listeners"]["web"]["namespacePolicy"] == {"from": "All"}


# --- GitHub workflow ----------------------------------------------------------------

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


@pytest.mark.parametrize("wf", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_validates_against_the_github_schema(wf):
    exe = Path(sys.executable).with_name("check-jsonschema")
    res = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", wf],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_kind_job_runs_the_whole_loop_in_order():
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    jobs = wf["jobs"]
    assert {"unit", "k8s-offline", "images", "kind-e2e"} <= set(jobs)
    runs = [s["run"] for s in jobs["kind-e2e"]["steps"] if "run" in s]
    flat = "\n".join(runs)
    order = ["make kind-up", "make deploy", "make e2e", "REPLICAS=3", "make e2e",
             "REPLICAS=1", "make e2e", "make kind-down"]
    pos = 0
    for needle in order:
        pos = flat.index(needle, pos) + 1
    assert any("make test-k8s" in s.get("run", "") for s in jobs["k8s-offline"]["steps"])


# --- make targets --------------------------------------------------------------------

def _make_n(*args):
    res = subprocess.run(["make", "-n", "-C", ROOT, *args], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout


def test_make_targets_exist_and_are_documented():
    mk = (ROOT / "mk/k8s.mk").read_text()
    for t in ["kind-up", "kind-down", "minikube-up", "minikube-down", "deploy", "e2e", "scale",
              "undeploy", "manifests", "test-k8s", "cluster-up", "cluster-down"]:
        assert re.search(rf"^{t}:.*## ", mk, re.M), t


def test_make_deploy_kind_and_minikube():
    kind = _make_n("deploy", "CLUSTER=kind", "IMAGE_TAG=t1")
    assert "kind load docker-image --name chirp chirp/user-service:t1 chirp/tweet-service:t1" in kind
    assert "-f k8s/values/kind.yaml" in kind and "--wait" in kind
    assert "--set tweet-service.image.tag=t1" in kind
    mini = _make_n("deploy", "CLUSTER=minikube", "IMAGE_TAG=t1")
    assert "minikube image load chirp/user-service:t1" in mini
    assert "-f k8s/values/minikube.yaml" in mini


def test_make_kind_up_installs_cluster_controller_and_metrics():
    out = _make_n("kind-up")
    assert "--config k8s/kind/cluster.yaml" in out
    assert "traefik --repo https://traefik.github.io/charts" in out
    assert "-f k8s/kind/traefik-values.yaml" in out
    assert "metrics-server" in out and "--kubelet-insecure-tls" in out


def test_make_scale_targets_the_service_deployment():
    out = _make_n("scale", "SERVICE=tweet", "REPLICAS=5")
    assert "scale deployment/chirp-tweet-service --replicas=5" in out
    res = subprocess.run(["make", "-C", ROOT, "scale", "SERVICE=nope", "REPLICAS=1"],
                         capture_output=True, text=True)
    assert res.returncode != 0
