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


def test_skaffold_builds_every_image_and_sets_their_tags():
    doc = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    arts = {a["image"]: a for a in doc["build"]["artifacts"]}
    assert set(arts) == {"chirp/user-service", "chirp/tweet-service", "chirp/feed-service"}
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
        (values,) = [x for x in p["patches"] if x["path"] == "/deploy/helm/releases/0/valuesFiles"]
        assert values["value"] == [f"k8s/values/{name}.yaml"]
        assert (ROOT / values["value"][0]).exists()
    # minikube (3 nodes, no docker-env): every built image is loaded into every node.
    hooks = {x["path"]: x["value"] for x in profiles["minikube"]["patches"] if x["path"].endswith("/hooks")}
    assert set(hooks) == {f"/build/artifacts/{i}/hooks" for i in range(len(arts))}
    for h in hooks.values():
        (after,) = h["after"]
        assert "minikube image load" in " ".join(after["command"]) and "$SKAFFOLD_IMAGE" in after["command"][-1]
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
    # Chart >= 40: the Service type lives under service.spec (service.type is ignored,
    # and a LoadBalancer would stay pending on kind).
    assert v["service"] == {"spec": {"type": "NodePort"}}
    # The pod holds the node's hostPorts: a surge pod could never schedule there.
    assert v["updateStrategy"]["rollingUpdate"] == {"maxUnavailable": 1, "maxSurge": 0}
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


def _steps(job: str) -> str:
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    return "\n".join(s["run"] for s in wf["jobs"][job]["steps"] if "run" in s)


def _in_order(text: str, needles: list[str]) -> None:
    pos = 0
    for needle in needles:
        found = text.find(needle, pos)
        assert found >= 0, f"{needle!r} missing after position {pos}"
        pos = found + len(needle)


def test_kind_job_runs_the_whole_path_in_order():
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    jobs = wf["jobs"]
    assert {"unit", "k8s-offline", "images", "kind-e2e", "minikube-e2e"} <= set(jobs)
    assert any("make test-k8s" in s.get("run", "") for s in jobs["k8s-offline"]["steps"])
    _in_order(_steps("kind-e2e"), [
        "make kind-up", "make kind-up",            # twice: re-running is safe
        "make deploy", "make e2e",
        "make scale SERVICE=tweet REPLICAS=3", "make scale SERVICE=user REPLICAS=3",
        "make deploy", ".spec.replicas", "make e2e",
        "make rollout-check SERVICE=tweet",        # zero failed requests
        "helm uninstall chirp", "make deploy", "make e2e", "survivor_ci",
        "make undeploy", "make kind-down",
    ])
    _in_order(_steps("minikube-e2e"), ["make minikube-up", "make deploy CLUSTER=minikube",
                                       "make e2e CLUSTER=minikube", "make minikube-down"])


def _version_of(step_uses: str, job: str) -> str:
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    (step,) = [s for s in wf["jobs"][job]["steps"] if s.get("uses", "").startswith(step_uses)]
    return step["with"]["version"]


def test_cluster_jobs_pin_their_tools_and_cover_both_helm_majors():
    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    kind_job = wf["jobs"]["kind-e2e"]
    helms = kind_job["strategy"]["matrix"]["helm"]
    assert sorted(h.split(".")[0] for h in helms) == ["v3", "v4"]
    assert _version_of("azure/setup-helm", "kind-e2e") == "${{ matrix.helm }}"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", _version_of("helm/kind-action", "kind-e2e"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", _version_of("azure/setup-kubectl", "kind-e2e"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", wf["jobs"]["minikube-e2e"]["env"]["MINIKUBE_VERSION"])
    # The versions CI installs are ones check-tools.sh accepts.
    script = (ROOT / "k8s/tools/check-tools.sh").read_text()
    minimum = dict(re.findall(r"^ *(\w+)\) echo (\d+\.\d+\.\d+) ;;$", script, re.M))
    assert set(minimum) == {"helm", "kubectl", "kind", "minikube", "docker"}
    def v(x):
        return tuple(int(n) for n in x.lstrip("v").split("."))
    assert v(_version_of("helm/kind-action", "kind-e2e")) >= v(minimum["kind"])
    assert v(wf["jobs"]["minikube-e2e"]["env"]["MINIKUBE_VERSION"]) >= v(minimum["minikube"])
    assert all(v(h) >= v(minimum["helm"]) for h in helms)


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


def _mk_var(name: str) -> str:
    (value,) = re.findall(rf"^{name} \?= (\S+)$", (ROOT / "mk/k8s.mk").read_text(), re.M)
    return value


def test_every_third_party_piece_is_pinned():
    assert re.fullmatch(r"kindest/node:v\d+\.\d+\.\d+@sha256:[0-9a-f]{64}", _mk_var("KIND_NODE_IMAGE"))
    for var in ("TRAEFIK_CHART_VERSION", "METRICS_SERVER_CHART_VERSION"):
        assert re.fullmatch(r"\d+\.\d+\.\d+", _mk_var(var)), var
    for var in ("GATEWAY_API_VERSION", "MINIKUBE_KUBERNETES_VERSION"):
        assert re.fullmatch(r"v\d+\.\d+\.\d+", _mk_var(var)), var
    up = _make_n("kind-up")
    assert f"--image {_mk_var('KIND_NODE_IMAGE')}" in up
    assert f"--version {_mk_var('TRAEFIK_CHART_VERSION')}" in up
    assert f"--version {_mk_var('METRICS_SERVER_CHART_VERSION')}" in up
    assert f"/download/{_mk_var('GATEWAY_API_VERSION')}/standard-install.yaml" in up
    assert f"--kubernetes-version {_mk_var('MINIKUBE_KUBERNETES_VERSION')}" in _make_n("minikube-up")
    # Our charts' third-party images: a patch release, never a floating major.
    pg = [yaml.safe_load((ROOT / f"charts/{c}/values.yaml").read_text())["postgresql"]["image"]
          for c in ("user-service", "tweet-service", "feed-service")]
    redis = yaml.safe_load((ROOT / "charts/chirp/values.yaml").read_text())["redis"]["image"]
    for image in [*pg, redis]:
        assert re.fullmatch(r"\d+\.\d+(\.\d+)?-alpine[\d.]*", image["tag"]) or image["digest"], image
    # k8s/README.md lists each pin with its version.
    readme = (ROOT / "k8s/README.md").read_text()
    for var in ("KIND_NODE_IMAGE", "TRAEFIK_CHART_VERSION", "METRICS_SERVER_CHART_VERSION",
                "GATEWAY_API_VERSION", "MINIKUBE_KUBERNETES_VERSION"):
        assert _mk_var(var).split("@")[0].removeprefix("kindest/node:") in readme, var
    for image in [*pg, redis]:
        assert image["tag"] in readme


def test_make_kind_up_installs_crds_before_the_controller_that_needs_them():
    out = _make_n("kind-up")
    _in_order(out, ["check-tools.sh docker kind kubectl helm", "--config k8s/kind/cluster.yaml",
                    "kubectl apply --server-side", "standard-install.yaml",
                    "condition=Established", "httproutes.gateway.networking.k8s.io",
                    "traefik --repo https://traefik.github.io/charts", "-f k8s/kind/traefik-values.yaml",
                    "metrics-server", "--kubelet-insecure-tls"])


def test_make_minikube_up_sets_up_storage_that_follows_the_pod():
    out = _make_n("minikube-up")
    assert "--nodes 3" in out and "addons enable storage-provisioner-rancher" in out
    assert "rollout status deploy/local-path-provisioner" in out
    values = yaml.safe_load((ROOT / "k8s/values/minikube.yaml").read_text())
    for svc in ("user-service", "tweet-service", "feed-service"):
        assert values[svc]["postgresql"]["persistence"]["storageClass"] == "local-path"


def test_make_deploy_kind_and_minikube():
    kind = _make_n("deploy", "CLUSTER=kind", "IMAGE_TAG=t1")
    assert "check-tools.sh docker kind kubectl helm" in kind
    assert ("load-images.sh kind chirp chirp/user-service:t1 chirp/tweet-service:t1 "
            "chirp/feed-service:t1") in kind
    assert "-f k8s/values/kind.yaml" in kind and "--wait" in kind
    assert "--set tweet-service.image.tag=t1" in kind
    assert "--set feed-service.image.tag=t1" in kind
    assert "--reset-then-reuse-values" in kind
    mini = _make_n("deploy", "CLUSTER=minikube", "IMAGE_TAG=t1")
    assert "check-tools.sh docker minikube kubectl helm" in mini
    assert "load-images.sh minikube - chirp/user-service:t1" in mini
    assert "-f k8s/values/minikube.yaml" in mini


def test_make_scale_goes_through_helm():
    out = _make_n("scale", "SERVICE=tweet", "REPLICAS=5")
    assert "helm upgrade chirp charts/chirp" in out and "--reset-then-reuse-values" in out
    assert "--set tweet-service.replicaCount=5" in out
    assert "kubectl" not in out.replace("KUBECTL=kubectl", "")
    for bad in (["SERVICE=nope", "REPLICAS=1"], ["SERVICE=user"]):
        res = subprocess.run(["make", "-C", ROOT, "scale", *bad], capture_output=True, text=True)
        assert res.returncode != 0


@pytest.mark.parametrize("target", ["kind-up", "minikube-up", "deploy", "e2e", "scale", "rollout-check",
                                    "undeploy", "kind-down", "minikube-down"])
def test_cluster_targets_use_your_tools_not_the_linux_amd64_ones(target):
    out = _make_n(target, "SERVICE=user", "REPLICAS=2")
    assert ".tools" not in out and "k8s-tools" not in out and "install-tools" not in out
    assert "check-tools.sh" in out


def test_make_e2e_needs_only_python():
    out = _make_n("-B", "e2e")  # -B: show the venv steps even if .e2e-venv exists
    assert "-m venv .e2e-venv" in out and "tests/k8s/e2e/requirements.txt" in out
    assert ".e2e-venv/bin/python -m pytest tests/k8s/e2e" in out
    reqs = [ln for ln in (ROOT / "tests/k8s/e2e/requirements.txt").read_text().splitlines()
            if ln and not ln.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[\w.]+", r) for r in reqs) and len(reqs) == 1, reqs


def test_make_undeploy_deletes_the_kept_volumes_and_passwords():
    out = _make_n("undeploy")
    assert "helm uninstall chirp" in out
    assert "delete pvc,secret" in out and "app.kubernetes.io/component=database" in out


# --- k8s/tools scripts, run against stand-in binaries -------------------------------

def _fake(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)


def _check_tools(bin_dir: Path, *tools: str):
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}
    return subprocess.run(["bash", ROOT / "k8s/tools/check-tools.sh", *tools],
                          capture_output=True, text=True, env=env)


def test_check_tools_names_the_minimum_versions(tmp_path):
    _fake(tmp_path, "helm", "echo v4.1.4")
    _fake(tmp_path, "kubectl", "echo 'Client Version: v1.36.1'")
    _fake(tmp_path, "kind", "echo 'kind v0.32.0 go1.25 linux/amd64'")
    _fake(tmp_path, "docker", "echo 29.1.3")
    ok = _check_tools(tmp_path, "docker", "kind", "kubectl", "helm")
    assert ok.returncode == 0, ok.stderr
    _fake(tmp_path, "helm", "echo v3.12.3")
    _fake(tmp_path, "kind", "echo 'kind v0.20.0 go1.20 darwin/arm64'")
    old = _check_tools(tmp_path, "kind", "kubectl", "helm", "minikube")
    assert old.returncode == 1
    assert "helm 3.12.3 is too old; install helm >= 3.17.0" in old.stderr
    assert "kind 0.20.0 is too old; install kind >= 0.32.0" in old.stderr
    assert "minikube not found on PATH; install minikube >= 1.38.1" in old.stderr
    assert "kubectl" not in old.stderr
    # Numeric, not lexical: 3.9 < 3.17 < 3.100.
    _fake(tmp_path, "helm", "echo v3.9.9")
    assert "helm 3.9.9 is too old" in _check_tools(tmp_path, "helm").stderr
    _fake(tmp_path, "helm", "echo v3.100.0")
    assert _check_tools(tmp_path, "helm").returncode == 0


def test_load_images_falls_back_to_an_archive_of_this_platform(tmp_path):
    """Docker's containerd image store: `kind load docker-image` fails, the
    script saves this platform only and loads the archive."""
    log = tmp_path / "calls.log"
    _fake(tmp_path, "kind", f'echo "kind $*" >> {log}; [ "$2" = image-archive ]')
    _fake(tmp_path, "docker", f'echo "docker $*" >> {log}; '
                              'case "$1" in version) echo linux/arm64;; image) : > "$6";; esac')
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    res = subprocess.run(["bash", ROOT / "k8s/tools/load-images.sh", "kind", "chirp", "a:1", "b:1"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    calls = log.read_text().splitlines()
    assert calls[0] == "kind load docker-image --name chirp a:1 b:1"
    assert calls[2].startswith("docker image save --platform linux/arm64 -o ") and calls[2].endswith(" a:1 b:1")
    assert calls[3].startswith("kind load image-archive --name chirp ")
    # And when docker-image works, nothing else runs.
    log.unlink()
    _fake(tmp_path, "kind", f'echo "kind $*" >> {log}')
    res = subprocess.run(["bash", ROOT / "k8s/tools/load-images.sh", "kind", "chirp", "a:1"],
                         capture_output=True, text=True, env=env)
    assert res.returncode == 0 and log.read_text().splitlines() == ["kind load docker-image --name chirp a:1"]


# --- the rolling-update check, against a local stand-in for the Ingress ----------

class _Ingress:
    """Answers 2xx to everything, except the request numbered `fail_at` (502)."""

    def __init__(self, fail_at: int | None):
        import http.server
        import threading

        outer = self
        self.count = 0
        self.hosts: set[str] = set()
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                with lock:
                    outer.count += 1
                    n = outer.count
                    outer.hosts.add(self.headers["Host"])
                status = 502 if n == fail_at else (201 if self.command == "POST" else 200)
                body = b'{"data": []}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("fail_at,command_rc,ok", [(None, 0, True), (40, 0, False), (None, 3, False)])
def test_rollout_check_fails_on_a_single_failed_request(fail_at, command_rc, ok):
    ingress = _Ingress(fail_at)
    try:
        env = {"CHIRP_E2E_URL": ingress.url, "CHIRP_E2E_HOST": "chirp.test", "PATH": "/usr/bin:/bin"}
        res = subprocess.run(
            [sys.executable, ROOT / "tests/k8s/e2e/rollout_under_load.py", "--settle", "0.5",
             "--min-requests", "50", "--",
             sys.executable, "-c", f"import time, sys; time.sleep(0.5); sys.exit({command_rc})"],
            capture_output=True, text=True, env=env, timeout=60)
    finally:
        ingress.close()
    assert ingress.count >= 50 and ingress.hosts == {"chirp.test"}
    assert (res.returncode == 0) == ok, res.stdout + res.stderr
    assert ("zero failed requests" in res.stdout) == ok
    if fail_at:
        assert "-> 502" in res.stdout


@pytest.mark.parametrize("values", sorted((ROOT / "k8s/values").glob("*.yaml")), ids=lambda p: p.name)
def test_deploy_values_leave_the_replica_count_to_make_scale(values):
    """`make deploy` passes these files on every run, after the release's
    reused values: a replicaCount here would undo `make scale`."""
    doc = yaml.safe_load(values.read_text()) or {}
    for svc in ("user-service", "tweet-service", "feed-service"):
        assert "replicaCount" not in (doc.get(svc) or {}), values.name
