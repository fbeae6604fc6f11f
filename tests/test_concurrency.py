"""Simultaneous hits: per-visitor order, group commit, nothing lost or doubled.

All requests of a burst are sent before any answer is awaited.  The server
applies one visitor's requests one after another in *some* order, so the
second test finds, for each visitor, an order of its hits that explains the
numbers of that visitor alone (read through a property unique to the
visitor), then checks every report against the model of tests/model.py
replaying those orders.
"""

import itertools
import random
import time

import pytest_twisted
from twisted.internet import defer

from tests.http import b64json, path
from tests.model import Model, eid, vid

PASSWORD = "pw-secret"
BUCKET = "site"
# 20:50 UTC today (see tests/test_model.py for why today).
T0 = int(time.time()) // 86400 * 86400 + 20 * 3600 + 50 * 60


async def new_user(server, user_name: str) -> tuple[str, str]:
    server.clock.now = T0
    assert (await server.client.post(path(user_name), {"password": PASSWORD})).status == 201
    return user_name, PASSWORD


async def burst(requests: list) -> list:
    """Start every request, then wait for all of them."""
    answers = await defer.gatherResults([defer.ensureDeferred(r) for r in requests], consumeErrors=True)
    for answer in answers:
        assert answer.status == 200, answer.body
    return answers


@pytest_twisted.ensureDeferred
async def test_twenty_simultaneous_events_of_one_new_visitor(server, user_name):
    client = server.client
    auth = await new_user(server, user_name)
    try:
        event = path(user_name, BUCKET, "event", "tap / ✓")
        await burst([client.post(event, {"visitor_id": "fresh"}) for _ in range(20)])
        report = (await client.get(event, auth=auth)).json
        tap = eid("tap / ✓")
        assert report["total"] == 20
        assert report["unique_total"] == 1
        assert report["path"] == {tap: 19}
        assert report["unique_path"] == {tap: 1}

        hourly = (await client.get(event, {"start": str(T0), "interval": "hour"}, auth=auth)).json
        hour = T0 - T0 % 3600
        assert hourly["total"] == [[hour, 20]]
        assert hourly["unique_total"] == [[hour, 1]]
        assert hourly["path"] == {tap: [[hour, 19]]}
        assert hourly["unique_path"] == {tap: [[hour, 1]]}

        # A property that arrives afterwards is credited with all twenty.
        answer = await client.post(
            path(user_name, BUCKET, "property", "plan"), {"visitor_id": "fresh", "value": b64json("pro")}
        )
        assert answer.status == 200
        split = (await client.get(event, {"property": "plan"}, auth=auth)).json
        pro = vid("plan", "pro")
        assert split["totals"] == {pro: 20}
        assert split["unique_totals"] == {pro: 1}
        assert split["paths"] == {pro: {tap: 19}}
        assert split["unique_paths"] == {pro: {tap: 1}}
        holders = (await client.get(path(user_name, BUCKET, "property", "plan"), auth=auth)).json
        assert holders["values"] == {pro: {"value": "pro", "total": {tap: 1}}}
    finally:
        server.clock.now = None


def orders(counts: dict[str, int]) -> list[list[str]]:
    """Every distinct order of a multiset of two event names."""
    (first, n), (second, m) = counts.items()
    found = []
    for places in itertools.combinations(range(n + m), n):
        found.append([first if i in places else second for i in range(n + m)])
    return found


def explain(visitor: str, counts: dict[str, int], by_who: dict[str, dict]) -> list[str]:
    """An order of the visitor's hits that gives its numbers as the server reports them."""
    who = vid("who", visitor)
    seen = {
        name: {key: report[key][who] for key in ("totals", "unique_totals", "paths", "unique_paths")}
        for name, report in by_who.items()
    }
    for order in orders(counts):
        model = Model()
        model.property(visitor, "who", visitor)
        for name in order:
            model.event(visitor, name, T0)
        expected = {}
        for name in by_who:
            report = model.event_report(name, "who")
            expected[name] = {key: report[key][who] for key in seen[name]}
        if expected == seen:
            return order
    raise AssertionError(f"no order of {counts} gives what the server reports for {visitor}: {seen}")


@pytest_twisted.ensureDeferred
async def test_simultaneous_events_of_several_visitors_match_the_model(server, user_name):
    client = server.client
    auth = await new_user(server, user_name)
    names = ["view", "buy / ü"]
    rng = random.Random(20)
    try:
        visitors = [f"visitor {i}" for i in range(5)]
        # A property unique to each visitor, so each one's numbers can be read alone.
        for visitor in visitors:
            answer = await client.post(
                path(user_name, BUCKET, "property", "who"), {"visitor_id": visitor, "value": b64json(visitor)}
            )
            assert answer.status == 200
        plans = {visitor: rng.choice(["free", "pro"]) for visitor in visitors}
        hits = {visitor: [rng.choice(names) for _ in range(9)] + [names[i % 2]] for i, visitor in enumerate(visitors)}
        requests = [
            client.post(path(user_name, BUCKET, "event", name), {"visitor_id": visitor})
            for i in range(10)
            for visitor, sent in hits.items()
            for name in [sent[i]]
        ]
        # Property posts race with the events: the totals do not depend on when they land.
        requests += [
            client.post(path(user_name, BUCKET, "property", "plan"), {"visitor_id": visitor, "value": b64json(plan)})
            for visitor, plan in plans.items()
        ]
        await burst(requests)

        async def get(*segments, params=None):
            answer = await client.get(path(user_name, BUCKET, *segments), params, auth=auth)
            assert answer.status == 200, answer.body
            return answer.json

        by_who = {name: await get("event", name, params={"property": "who"}) for name in names}
        model = Model()
        for visitor in visitors:
            model.property(visitor, "who", visitor)
        for visitor, sent in hits.items():
            counts = {name: sent.count(name) for name in names}
            for name in explain(visitor, counts, by_who):
                model.event(visitor, name, T0)
            model.property(visitor, "plan", plans[visitor])

        for name in names:
            assert await get("event", name) == model.event_report(name)
            assert await get("event_id", eid(name)) == model.event_report(name)
            for prop in ("who", "plan"):
                assert await get("event", name, params={"property": prop}) == model.event_report(name, prop)
            window = (3600, T0, T0)
            hourly = await get("event", name, params={"start": str(T0), "interval": "hour"})
            assert hourly == model.event_report(name, series=window)
            hourly = await get("event", name, params={"start": str(T0), "interval": "hour", "property": "who"})
            assert hourly == model.event_report(name, "who", series=window)
        for prop in ("who", "plan"):
            assert await get("property", prop) == model.property_report(prop)
        for steps in (names, names[::-1], [names[0], names[1], names[0]]):
            params = [("event", step) for step in steps]
            assert await get("funnel", params=params) == model.funnel_report(steps)
            assert await get("funnel", params=[*params, ("property", "plan")]) == model.funnel_report(steps, "plan")
    finally:
        server.clock.now = None
