"""The visitor history (docs/api.md, "Hit time" and "The visitor history"), on both stores.

Hits carry a time; every applied hit is kept and can be read back a page at
a time by the user; erasing a visitor leaves every report exactly as a
bucket fed only the other visitors' hits reports (a brute-force comparison:
two buckets fed alike, one visitor erased from one).  A server started
without the history (``--no-history``, for measuring its cost) counts the same.
"""

import random
import time

import pytest
import pytest_twisted
from twisted.internet import defer

from hiitrack.app import HiiTrack
from hiitrack.ids import property_id, value_id
from hiitrack.limits import Limits
from hiitrack.metrics import METRICS
from tests.helpers import PASSWORD, new_bucket, new_user
from tests.http import b64json, path

DAY = 86400


def _auth(user: str) -> tuple[str, str]:
    return (user, PASSWORD)


async def _hit(client, user, bucket, visitor, events=(), properties=(), when=None, **extra):
    params = {"visitor_id": visitor, "message": b64json([list(events), [list(pair) for pair in properties]]), **extra}
    if when is not None:
        params["time"] = str(when)
    return await client.post(path(user, bucket, "batch"), params)


async def _history(client, user, bucket, visitor, **params):
    return await client.get(path(user, bucket, "visitor", visitor), params, auth=_auth(user))


@pytest_twisted.ensureDeferred
async def test_every_route_takes_a_time_and_the_history_keeps_each_hit(server, user_name):
    client = server.client
    await new_user(client, user_name)
    t = int(time.time()) - 5 * DAY
    answer = await client.post(
        path(user_name, "site", "property", "plan"), {"visitor_id": "v", "value": b64json("pro"), "time": str(t)}
    )
    assert answer.status == 200, answer.body
    answer = await client.post(path(user_name, "site", "event", "view"), {"visitor_id": "v", "time": f"{t + 1}.5"})
    assert answer.status == 200, answer.body
    # JSON bodies carry time as a number.
    answer = await client.post(
        path(user_name, "site", "event", "buy"),
        body=b'{"visitor_id": "v", "time": %d.1239}' % (t + 2),
        headers={"Content-Type": ["application/json"]},
    )
    assert answer.status == 200, answer.body
    assert (await _hit(client, user_name, "site", "v", ["a", "b"], [["plan", "free"]], t + 3)).status == 200
    history = await _history(client, user_name, "site", "v")
    assert history.status == 200, history.body
    assert history.json == {
        "visitor_id": "v",
        "first_seen": t,
        "last_seen": t + 3,
        "properties": {"plan": sorted(["pro", "free"], key=lambda value: value_id(property_id("plan"), value))},
        "events": [[t + 1.5, "view"], [t + 2.123, "buy"], [t + 3, "a"], [t + 3, "b"]],
        "next": None,
        "hits": 4,
    }


@pytest_twisted.ensureDeferred
async def test_a_retried_insert_id_is_kept_once(server, user_name):
    client = server.client
    await new_user(client, user_name)
    for _ in range(3):
        assert (await _hit(client, user_name, "site", "v", ["a"], insert_id="once")).status == 200
    assert [name for _, name in (await _history(client, user_name, "site", "v")).json["events"]] == ["a"]


@pytest.mark.parametrize("bad", ["abc", "-1", "1e9", "nan", "inf", "", " 5", "1.2.3", "FUTURE"])
@pytest_twisted.ensureDeferred
async def test_a_bad_time_is_refused_and_nothing_stored(server, user_name, bad):
    client = server.client
    await new_user(client, user_name)
    await new_bucket(client, user_name, "site")
    before = await server.app.store.count(f"{user_name}/site")
    when = str(int(time.time()) + 120) if bad == "FUTURE" else bad
    for answer in (
        await client.post(path(user_name, "site", "event", "a"), {"visitor_id": "v", "time": when}),
        await client.post(path(user_name, "site", "property", "p"), {"visitor_id": "v", "value": "MQ", "time": when}),
        await client.post(
            path(user_name, "site", "batch"), {"visitor_id": "v", "message": b64json([["a"], []]), "time": when}
        ),
    ):
        assert answer.status == 400 and "time" in answer.json["error"], answer.body
    assert await server.app.store.count(f"{user_name}/site") == before
    assert (await _history(client, user_name, "site", "v")).status == 404


@pytest_twisted.ensureDeferred
async def test_time_up_to_a_minute_ahead_is_taken(server, user_name):
    client = server.client
    await new_user(client, user_name)
    server.clock.now = 1_800_000_000.0
    assert (await _hit(client, user_name, "site", "v", ["a"], when=1_800_000_060)).status == 200
    assert (await _hit(client, user_name, "site", "v", ["b"], when="1800000060.001")).status == 400


@pytest_twisted.ensureDeferred
async def test_a_time_with_any_number_of_decimals_is_kept_to_the_millisecond(server, user_name):
    """The ms are cut from the digits, not rounded: 28-digit Decimal arithmetic made ...0019999... 002."""
    client = server.client
    await new_user(client, user_name)
    sent = {"v1": "1700000000.0019999999999999999999999", "v2": "1700000001.", "v3": ".5"}
    for visitor, when in sent.items():
        assert (await _hit(client, user_name, "site", visitor, ["a"], when=when)).status == 200
    kept = [(await _history(client, user_name, "site", visitor)).json["events"][0][0] for visitor in sent]
    assert kept == [1700000000.001, 1700000001, 0.5]


@pytest_twisted.ensureDeferred
async def test_a_time_before_the_previous_event_counts_at_it(server, user_name):
    client = server.client
    await new_user(client, user_name)
    t = int(time.time()) - 3 * DAY
    await _hit(client, user_name, "site", "v", ["a"], when=t)
    await _hit(client, user_name, "site", "v", ["b"], when=t - 2 * DAY)
    await _hit(client, user_name, "site", "v", ["c"], when=t + 10)
    history = (await _history(client, user_name, "site", "v")).json
    assert history["events"] == [[t, "a"], [t, "b"], [t + 10, "c"]]
    # The series count "b" at the earlier hit's time, not two days before.
    day = t - t % DAY
    report = await client.get(
        path(user_name, "site", "event", "b"), {"start": day - 3 * DAY, "interval": "day"}, auth=_auth(user_name)
    )
    assert report.json["total"] == [[day, 1]]


@pytest_twisted.ensureDeferred
async def test_a_hit_of_values_alone_holds_back_no_later_event(server, user_name):
    """API.md clamps a hit to the previous *event*: a property set at the server's clock (as an
    `identify` is) must not push the back-dated events sent after it to that clock."""
    client = server.client
    await new_user(client, user_name)
    server.clock.now = 1_800_000_000.0
    t = 1_799_000_000
    await new_bucket(client, user_name, "site")
    funnel = [("event", "a"), ("event", "b"), ("window", "200"), ("property", "plan"), ("description", "")]
    assert (await client.post(path(user_name, "site", "funnel", "f"), funnel, auth=_auth(user_name))).status == 201
    await _hit(client, user_name, "site", "v", properties=[["plan", "pro"]])
    await _hit(client, user_name, "site", "v", ["a"], when=t)
    # Earlier than the previous event: at that event's time.
    await _hit(client, user_name, "site", "v", properties=[["plan", "free"]], when=t - 50)
    await _hit(client, user_name, "site", "v", ["b"], when=t + 100)
    await _hit(client, user_name, "site", "v", ["c"], when=t + 50)
    history = (await _history(client, user_name, "site", "v")).json
    assert history["events"] == [[t, "a"], [t + 100, "b"], [t + 100, "c"]]
    assert (history["first_seen"], history["last_seen"]) == (t, 1_800_000_000)
    hour = t + 100 - (t + 100) % 3600
    series = await client.get(path(user_name, "site", "event", "b"), {"start": hour}, auth=_auth(user_name))
    assert series.json["total"] == [[hour - hour % DAY, 1]]
    # The exact funnel counts the events at their own times: entered on `a`'s day.
    saved = path(user_name, "site", "funnel", "f")
    conversion = (await client.get(saved, {"start": t - DAY}, auth=_auth(user_name))).json["conversion"]
    assert conversion["visitors"] == [1, 1] and conversion["days"] == [[t - t % DAY, [1, 1]]]
    assert sorted(conversion["by_value"].values()) == [[1, 1], [1, 1]]
    # What an erase takes back is what the hits added: the funnel is empty again.
    assert (await client.delete(path(user_name, "site", "visitor", "v"), auth=_auth(user_name))).status == 200
    conversion = (await client.get(saved, {"start": t - DAY}, auth=_auth(user_name))).json["conversion"]
    assert conversion["visitors"] == [0, 0] and conversion["by_value"] == {} and conversion["days"] == []


@pytest_twisted.ensureDeferred
async def test_backdated_hits_before_the_bucket_existed_show_in_the_series(server, user_name):
    client = server.client
    await new_user(client, user_name)
    old = int(time.time()) - 400 * DAY
    await _hit(client, user_name, "site", "v", ["a"], when=old)
    await _hit(client, user_name, "site", "v", ["a"])
    for interval, size in (("day", DAY), ("hour", 3600)):
        report = await client.get(
            path(user_name, "site", "event", "a"), {"start": old - DAY, "interval": interval}, auth=_auth(user_name)
        )
        points = report.json["total"]
        assert points[0] == [old - old % size, 1] and len(points) == 2, (interval, points)


@pytest_twisted.ensureDeferred
async def test_only_the_password_opens_a_visitors_data(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await _hit(client, user_name, "site", "v", ["a"])
    key = (await client.get(path(user_name, "site"), auth=_auth(user_name))).json["access_key"]
    where = path(user_name, "site", "visitor", "v")
    for method in ("GET", "DELETE"):
        assert (await client.request(method, where)).status == 401
        assert (await client.request(method, where, auth=(user_name, key))).status == 401
        assert (await client.request(method, where, auth=(user_name, "wrong"))).status == 401
    assert (await client.get(where, auth=_auth(user_name))).status == 200
    assert (await client.get(path(user_name, "nobucket", "visitor", "v"), auth=_auth(user_name))).status == 404
    assert (await client.get(path(user_name, "site", "visitor", "nobody"), auth=_auth(user_name))).status == 404
    assert (await client.delete(path(user_name, "site", "visitor", "nobody"), auth=_auth(user_name))).status == 404


@pytest_twisted.ensureDeferred
async def test_pages_give_every_event_once_in_order(server, user_name):
    client = server.client
    await new_user(client, user_name)
    expected = []
    t = int(time.time()) - DAY
    for n, size in enumerate([1, 3, 0, 5, 2, 7, 1, 4]):
        names = [f"e{n}-{i}" for i in range(size)]
        await _hit(client, user_name, "site", "v", names, [["p", n]], when=t + n)
        expected += [[t + n, name] for name in names]
    for limit in (1, 3, 7, 23, 24, 1000):
        pages, after = [], None
        while True:
            params = {"limit": str(limit), **({"after": after} if after else {})}
            answer = (await _history(client, user_name, "site", "v", **params)).json
            pages.append(answer["events"])
            after = answer["next"]
            if after is None:
                break
        assert [event for page in pages for event in page] == expected, limit
        assert all(len(page) == limit for page in pages[:-1]) and 0 < len(pages[-1]) <= limit
    for bad in (
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "x"},
        {"limit": ""},
        {"limit": "9" * 5000},
        {"after": "x"},
        {"after": "1."},
        {"after": "-1.0"},
    ):
        answer = await _history(client, user_name, "site", "v", **bad)
        assert answer.status == 400, (bad, answer.body)


@pytest_twisted.ensureDeferred
async def test_a_full_history_refuses_further_hits_and_says_so(server, user_name):
    client = server.client
    await new_user(client, user_name)
    server.app.tracker._limits = Limits(visitor_hits=3)
    refused = METRICS.history_refused._value.get()
    for _ in range(3):
        assert (await _hit(client, user_name, "site", "v", ["a"])).status == 200
    answer = await _hit(client, user_name, "site", "v", ["a"])
    assert answer.status == 422 and answer.json["limit"] == "visitor-hits", answer.body
    assert METRICS.history_refused._value.get() == refused + 1
    assert (await _history(client, user_name, "site", "v")).json["hits"] == 3
    report = await client.get(path(user_name, "site", "event", "a"), auth=_auth(user_name))
    assert report.json["total"] == 3


# The brute-force comparison of erase.

EVENTS = ["view", "sign up", "buy", "ünï / x"]
VALUES = {"plan": ["free", "pro", 3], "country": ["fr", "de"]}
REPORTS_START = int(time.time()) - 12 * DAY


def _scenario(seed: int) -> list[tuple]:
    """Hits of five visitors over ten days (some before the bucket existed); v0 alone has some names."""
    rng = random.Random(seed)
    start = int(time.time()) - 10 * DAY
    hits = []
    for visitor in ["v0", "v1", "v2", "v3", "v4"]:
        when = start + rng.randrange(DAY)
        for _ in range(rng.randrange(2, 7)):
            events = [rng.choice(EVENTS) for _ in range(rng.randrange(0, 4))]
            props = [[prop, rng.choice(values)] for prop, values in VALUES.items() if rng.random() < 0.3]
            if visitor == "v0" and rng.random() < 0.5:
                events.append("only v0")
                props += [["plan", "only v0"], ["email", "v0@example.com"]]
            hits.append((visitor, events, props, when))
            when += rng.choice([0, 60, 3600, DAY, 2 * DAY])
    # Visitors interleave; each one's hits stay in order (a stable sort).
    return sorted(hits, key=lambda hit: hit[3])


async def _reports(client, user: str, bucket: str, events: list[str], props: list[str]) -> dict:
    """Every report a user may read, for the given event and property names."""
    auth = _auth(user)
    start = REPORTS_START
    reports = {}
    for event in events:
        where = path(user, bucket, "event", event)
        for params in [{}, *({"property": p} for p in props)]:
            for series in [{}, {"start": start, "interval": "day"}, {"start": start, "interval": "hour"}]:
                answer = await client.get(where, {**params, **series}, auth=auth)
                reports[event, str(params), str(series)] = (answer.status, answer.json)
    for prop in props:
        answer = await client.get(path(user, bucket, "property", prop), auth=auth)
        reports["property", prop] = (answer.status, answer.json)
    overview = (await client.get(path(user, bucket), auth=auth)).json
    reports["overview"] = {name: overview[name] for name in ("events", "properties", "funnels")}
    for first in events:
        for second in events:
            for params in [{}, *({"property": p} for p in props)]:
                query = {"event": [first, second], **params}
                answer = await client.get(path(user, bucket, "funnel"), query, auth=auth)
                reports["funnel", first, second, str(params)] = (answer.status, answer.json)
    return reports


@pytest_twisted.ensureDeferred
async def test_an_erased_visitor_leaves_the_reports_of_a_bucket_that_never_saw_it(server, user_name):
    client = server.client
    await new_user(client, user_name)
    funnel = [("event", "view"), ("event", "buy"), ("event", "only v0"), ("property", "plan")]
    for bucket in ("erased", "fresh"):
        assert (await client.post(path(user_name, bucket), {}, auth=_auth(user_name))).status == 201
        saved = await client.post(path(user_name, bucket, "funnel", "f"), funnel, auth=_auth(user_name))
        assert saved.status == 201
    hits = _scenario(11)
    for visitor, events, props, when in hits:
        assert (await _hit(client, user_name, "erased", visitor, events, props, when)).status == 200
        if visitor != "v0":
            assert (await _hit(client, user_name, "fresh", visitor, events, props, when)).status == 200
    assert any(visitor == "v0" and "only v0" in events for visitor, events, _, _ in hits)

    async def reports(bucket: str) -> dict:
        # Names only v0 used are asked for too: they must be gone with it.
        every = await _reports(client, user_name, bucket, [*EVENTS, "only v0"], [*VALUES, "email"])
        saved = (await client.get(path(user_name, bucket, "funnel", "f"), auth=_auth(user_name))).json
        del saved["conversion"]["backfill"]
        every["saved funnel"] = saved
        for step, status in ((1, "reached"), (2, "reached"), (2, "dropped")):
            where = path(user_name, bucket, "funnel", "f", "visitors")
            drop_off = await client.get(where, {"step": step, "status": status}, auth=_auth(user_name))
            every["drop-off", step, status] = drop_off.json
        return every

    fresh = await reports("fresh")
    # v0 counts before it is erased: the comparison below can fail.
    assert await reports("erased") != fresh
    first, second = await defer.gatherResults(
        [
            defer.ensureDeferred(client.delete(path(user_name, "erased", "visitor", "v0"), auth=_auth(user_name)))
            for _ in range(2)
        ]
    )
    assert sorted([first.status, second.status]) == [200, 404]
    assert (await _history(client, user_name, "erased", "v0")).status == 404
    assert await reports("erased") == fresh
    report = await client.get(path(user_name, "erased", "event", "only v0"), auth=_auth(user_name))
    assert report.status == 404
    # The other visitors' histories are untouched.
    for visitor in ["v1", "v2", "v3", "v4"]:
        kept = await _history(client, user_name, "erased", visitor)
        assert kept.json == (await _history(client, user_name, "fresh", visitor)).json


@pytest_twisted.ensureDeferred
async def test_a_visitor_erased_comes_back_as_new(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await _hit(client, user_name, "site", "v", ["a", "b"], [["plan", "pro"]])
    assert (await client.delete(path(user_name, "site", "visitor", "v"), auth=_auth(user_name))).status == 200
    await _hit(client, user_name, "site", "v", ["b"])
    report = (await client.get(path(user_name, "site", "event", "b"), auth=_auth(user_name))).json
    assert (report["total"], report["unique_total"], report["path"]) == (1, 1, {})
    assert [name for _, name in (await _history(client, user_name, "site", "v")).json["events"]] == ["b"]


@pytest_twisted.ensureDeferred
async def test_without_the_history_the_reports_are_the_same_and_no_hit_is_kept(server, user_name):
    """`twistd hiitrack --no-history`, which exists to measure the history's cost, changes nothing else."""
    client = server.client
    await new_user(client, user_name)
    unkept = HiiTrack(server.app.store, clock=server.clock, keep_history=False)
    await unkept.accounts.start()
    hits = _scenario(5)
    for visitor, events, props, when in hits:
        assert (await _hit(client, user_name, "kept", visitor, events, props, when)).status == 200
        properties = [(name, value) for name, value in props]
        assert await unkept.record_hit(user_name, "unkept", visitor, events, properties, None, when * 1000)
    names = EVENTS + ["only v0"]
    kept_reports = await _reports(client, user_name, "kept", names, list(VALUES))
    assert await _reports(client, user_name, "unkept", names, list(VALUES)) == kept_reports
    for visitor in {hit[0] for hit in hits}:
        assert (await _history(client, user_name, "kept", visitor)).json["events"]
        assert (await _history(client, user_name, "unkept", visitor)).json["events"] == []
