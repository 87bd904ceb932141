"""/healthz, /readyz, /metrics and /openapi.json on both services."""
import pytest

from contract.api import assert_problem, create_user, metric

SERVICES = ["users", "tweets"]


def _app_without_database(stack, service: str, closed_port_url: str):
    """The service on a database that cannot be reached."""
    if stack.name == "postgres":
        url = closed_port_url.replace("http://", "postgresql+psycopg2://chirp@") + "/chirp"
    else:
        url = "sqlite:////nonexistent-dir/chirp.db"
    return stack.app(service, database_url=url)


@pytest.mark.parametrize("service", SERVICES)
def test_healthz_and_readyz_are_200(stack, service):
    client = getattr(stack, service)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_without_its_database_a_service_is_alive_but_not_ready(stack, service, closed_port_url):
    client = _app_without_database(stack, service, closed_port_url).test_client()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert_problem(response, 503)
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("service", SERVICES)
def test_database_down_is_a_503_not_a_500(stack, service, closed_port_url):
    client = _app_without_database(stack, service, closed_port_url).test_client()
    response = client.get(f"/{service}/1")
    assert_problem(response, 503)
    assert "Retry-After" in response.headers


def test_a_cache_outage_does_not_make_the_user_service_unready(stack, closed_port_url):
    app = stack.app("users", redis_url=closed_port_url.replace("http", "redis"))
    assert app.test_client().get("/readyz").status_code == 200


@pytest.mark.parametrize("service", SERVICES)
def test_metrics_count_requests_by_route_and_status(stack, service):
    client = getattr(stack, service)
    route = f"/{service}/<id:{service[:-1]}_id>"
    labels = {"method": "GET", "route": route, "status": "404"}
    before = client.get("/metrics").get_data(as_text=True)
    client.get(f"/{service}/1")
    client.get(f"/{service}/2")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    after = response.get_data(as_text=True)
    assert metric(after, "http_requests_total", **labels) == metric(before, "http_requests_total", **labels) + 2
    assert metric(after, "http_request_duration_seconds_count", **labels) == \
        metric(before, "http_request_duration_seconds_count", **labels) + 2
    assert metric(after, "http_request_duration_seconds_bucket", le="+Inf", **labels) >= 2


def test_metrics_count_user_cache_hits_and_misses(postgres_stack):
    stack = postgres_stack
    create_user(stack)
    before = stack.users.get("/metrics").get_data(as_text=True)
    stack.users.get("/users/1")  # miss, then cached
    stack.users.get("/users/1")  # hit
    stack.users.get("/users?ids=1,2")  # one hit, one miss
    after = stack.users.get("/metrics").get_data(as_text=True)

    def delta(result):
        return (metric(after, "user_cache_lookups_total", result=result)
                - metric(before, "user_cache_lookups_total", result=result))

    assert (delta("hit"), delta("miss")) == (2, 2)


def test_metrics_count_user_cache_errors_when_redis_is_down(stack, closed_port_url):
    create_user(stack)
    client = stack.app("users", redis_url=closed_port_url.replace("http", "redis")).test_client()
    before = client.get("/metrics").get_data(as_text=True)
    assert client.get("/users/1").status_code == 200
    after = client.get("/metrics").get_data(as_text=True)
    assert metric(after, "user_cache_lookups_total", result="error") == \
        metric(before, "user_cache_lookups_total", result="error") + 1


def test_metrics_are_summed_across_gunicorn_workers(stack):
    labels = {"method": "GET", "route": "/healthz", "status": "200"}

    def served() -> float:
        return metric(stack.replica_get("/metrics").text, "http_requests_total", **labels)

    before = served()
    for _ in range(20):  # a new connection each: spread over both workers
        assert stack.replica_get("/healthz").status_code == 200
    assert served() == before + 20


@pytest.mark.parametrize("service", SERVICES)
def test_openapi_is_3_1_and_documents_every_api_route(stack, service):
    app = stack.user_app if service == "users" else stack.tweet_app
    spec = getattr(stack, service).get("/openapi.json").json
    assert spec["openapi"].startswith("3.1.")
    documented = {(path, method.upper()) for path, item in spec["paths"].items() for method in item}
    routes = {
        (rule.rule.replace("<id:", "{").replace(">", "}"), method)
        for rule in app.url_map.iter_rules() if not rule.endpoint.startswith(("openapi.", "static"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert {("/healthz", "GET"), ("/readyz", "GET"), ("/metrics", "GET")} <= routes
    assert routes == documented
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            statuses = set(operation["responses"])
            assert any(s.startswith("2") for s in statuses), (path, method)
            # Only liveness and metrics touch no dependency; all else may 503.
            assert ("503" in statuses) == (path not in ("/healthz", "/metrics")), (path, method)
            if method in ("post", "patch"):
                assert {"400", "413", "415", "422"} <= statuses, (path, method)
                assert operation["requestBody"]["required"] is True
