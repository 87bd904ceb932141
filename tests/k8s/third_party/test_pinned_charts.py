"""The pinned third-party charts, rendered with our values under Helm 3 and 4
(`make check-third-party CHARTS_DIR=...`; not part of `make test-k8s`, which
has no network). CHARTS_DIR holds the charts at the pinned tags, checked out
from their repositories and never committed:

    CHARTS_DIR/traefik          traefik/traefik-helm-chart, tag v<TRAEFIK_CHART_VERSION>, dir traefik/
    CHARTS_DIR/metrics-server   kubernetes-sigs/metrics-server, tag
                                metrics-server-helm-chart-<METRICS_SERVER_CHART_VERSION>, dir charts/metrics-server/
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from conftest import HELMS, ROOT, run

CHARTS_DIR = Path(os.environ.get("CHIRP_THIRD_PARTY_CHARTS", "/nonexistent"))


def _mk_var(name: str) -> str:
    (value,) = re.findall(rf"^{name} \?= (\S+)$", (ROOT / "mk/k8s.mk").read_text(), re.M)
    return value


def _chart(name: str, pinned_var: str) -> Path:
    chart = CHARTS_DIR / name
    if not (chart / "Chart.yaml").exists():
        pytest.fail(f"{chart}/Chart.yaml missing: set CHARTS_DIR (see this module's docstring)")
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert meta["version"] == _mk_var(pinned_var), f"{name} checkout is not the pinned version"
    return chart


def _render(helm: str, release: str, chart: Path, namespace: str, *args) -> list[dict]:
    res = run([HELMS[helm], "template", release, chart, "--namespace", namespace, *args])
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


@pytest.mark.parametrize("helm", sorted(HELMS))
def test_traefik_serves_our_ingress_and_gateway_on_the_kind_node(helm):
    docs = _render(helm, "traefik", _chart("traefik", "TRAEFIK_CHART_VERSION"), "traefik",
                   "-f", ROOT / "k8s/kind/traefik-values.yaml")
    kinds = {d["kind"]: d for d in docs}
    assert kinds["Service"]["spec"]["type"] == "NodePort"
    dep = kinds["Deployment"]
    assert dep["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/name"] == "traefik"
    assert pod["spec"]["nodeSelector"] == {"ingress-ready": "true"}
    (c,) = pod["spec"]["containers"]
    host_ports = {p["name"]: p.get("hostPort") for p in c["ports"]}
    assert (host_ports["web"], host_ports["websecure"]) == (80, 443)
    assert "--providers.kubernetesingress" in c["args"] and "--providers.kubernetesgateway" in c["args"]
    chirp = yaml.safe_load((ROOT / "charts/chirp/values.yaml").read_text())
    ic = kinds["IngressClass"]
    assert ic["metadata"]["name"] == chirp["ingress"]["className"]
    (parent,) = chirp["httpRoute"]["parentRefs"]
    gw = kinds["Gateway"]
    assert (gw["metadata"]["name"], gw["metadata"]["namespace"]) == (parent["name"], parent["namespace"])
    (listener,) = [ln for ln in gw["spec"]["listeners"] if ln["name"] == parent["sectionName"]]
    assert listener["allowedRoutes"]["namespaces"]["from"] == "All"
    assert gw["apiVersion"] == "gateway.networking.k8s.io/v1"
    # The chart brings no Gateway API CRDs: `make kind-up` applies them first.
    crds = [p.name for p in (CHARTS_DIR / "traefik/crds").glob("*.yaml")]
    assert not [n for n in crds if "gateway.networking.k8s.io" in n], crds


@pytest.mark.parametrize("helm", sorted(HELMS))
def test_metrics_server_takes_our_flag(helm):
    docs = _render(helm, "metrics-server", _chart("metrics-server", "METRICS_SERVER_CHART_VERSION"),
                   "kube-system", "--set", "args={--kubelet-insecure-tls}")
    (dep,) = [d for d in docs if d["kind"] == "Deployment"]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert "--kubelet-insecure-tls" in c["args"]
    assert any(d["kind"] == "APIService" for d in docs)
