"""Exact funnels through HTTP (docs/api.md, "Exact funnels" and "Who dropped off"), on both stores.

The model-based test sends random visitors' events and property values to a
real server at times set on its test clock, and saves a random funnel
(any-of steps, exclusions, all three orders, windows short enough to cut
chains, a property to split by) and a second one, each before, among or
after those hits: counted live, by the backfill, or both at once.  Once the
backfills are done it compares every number of the `conversion` report and
every drop-off list (read a small page at a time) with the brute-force model
of tests/funnel_model.py; then it erases a visitor and compares again with
the model of the others.  Hand-written tests follow: validation, replacing a
funnel, the access key.
"""

import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import defer

from hiitrack.accounts import bucket_scope
from hiitrack.conversions import level_kind
from hiitrack.funnels import BUCKET_BOUNDS
from hiitrack.store.kinds import FUNNEL_STATE
from tests.funnel_model import Funnel, model_report
from tests.helpers import auth_of, eid, new_bucket, new_user, vid
from tests.http import b64json, path
from tests.test_funnels import Action, funnels, streams

BUCKET = "site"
PROPERTY = "plan"
# Today 23:59:50 UTC: the first day boundary comes 10 s in.  Today, because a
# report's days are clamped to the bucket's creation, stamped with real time.
T0_MS = (int(time.time()) // 86400 * 86400 + 86390) * 1000


SECOND = Funnel((("a",), ("b", "c"), ("a",)), "strict", 60, ("x",))


def json_body(document: dict) -> dict:
    return {"body": json.dumps(document).encode(), "headers": {"Content-Type": ["application/json"]}}


def funnel_body(funnel: Funnel, **extra: object) -> dict:
    steps = [list(step) if len(step) > 1 else step[0] for step in funnel.steps]
    return {"event": steps, "order": funnel.order, "window": funnel.window, "exclude": list(funnel.exclude), **extra}


def timeline(streams: dict[str, list[Action]]) -> list[tuple[int, str, str, str]]:
    """Every action as (time in ms, visitor, kind, name), in an order the server may receive them."""
    actions = []
    for number, (visitor, stream) in enumerate(sorted(streams.items())):
        now = T0_MS
        for position, (kind, gap, name) in enumerate(stream):
            now += gap
            actions.append((now, number, position, visitor, kind, name))
    return [(now, visitor, kind, name) for now, _, _, visitor, kind, name in sorted(actions)]


def histories(streams: dict[str, list[Action]]) -> tuple[dict[str, list[tuple[int, str]]], dict[str, set[str]]]:
    """The model's view of the streams: each visitor's (time, event) history and its values."""
    events: dict[str, list[tuple[int, str]]] = {visitor: [] for visitor in streams}
    values: dict[str, set[str]] = {visitor: set() for visitor in streams}
    for now, visitor, kind, name in timeline(streams):
        if kind == "event":
            events[visitor].append((now, name))
        else:
            values[visitor].add(name)
    return events, values


async def send(
    server, user: str, streams: dict[str, list[Action]], saves: dict[int, list[Callable[[], Awaitable]]]
) -> None:
    """The streams' actions in time order, running `saves[i]` before the i-th (and `saves[len]` after all)."""
    client = server.client
    actions = timeline(streams)
    for index, (now, visitor, kind, name) in enumerate(actions):
        for save_funnel in saves.get(index, []):
            await save_funnel()
        server.clock.now = now / 1000
        if kind == "event":
            answer = await client.post(path(user, BUCKET, "event", name), {"visitor_id": visitor})
        else:
            answer = await client.post(
                path(user, BUCKET, "property", PROPERTY), {"visitor_id": visitor, "value": b64json(name)}
            )
        assert answer.status == 200, answer.body
    for save_funnel in saves.get(len(actions), []):
        await save_funnel()


async def drop_off_list(server, user: str, name: str, step: int, status: str, limit: int) -> list[str]:
    """A whole drop-off list, read `limit` visitors at a time."""
    found: list[str] = []
    after = None
    while True:
        params = {"step": step, "status": status, "limit": limit, **({"after": after} if after else {})}
        answer = await server.client.get(path(user, BUCKET, "funnel", name, "visitors"), params, auth=auth_of(user))
        assert answer.status == 200, answer.body
        page = answer.json
        assert len(page["visitors"]) <= limit
        found += page["visitors"]
        after = page["next"]
        if after is None:
            return found
        assert after == page["visitors"][-1]


async def check(server, user: str, name: str, funnel: Funnel, streams: dict[str, list[Action]]) -> dict:
    """Compare the report and drop-off lists with the model of `streams`; the report.  Every value
    some visitor of `streams` holds is in `by_value`, and no other (an erased visitor's goes)."""
    posted = {value for stream in streams.values() for kind, _, value in stream if kind == "value"}
    events, values = histories(streams)
    expected = model_report(funnel, events, values)
    k = len(funnel.steps)
    start = T0_MS // 1000 - 86400
    answer = await server.client.get(
        path(user, BUCKET, "funnel", name), {"start": start, "finish": start + 20 * 86400}, auth=auth_of(user)
    )
    assert answer.status == 200, answer.body
    conversion = answer.json["conversion"]
    alone = await server.client.get(
        path(user, BUCKET, "funnel", name, "conversion"),
        {"start": start, "finish": start + 20 * 86400},
        auth=auth_of(user),
    )
    assert (alone.status, alone.json) == (200, conversion)
    assert conversion["order"] == funnel.order
    assert conversion["window"] == funnel.window
    assert conversion["steps"] == [[eid(name) for name in step] for step in funnel.steps]
    assert conversion["exclude"] == [eid(name) for name in funnel.exclude]
    assert conversion["visitors"] == expected.visitors
    assert conversion["time_to_convert"][0] is None
    for j in range(2, k + 1):
        counts = expected.time_to_convert[j - 1]
        assert counts is not None
        assert conversion["time_to_convert"][j - 1] == {
            "buckets": [[bound, n] for bound, n in zip(BUCKET_BOUNDS, counts, strict=True)],
            "median": expected.medians[j - 1],
        }
    if name == "f":
        by_value = {vid(PROPERTY, value): expected.by_value.get(value, [0] * k) for value in posted}
        assert conversion["by_value"] == by_value
    else:
        assert "by_value" not in conversion
    assert conversion["days"] == [[day, counts] for day, counts in sorted(expected.days.items())]
    assert conversion["backfill"]["state"] == "done"
    for step in range(1, k + 1):
        assert await drop_off_list(server, user, name, step, "reached", 2) == expected.reached(step)
        if step >= 2:
            assert await drop_off_list(server, user, name, step, "dropped", 1) == expected.dropped(step)
    return conversion


async def run_example(
    server, funnel: Funnel, streams: dict[str, list[Action]], saved_at: tuple[float, float], erased: int
) -> None:
    """`saved_at`: where among the actions each funnel is saved (0 before all, 1 after all)."""
    user = f"u{uuid.uuid4().hex[:16]}"
    actions = timeline(streams)
    documents = {"f": funnel_body(funnel, property=PROPERTY), "g": funnel_body(SECOND)}
    at = {name: round(fraction * len(actions)) for name, fraction in zip(documents, saved_at, strict=True)}
    saves: dict[int, list[Callable[[], Awaitable]]] = {}
    for name, document in documents.items():

        async def save_funnel(name: str = name, document: dict = document) -> None:
            assert (await save(server, user, name, document)).status == 201

        saves.setdefault(at[name], []).append(save_funnel)
    try:
        server.clock.now = T0_MS / 1000 - 60
        await new_user(server.client, user)
        await new_bucket(server.client, user, BUCKET)
        await send(server, user, streams, saves)
        for name, definition in (("f", funnel), ("g", SECOND)):
            await server.app.backfills.finished(bucket_scope(user, BUCKET), name)
            conversion = await check(server, user, name, definition, streams)
            # The backfill went through every visitor there was when it began, and no other.
            before = {visitor for _, visitor, kind, _ in actions[: at[name]]}
            if any(kind == "event" for _, _, kind, _ in actions[: at[name]]):
                assert len(before) <= conversion["backfill"]["visitors"] <= len(streams)
            else:
                assert conversion["backfill"] == {"state": "done", "visitors": 0}
        seen = sorted(visitor for visitor, stream in streams.items() if stream)
        if not seen:
            return
        gone = seen[erased % len(seen)]
        answer = await server.client.delete(path(user, BUCKET, "visitor", gone), auth=auth_of(user))
        assert answer.status == 200, answer.body
        others = {visitor: stream for visitor, stream in streams.items() if visitor != gone}
        await check(server, user, "f", funnel, others)
        await check(server, user, "g", SECOND, others)
    finally:
        server.clock.now = None


@pytest.fixture(autouse=True)
def _unwrapped_examples(request: pytest.FixtureRequest):
    """Each parametrized run gets the original example function (see tests/test_model.py)."""
    hypothesis = getattr(request.function, "hypothesis", None)
    original = hypothesis and hypothesis.inner_test
    yield
    if hypothesis:
        hypothesis.inner_test = original


@settings(
    max_examples=int(os.environ.get("HIITRACK_MODEL_EXAMPLES", "15")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    case=funnels().flatmap(lambda funnel: st.tuples(st.just(funnel), streams(funnel))),
    saved_at=st.tuples(*[st.sampled_from([0.0, 0.3, 0.6, 1.0])] * 2),
    erased=st.integers(0, 2),
)
def test_exact_funnels_match_the_model(server, case, saved_at, erased):
    return defer.ensureDeferred(run_example(server, *case, saved_at, erased))


async def saved_bucket(server, user: str) -> None:
    await new_user(server.client, user)
    await new_bucket(server.client, user, BUCKET)


async def save(server, user: str, name: str, document: dict):
    return await server.client.post(path(user, BUCKET, "funnel", name), **json_body(document), auth=auth_of(user))


async def conversion_of(server, user: str, name: str) -> dict:
    answer = await server.client.get(path(user, BUCKET, "funnel", name), auth=auth_of(user))
    assert answer.status == 200, answer.body
    return answer.json["conversion"]


@pytest.mark.parametrize(
    "document",
    [
        {"event": ["a"]},
        {"event": ["a", "b"], "event_id": [eid("c"), eid("d")]},
        {"event": ["a", "b"] * 10 + ["c"]},
        {"event": ["a", []]},
        {"event": ["a", ["b"] * 2]},
        {"event": ["a", [f"e{i}" for i in range(11)]]},
        {"event": ["a", ["b", ["c"]]]},
        {"event": ["a", "b"], "order": "random"},
        {"event": ["a", "b"], "window": 0},
        {"event": ["a", "b"], "window": 31622401},
        {"event": ["a", "b"], "window": 1.5},
        {"event": ["a", "b"], "window": "ten"},
        {"event": ["a", "b"], "window": True},
        {"event": ["a", "b"], "window": ""},
        {"event": ["a", "b"], "window": "9" * 5000},
        {"event": ["a", "b"], "order": ""},
        {"event": ["a", "b"], "exclude": ["b"]},
        {"event": ["a", ["b", "c"]], "exclude": ["c"]},
        {"event": ["a", "b"], "exclude": ["x", "x"]},
        {"event": ["a", "b"], "exclude": [f"x{i}" for i in range(11)]},
        {"event": ["a", "b"], "exclude": [["x"]]},
        {"event": ["a", ["b", "c"]], "order": "any"},
        {"event": ["a", "b", "a"], "order": "any"},
        {"event": ["a", "x" * 257]},
        {"event_id": [eid("a"), "not an id"]},
        {"event": ["a", "b"], "description": ["d", ["e"]]},
    ],
)
@pytest_twisted.ensureDeferred
async def test_invalid_definitions_are_refused_and_nothing_is_saved(server, user_name, document):
    await saved_bucket(server, user_name)
    answer = await save(server, user_name, "f", document)
    assert answer.status == 400, answer.body
    assert isinstance(answer.json["error"], str)
    bucket = (await server.client.get(path(user_name, BUCKET), auth=auth_of(user_name))).json
    assert bucket["funnels"] == {}


@pytest_twisted.ensureDeferred
async def test_defaults_any_of_steps_and_the_pairwise_keys(server, user_name):
    await saved_bucket(server, user_name)
    assert (await save(server, user_name, "f", {"event": ["a", ["b", "c"]], "description": "d"})).status == 201
    for visitor, events in [("v1", ["a", "c"]), ("v2", ["a", "b"]), ("v3", ["c", "a"])]:
        for name in events:
            await track_events(server, user_name, visitor, name)
    answer = (await server.client.get(path(user_name, BUCKET, "funnel", "f"), auth=auth_of(user_name))).json
    # Part 1's keys take an any-of step's first event: a, b.
    assert answer["event_ids"] == [eid("a"), eid("b")]
    assert answer["unique_funnel"] == [[eid("a"), 3], [eid("b"), 1]]
    assert answer["description"] == "d"
    conversion = answer["conversion"]
    assert (conversion["order"], conversion["window"], conversion["exclude"]) == ("sequential", 1209600, [])
    assert conversion["steps"] == [[eid("a")], [eid("b"), eid("c")]]
    assert conversion["visitors"] == [3, 2]
    assert "by_value" not in conversion and "days" not in conversion
    assert conversion["backfill"] == {"state": "done", "visitors": 0}


@pytest_twisted.ensureDeferred
async def test_a_replaced_funnel_is_counted_afresh_from_the_histories(server, user_name):
    await saved_bucket(server, user_name)
    scope = bucket_scope(user_name, BUCKET)
    server.clock.now = time.time()
    try:
        assert (await save(server, user_name, "f", {"event": ["a", "b"]})).status == 201
        await track_events(server, user_name, "v1", "a", "b")
        await track_events(server, user_name, "v2", "a", "x", "b")
        assert (await conversion_of(server, user_name, "f"))["visitors"] == [2, 2]
        first = await version_of(server, scope)
        assert (await save(server, user_name, "f", {"event": ["a", "b"], "order": "strict"})).status == 201
        # The old version's drop-off lists are gone at once: they name visitors no report reads.
        assert await server.app.store.page(scope, level_kind(first, 2)) == []
        await server.app.backfills.finished(scope, "f")
        replaced = await conversion_of(server, user_name, "f")
        assert replaced["order"] == "strict"
        assert replaced["visitors"] == [2, 1]
        assert replaced["backfill"] == {"state": "done", "visitors": 2}
        assert await drop_off_list(server, user_name, "f", 2, "dropped", 10) == ["v2"]
        server.clock.now += 1
        await track_events(server, user_name, "v2", "a", "b")
        await track_events(server, user_name, "v3", "b", "a")
        assert (await conversion_of(server, user_name, "f"))["visitors"] == [3, 2]
        assert await drop_off_list(server, user_name, "f", 2, "reached", 10) == ["v1", "v2"]
        # Deleted, then saved again: counted again from every history.
        deleted = await server.client.delete(path(user_name, BUCKET, "funnel", "f"), auth=auth_of(user_name))
        assert deleted.status == 200
        assert (await save(server, user_name, "f", {"event": ["b", "a"]})).status == 201
        await server.app.backfills.finished(scope, "f")
        assert (await conversion_of(server, user_name, "f"))["visitors"] == [3, 2]
        assert await drop_off_list(server, user_name, "f", 2, "dropped", 10) == ["v1"]
    finally:
        server.clock.now = None


async def track_events(server, user: str, visitor: str, *events: str) -> None:
    for name in events:
        answer = await server.client.post(path(user, BUCKET, "event", name), {"visitor_id": visitor})
        assert answer.status == 200, answer.body


@pytest.mark.parametrize(
    "params",
    [
        {"step": 1},
        {"status": "reached"},
        {"step": 0, "status": "reached"},
        {"step": 3, "status": "reached"},
        {"step": 1, "status": "dropped"},
        {"step": "x", "status": "reached"},
        {"step": 1, "status": "gone"},
        {"step": 1, "status": "reached", "limit": 0},
        {"step": 1, "status": "reached", "limit": 1001},
        {"step": 1, "status": "reached", "limit": "ten"},
        {"step": 1, "status": "reached", "limit": ""},
        {"step": 1, "status": "reached", "limit": "9" * 5000},
        {"step": "9" * 5000, "status": "reached"},
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_drop_off_requests(server, user_name, params):
    await saved_bucket(server, user_name)
    assert (await save(server, user_name, "f", {"event": ["a", "b"]})).status == 201
    answer = await server.client.get(
        path(user_name, BUCKET, "funnel", "f", "visitors"), params, auth=auth_of(user_name)
    )
    assert answer.status == 400, answer.body


@pytest_twisted.ensureDeferred
async def test_drop_off_lists_need_the_password(server, user_name):
    await saved_bucket(server, user_name)
    assert (await save(server, user_name, "f", {"event": ["a", "b"]})).status == 201
    await track_events(server, user_name, "v1", "a")
    key = (await server.client.get(path(user_name, BUCKET), auth=auth_of(user_name))).json["access_key"]
    where = path(user_name, BUCKET, "funnel", "f", "visitors")
    params = {"step": 1, "status": "reached"}
    assert (await server.client.get(where, params, auth=(user_name, key))).status == 401
    # The access key still reads the report itself.
    report = await server.client.get(path(user_name, BUCKET, "funnel", "f"), auth=(user_name, key))
    assert report.json["conversion"]["visitors"] == [1, 0]
    alone = await server.client.get(path(user_name, BUCKET, "funnel", "f", "conversion"), auth=(user_name, key))
    assert alone.json["visitors"] == [1, 0]
    assert (await server.client.get(where, params, auth=auth_of(user_name))).json == {"visitors": ["v1"], "next": None}
    assert (
        await server.client.get(path(user_name, BUCKET, "funnel", "g", "visitors"), params, auth=auth_of(user_name))
    ).status == 404
    assert (
        await server.client.get(path(user_name, BUCKET, "funnel", "f", "other"), auth=auth_of(user_name))
    ).status == 404


@pytest_twisted.ensureDeferred
async def test_deleting_the_bucket_leaves_no_funnel_state_or_drop_off_entry(server, user_name):
    await saved_bucket(server, user_name)
    assert (await save(server, user_name, "f", {"event": ["a", "b"], "property": PROPERTY})).status == 201
    await track_events(server, user_name, "v1", "a", "b")
    await track_events(server, user_name, "v2", "a")
    scope = f"{user_name}/{BUCKET}"
    assert await server.app.store.page(scope, level_kind(await version_of(server, scope), 1)) == [("v2", b"")]
    assert (await server.client.delete(path(user_name, BUCKET), auth=auth_of(user_name))).status == 200
    assert await server.app.store.count(scope) == 0
    # The same name again: a new bucket whose funnels start from nothing.
    await new_bucket(server.client, user_name, BUCKET)
    assert (await save(server, user_name, "f", {"event": ["a", "b"]})).status == 201
    await track_events(server, user_name, "v1", "b")
    assert (await conversion_of(server, user_name, "f"))["visitors"] == [0, 0]


@pytest_twisted.ensureDeferred
async def test_a_hit_that_moves_no_funnel_state_leaves_the_states_record_as_it_was(server, user_name):
    """Neither a step with no chain to extend nor a visitor done for the day rewrites the record (nor its time)."""
    await saved_bucket(server, user_name)
    scope = bucket_scope(user_name, BUCKET)
    assert (await save(server, user_name, "f", {"event": ["a", "b", "c"]})).status == 201
    server.clock.now = T0_MS / 1000 - 60
    try:
        await track_events(server, user_name, "v1", "a")
        stored = await server.app.store.get(scope, FUNNEL_STATE, "v1")
        server.clock.now += 1
        await track_events(server, user_name, "v1", "c")
        assert await server.app.store.get(scope, FUNNEL_STATE, "v1") == stored
        await track_events(server, user_name, "v1", "b", "c")
        done = await server.app.store.get(scope, FUNNEL_STATE, "v1")
        assert done != stored
        server.clock.now += 1
        await track_events(server, user_name, "v1", "a", "b", "c")
        assert await server.app.store.get(scope, FUNNEL_STATE, "v1") == done
        assert (await conversion_of(server, user_name, "f"))["visitors"] == [1, 1, 1]
        # The next day (T0_MS is 10 s before midnight) the visitor's chains count again, in that day.
        server.clock.now = T0_MS / 1000 + 20
        await track_events(server, user_name, "v1", "a")
        assert await server.app.store.get(scope, FUNNEL_STATE, "v1") != done
        start = T0_MS // 1000 - 86400
        answer = await server.client.get(
            path(user_name, BUCKET, "funnel", "f"),
            {"start": start, "finish": start + 3 * 86400},
            auth=auth_of(user_name),
        )
        assert [counts for _, counts in answer.json["conversion"]["days"]] == [[1, 1, 1], [1, 0, 0]]
    finally:
        server.clock.now = None


async def version_of(server, scope: str) -> bytes:
    (funnel,) = await server.app.conversions.saved(scope)
    return funnel.version
