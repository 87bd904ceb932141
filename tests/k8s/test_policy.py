"""Policy over the rendered objects: security context, resources, probes,
selectors, ports, env, NetworkPolicy reachability, Ingress/HTTPRoute routing."""
from __future__ import annotations

import base64
from urllib.parse import urlsplit

import pytest

from conftest import NAMESPACE, RELEASE, SCENARIOS, by_kind, find, pod_specs, render

CHIRP = [("chirp", s) for s in SCENARIOS["chirp"]]
ALL = [(c, s) for c, scen in SCENARIOS.items() for s in scen]
SERVICES = {"user-service": 5001, "tweet-service": 5002, "feed-service": 5003}


def containers(spec):
    return [*spec.get("initContainers", []), *spec["containers"]]


# --- Pod security, resources, probes -----------------------------------------

@pytest.mark.parametrize("chart,scenario", ALL)
def test_every_container_meets_the_restricted_profile(chart, scenario):
    for owner, spec, _ in pod_specs(render("helm4", chart, scenario)):
        where = f"{owner['kind']}/{owner['metadata']['name']}"
        psc = spec.get("securityContext", {})
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC"), where
        assert not any("hostPath" in v for v in spec.get("volumes", [])), where
        assert spec.get("automountServiceAccountToken") is False, where
        for c in containers(spec):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("privileged") in (None, False), where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, where
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            assert isinstance(uid, int) and uid > 0, where
            seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where


@pytest.mark.parametrize("chart,scenario", ALL)
def test_every_container_has_requests_and_limits(chart, scenario):
    for owner, spec, _ in pod_specs(render("helm4", chart, scenario)):
        for c in containers(spec):
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), (owner["metadata"]["name"], c["name"], part)


@pytest.mark.parametrize("chart,scenario", ALL)
def test_long_running_containers_have_three_probes(chart, scenario):
    for owner, spec, _ in pod_specs(render("helm4", chart, scenario)):
        if owner["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in spec["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, (owner["metadata"]["name"], c["name"], probe)


def _api_deployments(docs):
    for d in by_kind(docs, "Deployment"):
        name = d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        if name in SERVICES:
            yield name, d


def _configmap_env(docs, container):
    env = {}
    for src in container.get("envFrom", []):
        cm = find(docs, "ConfigMap", src["configMapRef"]["name"])
        env.update(cm["data"])
    return env


@pytest.mark.parametrize("chart,scenario", ALL)
def test_service_pods_probe_lifecycle_and_rollout(chart, scenario):
    docs = render("helm4", chart, scenario)
    deployments = list(_api_deployments(docs))
    assert deployments
    for name, d in deployments:
        spec = d["spec"]["template"]["spec"]
        (c,) = spec["containers"]
        assert c["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pre_stop = c["lifecycle"]["preStop"]
        assert set(pre_stop) == {"sleep"}, "preStop must not need a shell"
        env = _configmap_env(docs, c)
        graceful = int(env["GUNICORN_GRACEFUL_TIMEOUT"])
        assert spec["terminationGracePeriodSeconds"] > pre_stop["sleep"]["seconds"] + graceful
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts  # read-only root fs: scratch and prometheus multiprocess dir
        assert spec["securityContext"]["runAsUser"] == 10001
        spread = spec.get("topologySpreadConstraints", [])
        for t in spread:
            assert t["whenUnsatisfiable"] == "ScheduleAnyway"  # preferred, never blocking
        anti = spec["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti


@pytest.mark.parametrize("chart,scenario", CHIRP)
def test_replicas_and_hpa(chart, scenario):
    docs = render("helm4", chart, scenario)
    hpas = {h["spec"]["scaleTargetRef"]["name"]: h for h in by_kind(docs, "HorizontalPodAutoscaler")}
    for name, d in _api_deployments(docs):
        if d["metadata"]["name"] in hpas:
            assert "replicas" not in d["spec"], "the HPA owns the replica count"
            h = hpas[d["metadata"]["name"]]
            assert h["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 1 <= h["spec"]["minReplicas"] <= h["spec"]["maxReplicas"]
        else:
            assert d["spec"]["replicas"] >= 1
            if scenario == "replicas-5":
                assert d["spec"]["replicas"] == 5
    assert (len(hpas) == 2) == (scenario == "hpa")


# --- Labels, selectors, ports ---------------------------------------------------

REQUIRED_LABELS = {"app.kubernetes.io/name", "app.kubernetes.io/instance",
                   "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of",
                   "app.kubernetes.io/version", "helm.sh/chart"}


def matches(selector: dict, labels: dict) -> bool:
    for k, v in selector.get("matchLabels", {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions", []):
        val, op = labels.get(e["key"]), e["operator"]
        if op == "In" and val not in e["values"]:
            return False
        if op == "NotIn" and val in e["values"]:
            return False
        if op == "Exists" and e["key"] not in labels:
            return False
        if op == "DoesNotExist" and e["key"] in labels:
            return False
    return True


@pytest.mark.parametrize("chart,scenario", ALL)
def test_recommended_labels_everywhere(chart, scenario):
    for d in render("helm4", chart, scenario):
        assert REQUIRED_LABELS <= set(d["metadata"].get("labels", {})), (d["kind"], d["metadata"]["name"])
        assert d["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE


@pytest.mark.parametrize("chart,scenario", ALL)
def test_selectors_match_their_pods(chart, scenario):
    docs = render("helm4", chart, scenario)
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for w in workloads:
        sel = w["spec"]["selector"]
        assert matches(sel, w["spec"]["template"]["metadata"]["labels"]), w["metadata"]["name"]
        others = [o for o in workloads if o is not w]
        assert not any(matches(sel, o["spec"]["template"]["metadata"]["labels"]) for o in others)
    for pdb in by_kind(docs, "PodDisruptionBudget"):
        hit = [w for w in workloads if matches(pdb["spec"]["selector"], w["spec"]["template"]["metadata"]["labels"])]
        assert len(hit) == 1, pdb["metadata"]["name"]
    for h in by_kind(docs, "HorizontalPodAutoscaler"):
        find(docs, "Deployment", h["spec"]["scaleTargetRef"]["name"])


@pytest.mark.parametrize("chart,scenario", ALL)
def test_services_select_one_workload_and_hit_its_ports(chart, scenario):
    docs = render("helm4", chart, scenario)
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for svc in by_kind(docs, "Service"):
        sel = {"matchLabels": svc["spec"]["selector"]}
        hit = [w for w in workloads if matches(sel, w["spec"]["template"]["metadata"]["labels"])]
        assert len(hit) == 1, svc["metadata"]["name"]
        ports = [p for c in hit[0]["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])]
        for sp in svc["spec"]["ports"]:
            target = sp.get("targetPort", sp["port"])
            assert any(p["name"] == target or p["containerPort"] == target for p in ports), (svc["metadata"]["name"], sp)
    for name, d in _api_deployments(docs):
        (c,) = d["spec"]["template"]["spec"]["containers"]
        port = c["ports"][0]["containerPort"]
        assert _configmap_env(docs, c)["PORT"] == str(port)
        svc = find(docs, "Service", d["metadata"]["name"])
        assert svc["spec"]["ports"][0]["port"] == port == SERVICES[name]


@pytest.mark.parametrize("chart,scenario", ALL)
def test_images(chart, scenario):
    docs = render("helm4", chart, scenario)
    for owner, spec, labels in pod_specs(docs):
        for c in containers(spec):
            img = c["image"]
            assert ("@sha256:" in img) or (":" in img.rsplit("/", 1)[-1]), img
            assert not img.endswith(":latest"), img
    for name, d in _api_deployments(docs):
        img = d["spec"]["template"]["spec"]["containers"][0]["image"]
        assert img.rsplit("@", 1)[0].rsplit(":", 1)[0].endswith(f"chirp/{name}"), img
        if scenario == "digests":
            assert "@sha256:" in img


# --- Environment the code reads ------------------------------------------------

def _secret_value(docs, ref):
    name, key = ref["name"], ref["key"]
    hits = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == name]
    if not hits:
        return None  # an existing Secret named by the user
    return base64.b64decode(hits[0]["data"][key]).decode()


def _env(docs, c):
    env = dict(_configmap_env(docs, c))
    for e in c.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
        else:
            env[e["name"]] = ("secret", e["valueFrom"]["secretKeyRef"])
    return env


@pytest.mark.parametrize("chart,scenario", ALL)
def test_env_vars_the_code_reads_are_set(chart, scenario):
    docs = render("helm4", chart, scenario)
    for name, d in _api_deployments(docs):
        env = _env(docs, d["spec"]["template"]["spec"]["containers"][0])
        expected = {"DATABASE_URL", "PORT", "HOST", "LOG_LEVEL", "WEB_CONCURRENCY", "GUNICORN_THREADS",
                    "GUNICORN_TIMEOUT", "GUNICORN_GRACEFUL_TIMEOUT", "GUNICORN_KEEPALIVE"}
        # Whom each calls, and where its events go (docs/events.md).
        if name == "user-service":
            expected |= {"CACHE_TTL_SECONDS", "TWEET_SERVICE_URL", "FEED_SERVICE_URL"}
            if chart == "chirp":
                expected |= {"REDIS_URL"}
        elif name == "tweet-service":
            expected |= {"USER_SERVICE_URL", "FEED_SERVICE_URL"}
        else:
            expected |= {"USER_SERVICE_URL", "TWEET_SERVICE_URL"}
            if chart == "chirp":
                expected |= {"REDIS_URL"}
        assert expected <= set(env), (name, expected - set(env))
        if name == "tweet-service" and chart == "chirp":
            url = urlsplit(env["USER_SERVICE_URL"])
            users = find(docs, "Service", f"{RELEASE}-user-service")
            assert (url.hostname, url.port) == (users["metadata"]["name"], users["spec"]["ports"][0]["port"])


@pytest.mark.parametrize("chart,scenario", ALL)
def test_each_service_uses_its_own_database(chart, scenario):
    docs = render("helm4", chart, scenario)
    seen = {}
    for name, d in _api_deployments(docs):
        env = _env(docs, d["spec"]["template"]["spec"]["containers"][0])
        kind, ref = env["DATABASE_URL"]
        url = _secret_value(docs, ref)
        if url is None:
            continue  # externalDatabase.existingSecret
        parts = urlsplit(url)
        assert parts.scheme.startswith("postgresql")
        own_db = [s for s in by_kind(docs, "StatefulSet")
                  if s["metadata"]["labels"]["app.kubernetes.io/name"] == name]
        if own_db:
            (sts,) = own_db
            svc = find(docs, "Service", sts["metadata"]["name"])
            assert parts.hostname == svc["metadata"]["name"]
            assert parts.port == svc["spec"]["ports"][0]["port"]
            db_env = {e["name"]: e.get("value") for e in sts["spec"]["template"]["spec"]["containers"][0]["env"]}
            assert parts.path.lstrip("/") == db_env["POSTGRES_DB"]
            assert parts.username == db_env["POSTGRES_USER"]
        seen[name] = (parts.hostname, parts.path)
    assert len(set(seen.values())) == len(seen), seen


@pytest.mark.parametrize("chart,scenario", CHIRP)
def test_redis_url_points_at_the_release_redis(chart, scenario):
    docs = render("helm4", chart, scenario)
    (d,) = [d for n, d in _api_deployments(docs) if n == "user-service"]
    _, ref = _env(docs, d["spec"]["template"]["spec"]["containers"][0])["REDIS_URL"]
    url = urlsplit(_secret_value(docs, ref))
    if scenario == "external-db-redis":
        assert not by_kind([x for x in docs if x["metadata"]["name"].endswith("-redis")], "Deployment")
        assert url.hostname == "cache.example.internal"
    else:
        svc = find(docs, "Service", f"{RELEASE}-redis")
        assert (url.scheme, url.hostname, url.port) == ("redis", svc["metadata"]["name"], svc["spec"]["ports"][0]["port"])


# --- Migrations -----------------------------------------------------------------

@pytest.mark.parametrize("chart,scenario", ALL)
def test_every_pod_migrates_first_in_an_init_container(chart, scenario):
    """No hook Job to order against `helm --wait`: each pod's init container
    waits for the database and migrates under an advisory lock."""
    docs = render("helm4", chart, scenario)
    assert not by_kind(docs, "Job")
    assert not any("helm.sh/hook" in d["metadata"].get("annotations", {})
                   for d in docs if d["kind"] != "Pod"), "only `helm test` pods are hooks"
    for name, d in _api_deployments(docs):
        spec = d["spec"]["template"]["spec"]
        # The serving container never migrates.
        assert "command" not in spec["containers"][0]
        if scenario == "minimal":
            assert not spec.get("initContainers")
            continue
        (init,) = spec["initContainers"]
        module = name.replace("-", "_")
        assert init["command"][:4] == ["python", "-m", module, "upgrade"]
        assert init["command"][4] == "--wait" and int(init["command"][5]) >= 60
        assert init["image"] == spec["containers"][0]["image"]
        assert _env(docs, init)["DATABASE_URL"] == _env(docs, spec["containers"][0])["DATABASE_URL"]


@pytest.mark.parametrize("chart,scenario", ALL)
def test_database_password_is_generated_not_hardcoded(chart, scenario):
    docs = render("helm4", chart, scenario)
    for s in by_kind(docs, "Secret"):
        if "password" in s["data"]:
            pw = base64.b64decode(s["data"]["password"]).decode()
            assert len(pw) >= 32 and pw.isalnum()


# --- NetworkPolicy reachability ------------------------------------------------------

def _pod(name, component, ns=NAMESPACE, ports=(), **extra):
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/instance": RELEASE,
              "app.kubernetes.io/component": component, **extra}
    return {"ns": ns, "labels": labels, "ports": dict(ports)}


def _population(docs):
    """The pods of the release (from their templates) plus outsiders."""
    pods = {}
    for owner, spec, labels in pod_specs(docs):
        ports = {p["name"]: p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
        key = f"{labels['app.kubernetes.io/name']}/{labels['app.kubernetes.io/component']}"
        pods[key] = {"ns": NAMESPACE, "labels": labels, "ports": ports}
    pods["traefik"] = {"ns": "traefik", "labels": {"app.kubernetes.io/name": "traefik"}, "ports": {}}
    # A pod that looks like the controller but runs in another namespace.
    pods["traefik-lookalike"] = {"ns": "default", "labels": {"app.kubernetes.io/name": "traefik"}, "ports": {}}
    pods["stranger"] = {"ns": NAMESPACE, "labels": {"app": "stranger"}, "ports": {}}
    pods["other-ns"] = {"ns": "default", "labels": {"app.kubernetes.io/name": "tweet-service",
                                                    "app.kubernetes.io/instance": RELEASE,
                                                    "app.kubernetes.io/component": "api"}, "ports": {}}
    return pods


def _peer_ok(peer, pod):
    ns_labels = {"kubernetes.io/metadata.name": pod["ns"]}
    if "ipBlock" in peer:
        return True
    if "namespaceSelector" in peer:
        if not matches(peer["namespaceSelector"], ns_labels):
            return False
    elif pod["ns"] != NAMESPACE:
        return False
    return "podSelector" not in peer or matches(peer["podSelector"], pod["labels"])


def _port_ok(rule, dst, port):
    if "ports" not in rule:
        return True
    for p in rule["ports"]:
        want = p["port"]
        if want == port or dst["ports"].get(want) == port:
            return True
    return False


def _allowed(policies, src, dst, port):
    def applies(np, pod, ptype):
        return pod["ns"] == NAMESPACE and ptype in np["spec"]["policyTypes"] and matches(np["spec"]["podSelector"], pod["labels"])

    ing = [np for np in policies if applies(np, dst, "Ingress")]
    if ing and not any(
        _port_ok(rule, dst, port) and ("from" not in rule or any(_peer_ok(p, src) for p in rule["from"]))
        for np in ing for rule in np["spec"].get("ingress", [])
    ):
        return False
    eg = [np for np in policies if applies(np, src, "Egress")]
    if eg and not any(
        _port_ok(rule, dst, port) and ("to" not in rule or any(_peer_ok(p, dst) for p in rule["to"]))
        for np in eg for rule in np["spec"].get("egress", [])
    ):
        return False
    return True


# (source, destination, port) that must be open; every other pair among the
# population, on each destination port, must be closed.
EXPECTED_OPEN = {
    ("traefik", "user-service/api", 5001),
    ("traefik", "tweet-service/api", 5002),
    ("traefik", "feed-service/api", 5003),
    ("tweet-service/api", "user-service/api", 5001),
    ("feed-service/api", "user-service/api", 5001),
    ("feed-service/api", "tweet-service/api", 5002),
    # Events: producers to consumers' POST /internal/events (docs/events.md).
    ("user-service/api", "tweet-service/api", 5002),
    ("user-service/api", "feed-service/api", 5003),
    ("tweet-service/api", "feed-service/api", 5003),
    ("user-service/api", "user-service/database", 5432),
    ("tweet-service/api", "tweet-service/database", 5432),
    ("feed-service/api", "feed-service/database", 5432),
    ("user-service/api", "redis/cache", 6379),
    ("feed-service/api", "redis/cache", 6379),
    # helm test pods of the release (documented in the charts' READMEs).
    *((f"{tester}/test", f"{service}/api", port)
      for tester in ("chirp", *SERVICES) for service, port in SERVICES.items()),
}


@pytest.mark.parametrize("scenario", ["default", "hpa", "gateway-no-ingress", "values-ci"])
def test_network_policies_allow_exactly_the_designed_paths(scenario):
    docs = render("helm4", "chirp", scenario)
    policies = by_kind(docs, "NetworkPolicy")
    pods = _population(docs)
    # Unselected pods (helm test pods) may open connections; what
    # matters is who may be reached: every server pod is selected.
    servers = {k: p for k, p in pods.items() if p["ports"]}
    assert set(servers) == {"user-service/api", "tweet-service/api", "feed-service/api",
                            "user-service/database", "tweet-service/database",
                            "feed-service/database", "redis/cache"}
    for dst_key, dst in servers.items():
        assert any(matches(np["spec"]["podSelector"], dst["labels"]) and
                   set(np["spec"]["policyTypes"]) == {"Ingress", "Egress"} for np in policies), dst_key
        for port in dst["ports"].values():
            for src_key, src in pods.items():
                if src_key == dst_key:
                    continue
                want = (src_key, dst_key, port) in EXPECTED_OPEN
                assert _allowed(policies, src, dst, port) == want, (src_key, dst_key, port)


def test_network_policies_with_external_backends():
    docs = render("helm4", "chirp", "external-db-redis")
    policies = by_kind(docs, "NetworkPolicy")
    pods = _population(docs)
    outside_db = {"ns": "elsewhere", "labels": {}, "ports": {"postgresql": 5432}}
    outside_redis = {"ns": "elsewhere", "labels": {}, "ports": {"redis": 6379}}
    assert _allowed(policies, pods["user-service/api"], outside_db, 5432)
    assert _allowed(policies, pods["tweet-service/api"], outside_db, 5432)
    assert _allowed(policies, pods["feed-service/api"], outside_db, 5432)
    assert _allowed(policies, pods["user-service/api"], outside_redis, 6379)
    assert _allowed(policies, pods["feed-service/api"], outside_redis, 6379)
    assert not _allowed(policies, pods["tweet-service/api"], outside_redis, 6379)
    assert not _allowed(policies, pods["user-service/api"], outside_db, 8080)


def test_minikube_values_admit_the_addon_controller():
    docs = render("helm4", "chirp", "values-minikube")
    policies = by_kind(docs, "NetworkPolicy")
    pods = _population(docs)
    nginx = {"ns": "ingress-nginx", "labels": {"app.kubernetes.io/name": "ingress-nginx"}, "ports": {}}
    assert _allowed(policies, nginx, pods["user-service/api"], 5001)
    assert _allowed(policies, nginx, pods["tweet-service/api"], 5002)
    assert _allowed(policies, nginx, pods["feed-service/api"], 5003)
    assert not _allowed(policies, pods["traefik"], pods["user-service/api"], 5001)
    assert find(docs, "Ingress", RELEASE)["spec"]["ingressClassName"] == "nginx"


# --- Ingress and HTTPRoute ------------------------------------------------------------

# The Ingress (and HTTPRoute) prefixes and the service each reaches.
ROUTES = {"/users": "user-service", "/tweets": "tweet-service",
          "/follows": "feed-service", "/timelines": "feed-service"}


def _backend_ok(docs, name, port, service):
    svc = find(docs, "Service", name)
    assert svc["spec"]["selector"]["app.kubernetes.io/name"] == service
    assert port == svc["spec"]["ports"][0]["port"] == SERVICES[service]


@pytest.mark.parametrize("chart,scenario", CHIRP)
def test_ingress_routes_both_prefixes_on_one_host(chart, scenario):
    docs = render("helm4", chart, scenario)
    ingresses = by_kind(docs, "Ingress")
    if scenario == "gateway-no-ingress":
        assert not ingresses
        return
    (ing,) = ingresses
    assert ing["spec"]["ingressClassName"]
    (rule,) = ing["spec"]["rules"]
    assert rule["host"]
    paths = {p["path"]: p for p in rule["http"]["paths"]}
    assert set(paths) == set(ROUTES)
    for prefix, service in ROUTES.items():
        p = paths[prefix]
        assert p["pathType"] == "Prefix"
        b = p["backend"]["service"]
        _backend_ok(docs, b["name"], b["port"]["number"], service)
    if scenario == "ingress-tls":
        assert ing["spec"]["tls"] == [{"hosts": ["chirp.example.org"], "secretName": "chirp-tls"}]


@pytest.mark.parametrize("chart,scenario", CHIRP)
def test_httproute_is_off_by_default_and_mirrors_the_ingress(chart, scenario):
    docs = render("helm4", chart, scenario)
    routes = by_kind(docs, "HTTPRoute")
    if scenario != "gateway-no-ingress":
        assert not routes
        return
    (rt,) = routes
    assert rt["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert set(rt["spec"]) <= {"parentRefs", "hostnames", "rules"}
    assert rt["spec"]["parentRefs"] and all("name" in p for p in rt["spec"]["parentRefs"])
    assert rt["spec"]["hostnames"] == ["chirp.localhost"]
    got = {}
    for rule in rt["spec"]["rules"]:
        assert set(rule) <= {"matches", "backendRefs"}
        (m,) = rule["matches"]
        assert m["path"]["type"] == "PathPrefix"
        (b,) = rule["backendRefs"]
        assert set(b) <= {"name", "port"}
        got[m["path"]["value"]] = b
    assert set(got) == set(ROUTES)
    for prefix, service in ROUTES.items():
        _backend_ok(docs, got[prefix]["name"], got[prefix]["port"], service)


def test_helm_test_pods_call_the_services_through_their_services():
    docs = render("helm4", "chirp", "default")
    tests = [p for p in by_kind(docs, "Pod") if p["metadata"]["annotations"].get("helm.sh/hook") == "test"]
    assert len(tests) == 4
    script = "\n".join(" ".join(p["spec"]["containers"][0]["command"]) for p in tests)
    for svc in ("chirp-user-service:5001", "chirp-tweet-service:5002", "chirp-feed-service:5003"):
        assert f"http://{svc}" in script


@pytest.mark.parametrize("chart,scenario", ALL)
def test_database_password_outlives_the_release_like_its_volume(chart, scenario):
    """`helm uninstall` keeps the PVCs (StatefulSet) and this Secret, so a
    reinstall reads the same password back for the same data."""
    docs = render("helm4", chart, scenario)
    for sts in by_kind(docs, "StatefulSet"):
        if not sts["spec"].get("volumeClaimTemplates"):
            continue
        secrets = [s for s in by_kind(docs, "Secret") if s["metadata"]["name"] == sts["metadata"]["name"]]
        (secret,) = secrets
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
