"""Property-based test: random streams of hits through the HTTP API, every report checked.

Hypothesis draws a few visitors, event names (one always holding a space,
a '/' and non-ASCII text), properties with a few JSON values, and a stream
of single events, property posts and batches at server times that move
forward.  Each example sends the stream to a real server (a fresh user), then
compares every report -- events by name and by id, split by each property,
hourly and daily series, property reports, funnel previews and a saved
funnel -- with the brute-force model of tests/model.py.
"""

import json
import os
import time
import uuid
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from tests.http import b64json, path
from tests.model import Model, canonical, eid

PASSWORD = "pw-secret"
BUCKET = "site"
# 20:50 UTC today: hour and day boundaries come soon.  Today, not a fixed
# date: the server skips series buckets older than a day before the bucket's
# creation, and hiitrack/accounts.py stamps that with the real time, not the
# app's clock.
T0 = int(time.time()) // 86400 * 86400 + 20 * 3600 + 50 * 60
SPECIAL = "paid / ünï cødé ✓"
EVENT_POOL = ["view", "sign up", "buy"]
PROPERTY_POOL = ["plan", "país / ✓"]
VALUE_POOL = ["free", "pro", 1, True, None, "ü / x", ["a", 1], {"k": "v", "n": 2}]
VISITOR_POOL = ["v1", "v2", "visitör 3", "v/4"]
# Seconds between actions, and report range ends relative to T0; 2**21 s is
# one hourly series shard, so the big ones make reports read several rows.
STEPS = [0, 0, 60, 1800, 3600, 5400, 86400, 90000, 2**21]
RANGE_OFFSETS = [-7200, -1, 0, 1800, 3600, 4000, 86400, 100000, 200000, 2**21 + 3600, -(2**22)]


@dataclass
class Scenario:
    events: list[str]
    values: dict[str, list[object]]
    actions: list[tuple]
    series: list[tuple[str, int, int | None]]
    funnels: list[tuple[list[str], str | None]]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    events = [SPECIAL] + draw(st.lists(st.sampled_from(EVENT_POOL), max_size=3, unique=True))
    props = draw(st.lists(st.sampled_from(PROPERTY_POOL), min_size=1, max_size=2, unique=True))
    values = {
        prop: draw(st.lists(st.sampled_from(VALUE_POOL), min_size=1, max_size=3, unique_by=canonical)) for prop in props
    }
    visitors = VISITOR_POOL[: draw(st.integers(2, 4))]
    visitor = st.sampled_from(visitors)
    event = st.sampled_from(events)
    prop_value = st.sampled_from([(prop, value) for prop in props for value in values[prop]])
    step = st.sampled_from(STEPS)
    action = st.one_of(
        st.tuples(st.just("event"), visitor, event, step),
        st.tuples(st.just("property"), visitor, prop_value, step),
        st.tuples(
            st.just("batch"),
            visitor,
            st.lists(event, max_size=4),
            st.lists(prop_value, max_size=2),
            step,
        ),
    )
    actions = draw(st.lists(action, min_size=1, max_size=20))
    offset = st.sampled_from(RANGE_OFFSETS)
    series = [(interval, draw(offset), draw(st.one_of(st.none(), offset))) for interval in ("hour", "day")]
    steps = st.lists(st.sampled_from(events + ["never seen"]), min_size=2, max_size=3)
    funnels = [
        (draw(steps), None),
        (draw(steps), draw(st.sampled_from(props + ["never set"]))),
        (draw(steps), draw(st.one_of(st.none(), st.sampled_from(props)))),
    ]
    return Scenario(events, values, actions, series, funnels)


def same(answer, expected: dict, what: str) -> None:
    assert answer.status == 200, (what, answer.status, answer.body)
    got = answer.json
    assert got == expected, what
    # `==` takes True for 1: compare the JSON texts too.
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True), what


async def send(server, user: str, model: Model, action: tuple) -> None:
    client = server.client
    kind, visitor = action[0], action[1]
    if kind == "event":
        name = action[2]
        answer = await client.post(path(user, BUCKET, "event", name), {"visitor_id": visitor})
        model.event(visitor, name, int(server.clock.now))
    elif kind == "property":
        prop, content = action[2]
        answer = await client.post(
            path(user, BUCKET, "property", prop), {"visitor_id": visitor, "value": b64json(content)}
        )
        model.property(visitor, prop, content)
    else:
        events, properties = action[2], action[3]
        message = b64json([events, [[prop, content] for prop, content in properties]])
        answer = await client.post(path(user, BUCKET, "batch"), {"message": message, "visitor_id": visitor})
        assert answer.status == 200 and answer.json["visitor_id"] == visitor, answer.body
        model.batch(visitor, events, properties, int(server.clock.now))
    assert answer.status == 200, (action, answer.status, answer.body)


async def check_reports(server, user: str, model: Model, scenario: Scenario) -> None:
    client = server.client
    auth = (user, PASSWORD)
    now = int(server.clock.now)

    async def get(*segments: str, params=None):
        return await client.get(path(user, BUCKET, *segments), params, auth=auth)

    for name in scenario.events:
        if name not in model.event_names:
            assert (await get("event", name)).status == 404
            continue
        expected = model.event_report(name)
        same(await get("event", name), expected, f"event {name}")
        same(await get("event_id", eid(name)), expected, f"event_id {name}")
        for prop in model.property_names:
            same(
                await get("event", name, params={"property": prop}),
                model.event_report(name, prop),
                f"event {name} by {prop}",
            )
        for interval, start_offset, finish_offset in scenario.series:
            seconds = 3600 if interval == "hour" else 86400
            if finish_offset is None:  # finish defaults to now
                start = min(T0 + start_offset, now)
                finish = now
                params = [("start", str(start)), ("interval", interval)]
            else:
                start = T0 + start_offset
                finish = max(start, T0 + finish_offset)
                params = [("start", str(start)), ("finish", str(finish)), ("interval", interval)]
            window = (seconds, start, finish)
            same(
                await get("event", name, params=params),
                model.event_report(name, series=window),
                f"event {name} {params}",
            )
            for prop in model.property_names:
                same(
                    await get("event", name, params=[*params, ("property", prop)]),
                    model.event_report(name, prop, series=window),
                    f"event {name} by {prop} {params}",
                )

    for prop in scenario.values:
        answer = await get("property", prop)
        if prop in model.property_names:
            same(answer, model.property_report(prop), f"property {prop}")
        else:
            assert answer.status == 404, answer.body

    for steps, prop in scenario.funnels:
        params = [("event", step) for step in steps]
        if prop is not None:
            params.append(("property", prop))
        same(await get("funnel", params=params), model.funnel_report(steps, prop), f"funnel {params}")

    # A saved funnel: the last one drawn, by event ids.
    steps, prop = scenario.funnels[-1]
    form = [("description", "the ✓ funnel"), *[("event_id", eid(step)) for step in steps]]
    if prop is not None:
        form.append(("property", prop))
    created = await client.post(path(user, BUCKET, "funnel", "saved / ✓"), form, auth=auth)
    assert created.status == 201, created.body
    expected = {**model.funnel_report(steps, prop), "description": "the ✓ funnel"}
    # Saved after the data: backfilled from every visitor's history (its numbers: tests/test_exact_funnels.py).
    await server.app.backfills.finished(f"{user}/{BUCKET}", "saved / ✓")
    saved = await get("funnel", "saved / ✓")
    conversion = saved.json["conversion"]
    assert conversion["backfill"]["state"] == "done"
    assert (conversion["backfill"]["visitors"] > 0) == bool(model.event_names)
    expected["conversion"] = conversion
    same(saved, expected, f"saved funnel {form}")


async def run_example(server, scenario: Scenario) -> None:
    user = f"u{uuid.uuid4().hex[:16]}"
    server.clock.now = T0
    try:
        assert (await server.client.post(path(user), {"password": PASSWORD})).status == 201
        model = Model()
        for action in scenario.actions:
            server.clock.now += action[-1]
            await send(server, user, model, action)
        await check_reports(server, user, model, scenario)
    finally:
        server.clock.now = None


@pytest.fixture(autouse=True)
def _unwrapped_examples(request: pytest.FixtureRequest):
    """Give each parametrized run (sqlite, cassandra) the original example function.

    pytest-twisted replaces ``test.hypothesis.inner_test`` with a wrapper that
    runs the example in the reactor, on the function object that all
    parametrized items share; the next item would wrap the wrapper (and
    fail with "blockon cannot be called from the twisted greenlet").
    """
    hypothesis = request.function.hypothesis
    original = hypothesis.inner_test
    yield
    hypothesis.inner_test = original


@settings(
    max_examples=int(os.environ.get("HIITRACK_MODEL_EXAMPLES", "25")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_reports_match_the_model(server, scenario):
    # pytest-twisted runs each example inside the reactor's greenlet (where
    # blockon is refused) and waits for the Deferred the example returns.
    return defer.ensureDeferred(run_example(server, scenario))
