"""The caps of hiitrack.limits: over one, a 422 naming it, and nothing of the request stored.

The hit and visitor caps are checked at their defaults (the hostile batch of
issue 10: 50 events x 50 values); the bucket and report caps with small
configured values, through the same app the twistd options build.  Every
test runs on both stores.
"""

import json
from dataclasses import fields
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.python import usage

from hiitrack.app import HiiTrack
from hiitrack.limits import Limits, OverLimit
from hiitrack.tap import HiiTrackService, Options
from hiitrack.web.site import make_site
from tests.conftest import Clock, Server
from tests.helpers import auth_of, b64json, batch, eid, new_user, path, stored, track

ROOT = Path(__file__).resolve().parent.parent
SMALL = Limits(bucket_events=3, bucket_properties=2, property_values=2, bucket_funnels=2, report_values=2)


@pytest.fixture
def capped(store):
    """A server whose bucket and report caps are SMALL."""
    clock = Clock()
    app = HiiTrack(store, clock=clock, limits=SMALL)
    pytest_twisted.blockon(defer.ensureDeferred(app.accounts.start()))
    port = pytest_twisted.blockon(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make_site(app)))
    running = Server(app, clock, port)
    yield running
    pytest_twisted.blockon(defer.ensureDeferred(running.client.close()))
    pytest_twisted.blockon(port.stopListening())


def _refused(answer, limit: str, maximum: int, status: int = 422) -> None:
    assert answer.status == status, answer.body
    body = answer.json
    assert (body["limit"], body["max"]) == (limit, maximum)
    assert limit in body["error"] and str(maximum) in body["error"]


async def _batch(client, user: str, events: list, properties: list = (), visitor: str = "v"):
    message = b64json([events, list(properties)])
    return await client.post(path(user, "b", "batch"), {"visitor_id": visitor, "message": message})


async def _report(client, user: str, name: str = "A") -> dict:
    return (await client.get(path(user, "b", "event", name), auth=auth_of(user))).json


@pytest_twisted.ensureDeferred
async def test_the_hostile_batch_of_50_events_by_50_values_is_refused_whole(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v", "A")
    before = await stored(server, f"{user_name}/b")
    events = [f"e{i}" for i in range(50)]
    properties = [[f"p{i}", "x"] for i in range(50)]
    answer = await _batch(client, user_name, events, properties)
    _refused(answer, "hit-cells", 64_000)
    assert answer.json["visitor_id"] == "v"
    assert await stored(server, f"{user_name}/b") == before
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert (list(bucket["events"]), bucket["properties"]) == (["A"], {})
    # The visitor's state is untouched: its next event follows only A.
    await track(client, user_name, "b", "v", "A")
    assert (await _report(client, user_name))["path"] == {eid("A"): 1}


@pytest_twisted.ensureDeferred
async def test_the_largest_batch_of_a_new_visitor_fits(server, user_name):
    """100 values and 100 events (docs/api.md's batch limits) stay under the default caps."""
    client = server.client
    await new_user(client, user_name)
    answer = await _batch(client, user_name, ["A"] * 100, [["p", n] for n in range(100)])
    assert answer.status == 200, answer.body
    assert (await _report(client, user_name))["total"] == 100


@pytest_twisted.ensureDeferred
async def test_a_visitor_has_at_most_100_distinct_events(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", [f"e{i}" for i in range(100)])
    before = await stored(server, f"{user_name}/b")
    for refused in (
        await client.post(path(user_name, "b", "event", "one more"), {"visitor_id": "v"}),
        await _batch(client, user_name, ["e0", "one more"]),
    ):
        _refused(refused, "visitor-events", 100)
    assert await stored(server, f"{user_name}/b") == before
    # Events the visitor already did still count; other visitors are not affected.
    await track(client, user_name, "b", "v", "e0")
    await track(client, user_name, "b", "w", "one more")
    assert (await _report(client, user_name, "e0"))["total"] == 2
    assert (await _report(client, user_name, "one more"))["total"] == 1


@pytest_twisted.ensureDeferred
async def test_a_visitor_has_at_most_100_distinct_values(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A"], [["p", n] for n in range(100)])
    before = await stored(server, f"{user_name}/b")
    answer = await client.post(path(user_name, "b", "property", "q"), {"visitor_id": "v", "value": b64json(1)})
    _refused(answer, "visitor-values", 100)
    _refused(await _batch(client, user_name, ["A"], [["p", 100]]), "visitor-values", 100)
    assert await stored(server, f"{user_name}/b") == before
    await batch(client, user_name, "b", "v", ["A"], [["p", 99]])
    assert (await _report(client, user_name))["total"] == 2


@pytest_twisted.ensureDeferred
async def test_bucket_caps_on_events_properties_and_values(capped, user_name):
    client = capped.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B", "C"], [["p", 1], ["p", 2], ["q", 1]])
    before = await stored(capped, f"{user_name}/b")
    # A different visitor, a different route: the cap is the bucket's.
    _refused(await client.post(path(user_name, "b", "event", "D"), {"visitor_id": "v2"}), "bucket-events", 3)
    _refused(await _batch(client, user_name, ["A", "D"], visitor="v2"), "bucket-events", 3)
    _refused(await _batch(client, user_name, ["A"], [["r", 1]], visitor="v2"), "bucket-properties", 2)
    new_value = await client.post(path(user_name, "b", "property", "p"), {"visitor_id": "v2", "value": b64json(3)})
    _refused(new_value, "property-values", 2)
    assert await stored(capped, f"{user_name}/b") == before
    # Names the bucket has are still welcome, from any visitor.
    await batch(client, user_name, "b", "v2", ["A", "B", "C"], [["p", 2], ["q", 1]])
    assert (await _report(client, user_name))["unique_total"] == 2
    # The caps hold after a restart too (counts come from the store, not memory).
    restarted = HiiTrack(capped.app.store, limits=SMALL)
    await restarted.accounts.start()
    with pytest.raises(OverLimit) as refused:
        await restarted.record_hit(user_name, "b", "v3", ["D"])
    assert refused.value.extra == {"limit": "bucket-events", "max": 3}


@pytest_twisted.ensureDeferred
async def test_a_refused_hit_leaves_no_trace_in_its_visitors_state(capped, user_name):
    # The bucket cap is checked after the hit was counted against the
    # visitor's state (cached parsed, hiitrack.tracking): that count must go.
    client = capped.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B", "C"])
    await track(client, user_name, "b", "v", "A")
    _refused(await _batch(client, user_name, ["B", "D"], visitor="v"), "bucket-events", 3)
    await track(client, user_name, "b", "v", "B")
    report = await _report(client, user_name, "B")
    assert (report["total"], report["unique_total"]) == (2, 2)


@pytest_twisted.ensureDeferred
async def test_a_bucket_saves_at_most_its_cap_of_funnels(capped, user_name):
    client = capped.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v", "A", "B")
    steps = [("event_id", eid("A")), ("event_id", eid("B"))]
    for name in ("f1", "f2"):
        assert (await client.post(path(user_name, "b", "funnel", name), steps, auth=auth_of(user_name))).status == 201
    _refused(
        await client.post(path(user_name, "b", "funnel", "f3"), steps, auth=auth_of(user_name)),
        "bucket-funnels",
        2,
        400,
    )
    # Replacing a saved funnel is not a new one.
    assert (await client.post(path(user_name, "b", "funnel", "f1"), steps, auth=auth_of(user_name))).status == 201
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert sorted(bucket["funnels"]) == ["f1", "f2"]


@pytest_twisted.ensureDeferred
async def test_reports_split_by_at_most_report_values_values(capped, user_name):
    client = capped.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B"], [["p", 1], ["p", 2], ["q", 1]])
    auth = auth_of(user_name)
    split = [
        (path(user_name, "b", "event", "A"), {"property": "p"}),
        (path(user_name, "b", "funnel"), [("event", "A"), ("event", "B"), ("property", "p")]),
        (path(user_name, "b", "property", "p"), None),
    ]
    for where, params in split:
        assert (await client.get(where, params, auth=auth)).status == 200
    # A third value of p, through a process with the default caps on the same store.
    other = HiiTrack(capped.app.store)
    await other.accounts.start()
    await other.record_hit(user_name, "b", "v2", ["A"], [("p", 3)])
    for where, params in split:
        _refused(await client.get(where, params, auth=auth), "report-values", 2)
    # An event never seen is a 404 before the property's values are weighed, though they are read with it.
    assert (await client.get(path(user_name, "b", "event", "never"), {"property": "p"}, auth=auth)).status == 404
    # Splitting by another property, and unsplit reports, still answer.
    assert (await client.get(path(user_name, "b", "event", "A"), {"property": "q"}, auth=auth)).status == 200
    assert (await _report(client, user_name))["total"] == 2


def test_limits_are_twistd_options(tmp_path):
    options = Options()
    options.parseOptions(["--store", f"sqlite:{tmp_path}/x.db", "--limits", "hit-cells=10, bucket-events=5"])
    assert options["limits"] == Limits(hit_cells=10, bucket_events=5)
    assert HiiTrackService(options).app.limits == Limits(hit_cells=10, bucket_events=5)
    defaults = Options()
    defaults.parseOptions([])
    assert defaults["limits"] == Limits()
    for bad in ("hit-cells=0", "hit-cells=x", "nothing=3", "hit_cells=3"):
        with pytest.raises(usage.UsageError, match="--limits"):
            Options().parseOptions(["--limits", bad])


def test_every_cap_is_documented_with_its_default():
    api = (ROOT / "docs" / "api.md").read_text()
    spec = json.loads((ROOT / "hiitrack" / "static" / "openapi.json").read_text())
    described = spec["components"]["responses"]["OverLimit"]["description"]
    names = spec["components"]["schemas"]["OverLimit"]["properties"]["limit"]["enum"]
    assert len(names) == len(fields(Limits))
    for field in fields(Limits):
        name = field.name.replace("_", "-")
        assert name in names
        assert f"| `{name}` | {field.default:,} |" in api
        assert f"{name} ({field.default})" in described
