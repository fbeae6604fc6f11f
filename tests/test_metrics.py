"""/metrics: off without operator credentials, the operator's only with them,
Prometheus text.  (Where the credentials come from: tests/test_tap.py.)

Runs on both stores (the `server` fixture).  The collectors are process-wide,
so the tests compare values before and after their own requests.
"""

import pytest
import pytest_twisted
from prometheus_client.parser import text_string_to_metric_families
from twisted.python import usage

from hiitrack.metrics import METRICS
from hiitrack.tap import METRICS_AUTH_VARIABLE, Options, makeService
from hiitrack.web.events import Event
from hiitrack.web.render import route_of
from tests.http import b64json, path

OPERATOR = ("ops", "s3cret-metrics")
EVENT_ROUTE = "/{user}/{bucket}/event/{name}"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the sample `name` with exactly `labels` in Prometheus text, 0 when it is absent."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return 0.0


def enable(server: object) -> None:
    server.app.metrics_auth = OPERATOR


@pytest_twisted.ensureDeferred
async def test_metrics_are_off_without_the_option(server) -> None:
    answer = await server.client.get("/metrics")
    assert answer.status == 404
    assert answer.json == {"error": "no such path"}


@pytest_twisted.ensureDeferred
async def test_metrics_need_the_operator_credentials(server, user_name) -> None:
    enable(server)
    assert (await server.client.post(path(user_name), {"password": "pw-secret"})).status == 201
    for auth in (None, ("ops", "wrong"), (user_name, "pw-secret"), ("ops2", OPERATOR[1])):
        answer = await server.client.get("/metrics", auth=auth)
        assert answer.status == 401, auth
        assert answer.header("WWW-Authenticate") == 'Basic realm="hiitrack metrics"'
        assert b"hiitrack_" not in answer.body
    answer = await server.client.get("/metrics", auth=OPERATOR)
    assert answer.status == 200
    assert answer.header("Content-Type").startswith("text/plain; version=")


@pytest_twisted.ensureDeferred
async def test_metrics_count_requests_by_route_template_events_commits_and_caches(server, user_name) -> None:
    enable(server)
    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    before = (await client.get("/metrics", auth=OPERATOR)).body.decode()
    for visitor in ("a", "b", "a"):
        answer = await client.post(path(user_name, "site", "event", "Signed up"), {"visitor_id": visitor})
        assert answer.status == 200
    message = b64json([["Paid", "Left"], [["plan", "pro"]]])
    assert (await client.post(path(user_name, "site", "batch"), {"visitor_id": "a", "message": message})).status == 200
    assert (await client.get(path(user_name, "site", "event", "Paid"))).status == 401
    assert (await client.get(path(user_name, "site", "nothing", "here"))).status == 404
    for _ in range(2):
        report = await client.get(path(user_name, "site", "event", "Paid"), auth=(user_name, "pw-secret"))
        assert report.status == 200
    after = (await client.get("/metrics", auth=OPERATOR)).body.decode()

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("hiitrack_http_requests_total", route=EVENT_ROUTE, method="POST", status="200") == 3
    assert grew("hiitrack_http_requests_total", route="/{user}/{bucket}/batch", method="POST", status="200") == 1
    assert grew("hiitrack_http_requests_total", route=EVENT_ROUTE, method="GET", status="401") == 1
    assert grew("hiitrack_http_requests_total", route="other", method="GET", status="404") == 1
    # The raw path never becomes a label: the series stay bounded.
    assert user_name not in after
    assert grew("hiitrack_http_request_seconds_count", route=EVENT_ROUTE) == 6  # 3 hits, 3 reads
    assert grew("hiitrack_events_recorded_total") == 5
    assert grew("hiitrack_store_commit_batches_count") >= 1
    assert grew("hiitrack_store_commit_batches_sum") >= 4
    assert grew("hiitrack_store_commit_seconds_count") >= 1
    assert grew("hiitrack_cache_lookups_total", cache="visitor", result="hit") >= 2
    assert grew("hiitrack_cache_lookups_total", cache="visitor", result="miss") >= 2
    assert 0 <= sample(after, "hiitrack_cache_hit_ratio", cache="visitor") <= 1
    assert sample(after, "hiitrack_cache_limit", cache="visitor") == server.app.tracker._visitors.size
    # The store's own: SQLite keeps the counter rows read last, so the report read again finds them.
    for name, cache in server.app.store.caches().items():
        assert grew("hiitrack_cache_lookups_total", cache=name, result="hit") >= 1
        assert sample(after, "hiitrack_cache_limit", cache=name) == cache.size


def test_route_labels_are_templates() -> None:
    class Unknown:
        pass

    assert route_of(Event) == EVENT_ROUTE
    assert route_of(Unknown()) == "other"
    assert route_of(None) == "other"
    assert "hiitrack_events_recorded" in [c._name for c in METRICS.collectors()]


def service_options(*argv: str, tmp_path: object) -> Options:
    options = Options()
    options.parseOptions(["--store", f"sqlite:{tmp_path}/metrics.db", *argv])
    return options


def test_metrics_auth_option(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(METRICS_AUTH_VARIABLE, raising=False)
    secret = tmp_path / "metrics-auth"
    secret.write_text("ops:pass:with:colons\n")
    options = service_options("--metrics-auth-file", str(secret), tmp_path=tmp_path)
    # The password may hold colons: only the first one separates it from the login.
    assert makeService(options).app.metrics_auth == ("ops", "pass:with:colons")
    for bad in ("nocolon", ":pass", "ops:"):
        secret.write_text(bad)
        with pytest.raises(usage.UsageError):
            Options().parseOptions(["--metrics-auth-file", str(secret)])


def test_metrics_are_off_by_default(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(METRICS_AUTH_VARIABLE, raising=False)
    options = service_options(tmp_path=tmp_path)
    assert options.metrics_auth is None
    assert makeService(options).app.metrics_auth is None
