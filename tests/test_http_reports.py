"""Reports over HTTP: event, property and funnel reports, with numbers worked
out by hand from docs/api.md's counting semantics."""

import re

import pytest
import pytest_twisted

from hiitrack.accounts import bucket_scope
from hiitrack.counting import DAY, HOUR, NAMES
from hiitrack.store.kinds import VALUE
from tests.helpers import auth_of, b64json, batch, eid, get_json, new_user, path, pid, track, vid

D = 1_699_920_000  # 2023-11-14 00:00:00 UTC, a day boundary
H10, H11 = D + 10 * 3600, D + 11 * 3600
NEXT_H9 = D + 86400 + 9 * 3600


async def _timed_bucket(server, user):
    """v1: A 10:00:05, B 10:30; v2 (plan=pro first): A 10:30; v1: A 11:15, A next day 09:00."""
    client = server.client
    await new_user(client, user)
    server.clock.now = H10 + 5
    await track(client, user, "b", "v1", "A")
    server.clock.now = H10 + 1800
    await track(client, user, "b", "v1", "B")
    await batch(client, user, "b", "v2", ["A"], [["plan", "pro"]])
    server.clock.now = H11 + 900
    await track(client, user, "b", "v1", "A")
    server.clock.now = NEXT_H9
    await track(client, user, "b", "v1", "A")


@pytest_twisted.ensureDeferred
async def test_event_report_plain(server, user_name):
    await _timed_bucket(server, user_name)
    expected = {
        "id": eid("A"),
        "name": "A",
        "total": 4,
        "unique_total": 2,
        "path": {eid("A"): 2, eid("B"): 2},
        "unique_path": {eid("A"): 1, eid("B"): 1},
        "properties": {pid("plan"): "plan"},
    }
    assert await get_json(server, user_name, "event", "A") == expected
    assert await get_json(server, user_name, "event_id", eid("A")) == expected
    assert await get_json(server, user_name, "event", "B") == {
        "id": eid("B"),
        "name": "B",
        "total": 1,
        "unique_total": 1,
        "path": {eid("A"): 1},
        "unique_path": {eid("A"): 1},
        "properties": {pid("plan"): "plan"},
    }


@pytest_twisted.ensureDeferred
async def test_event_report_by_hour(server, user_name):
    await _timed_bucket(server, user_name)
    report = await get_json(
        server, user_name, "event", "A", params={"start": D, "finish": D + 2 * 86400 - 1, "interval": "hour"}
    )
    assert report == {
        "id": eid("A"),
        "name": "A",
        "total": [[H10, 2], [H11, 1], [NEXT_H9, 1]],
        "unique_total": [[H10, 2]],
        "path": {eid("A"): [[H11, 1], [NEXT_H9, 1]], eid("B"): [[H11, 1], [NEXT_H9, 1]]},
        "unique_path": {eid("A"): [[H11, 1]], eid("B"): [[H11, 1]]},
        "properties": {pid("plan"): "plan"},
    }
    report = await get_json(
        server, user_name, "event", "A", params={"start": H11, "finish": H11 + 3599, "interval": "hour"}
    )
    assert (report["total"], report["unique_total"], report["path"], report["unique_path"]) == (
        [[H11, 1]],
        [],
        {eid("A"): [[H11, 1]], eid("B"): [[H11, 1]]},
        {eid("A"): [[H11, 1]], eid("B"): [[H11, 1]]},
    )
    report = await get_json(server, user_name, "event", "B", params={"start": D, "interval": "hour"})
    assert (report["total"], report["unique_total"], report["path"], report["unique_path"]) == (
        [[H10, 1]],
        [[H10, 1]],
        {eid("A"): [[H10, 1]]},
        {eid("A"): [[H10, 1]]},
    )


@pytest_twisted.ensureDeferred
async def test_event_report_by_day(server, user_name):
    await _timed_bucket(server, user_name)
    # interval defaults to day, finish to now.
    report = await get_json(server, user_name, "event", "A", params={"start": D})
    assert report == {
        "id": eid("A"),
        "name": "A",
        "total": [[D, 3], [D + 86400, 1]],
        "unique_total": [[D, 2]],
        "path": {eid("A"): [[D, 1], [D + 86400, 1]], eid("B"): [[D, 1], [D + 86400, 1]]},
        "unique_path": {eid("A"): [[D, 1]], eid("B"): [[D, 1]]},
        "properties": {pid("plan"): "plan"},
    }
    report = await get_json(
        server, user_name, "event", "A", params={"start": D, "finish": D + 86399, "interval": "day"}
    )
    assert (report["total"], report["path"]) == ([[D, 3]], {eid("A"): [[D, 1]], eid("B"): [[D, 1]]})
    report = await get_json(server, user_name, "event", "A", params={"start": D - 3 * 86400, "finish": D - 1})
    assert (report["total"], report["unique_total"], report["path"], report["unique_path"]) == ([], [], {}, {})
    by_id = await get_json(server, user_name, "event_id", eid("A"), params={"start": D})
    assert by_id["total"] == [[D, 3], [D + 86400, 1]]


@pytest_twisted.ensureDeferred
async def test_event_report_by_property_and_time(server, user_name):
    await _timed_bucket(server, user_name)
    pro = vid("plan", "pro")
    report = await get_json(
        server, user_name, "event", "A", params={"property": "plan", "start": D, "interval": "hour"}
    )
    assert report == {
        "id": eid("A"),
        "name": "A",
        "values": {pro: "pro"},
        "totals": {pro: [[H10, 1]]},
        "unique_totals": {pro: [[H10, 1]]},
        "paths": {pro: {}},
        "unique_paths": {pro: {}},
        "properties": {pid("plan"): "plan"},
    }
    report = await get_json(server, user_name, "event", "A", params={"property": "plan"})
    assert (report["totals"], report["unique_totals"], report["paths"]) == ({pro: 1}, {pro: 1}, {pro: {}})


@pytest.mark.parametrize(
    "params",
    [
        {"start": D, "interval": "week"},
        {"start": D, "interval": "HOUR"},
        {"start": D, "interval": "minute"},
        {"start": D, "interval": ""},
        {"start": "yesterday"},
        {"start": "1.5"},
        {"start": "1e9"},
        {"start": ""},
        {"start": " 1"},
        {"start": "-1"},
        {"start": D, "finish": "now"},
        {"start": D, "finish": "2.0"},
        {"start": D, "finish": D - 1},
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_time_range_is_400(server, user_name, params):
    await _timed_bucket(server, user_name)
    answer = await get_json(server, user_name, "event", "A", params=params, status=400)
    assert isinstance(answer["error"], str)


@pytest.mark.parametrize("interval", [HOUR, DAY])
@pytest_twisted.ensureDeferred
async def test_a_range_starting_just_past_a_row_s_first_second_still_holds_its_first_bucket(
    server, user_name, interval
):
    """Series rows are shards of 2^21 s (hours) or 2^25 s (days), which begin inside a bucket: a
    `start` past a shard's beginning still reads the bucket it rounds down to, which the shard
    before holds, in the event series and in an exact funnel's days alike."""
    client = server.client
    await new_user(client, user_name)
    boundary = next(
        shard * interval.shard_seconds
        for shard in range(D // interval.shard_seconds, D // interval.shard_seconds + 10)
        if shard * interval.shard_seconds % interval.seconds
    )
    bucket = interval.start_of(boundary)
    assert bucket // interval.shard_seconds < boundary // interval.shard_seconds
    assert (await client.post(path(user_name, "b"), {}, auth=auth_of(user_name))).status == 201
    saved = await client.post(path(user_name, "b", "funnel", "f"), {"event": ["A", "B"]}, auth=auth_of(user_name))
    assert saved.status == 201, saved.body
    server.clock.now = boundary + 60
    hit = {"visitor_id": "v", "message": b64json([["A", "B"], []]), "time": bucket + 1}
    assert (await client.post(path(user_name, "b", "batch"), hit)).status == 200
    name = "hour" if interval is HOUR else "day"
    for start in (bucket, boundary, boundary + 1):
        params = {"start": start, "finish": boundary + 60, "interval": name}
        report = await get_json(server, user_name, "event", "A", params=params)
        assert report["total"] == [[bucket, 1]], start
        if interval is DAY:
            answer = await get_json(server, user_name, "funnel", "f", params=params)
            assert answer["conversion"]["days"] == [[bucket, [1, 1]]], start


@pytest.mark.parametrize("name", ["", "p" * 257])
@pytest_twisted.ensureDeferred
async def test_a_property_split_by_a_name_no_property_can_have_is_400(server, user_name, name):
    """As the funnel preview's: an empty name or one over 256 bytes is a bad parameter, not a property unseen."""
    await _timed_bucket(server, user_name)
    answer = await get_json(server, user_name, "event", "A", params={"property": name}, status=400)
    assert "property name" in answer["error"]
    await get_json(server, user_name, "event", "A", params={"property": "p" * 256}, status=404)


@pytest_twisted.ensureDeferred
async def test_unknown_event_is_404(server, user_name):
    await _timed_bucket(server, user_name)
    await get_json(server, user_name, "event", "never", status=404)
    await get_json(server, user_name, "event_id", eid("never"), status=404)
    await get_json(server, user_name, "event", "a", status=404)  # names are case-sensitive
    await get_json(server, user_name, "event", "A", params={"property": "never"}, status=404)


@pytest.mark.parametrize(
    "bad_id",
    [
        "!" * 22,
        "A" * 21,
        "A" * 23,
        "A" * 24,
        "AAAAAAAAAAAAAAAAAAAAAA==",
        "+" * 22,
        "/" * 22,
        "AAAAAAAAAAAAAAAAAAAAAB",  # non-zero padding bits: not the encoding of any id
        vid("plan", "pro"),
        "é" * 22,
    ],
)
@pytest_twisted.ensureDeferred
async def test_invalid_ids_are_400(server, user_name, bad_id):
    await _timed_bucket(server, user_name)
    await get_json(server, user_name, "event_id", bad_id, status=400)
    await get_json(server, user_name, "property_id", bad_id, status=400)
    await get_json(server, user_name, "funnel", params=[("event_id", eid("A")), ("event_id", bad_id)], status=400)


@pytest_twisted.ensureDeferred
async def test_property_report(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B", "A"], [["plan", "pro"]])
    await batch(client, user_name, "b", "v2", ["A"], [["plan", "pro"], ["plan", {"n": [1, 2]}]])
    await batch(client, user_name, "b", "v3", ["C"])
    answer = await client.post(path(user_name, "b", "property", "plan"), {"visitor_id": "v3", "value": b64json("pro")})
    assert answer.status == 200
    pro, obj = vid("plan", "pro"), vid("plan", {"n": [1, 2]})
    expected = {
        "id": pid("plan"),
        "name": "plan",
        "values": {
            pro: {"value": "pro", "total": {eid("A"): 2, eid("B"): 1, eid("C"): 1}},
            obj: {"value": {"n": [1, 2]}, "total": {eid("A"): 1}},
        },
        "events": {eid("A"): "A", eid("B"): "B", eid("C"): "C"},
    }
    assert await get_json(server, user_name, "property", "plan") == expected
    assert await get_json(server, user_name, "property_id", pid("plan")) == expected
    await get_json(server, user_name, "property", "never", status=404)
    await get_json(server, user_name, "property_id", pid("never"), status=404)
    await get_json(server, user_name, "property", "A", status=404)  # an event, not a property


async def _funnel_bucket(server, user):
    """v1 (plan=pro first): A B C; v2: A C, then plan=free; v3: B A B."""
    client = server.client
    await new_user(client, user)
    await batch(client, user, "b", "v1", ["A", "B", "C"], [["plan", "pro"]])
    await track(client, user, "b", "v2", "A", "C")
    answer = await client.post(path(user, "b", "property", "plan"), {"visitor_id": "v2", "value": b64json("free")})
    assert answer.status == 200
    await track(client, user, "b", "v3", "B", "A", "B")


A, B, C = eid("A"), eid("B"), eid("C")
PLAIN_FUNNEL = {
    "event_ids": [A, B, C],
    "total": {A: 3, B: 3, C: 2},
    "unique_total": {A: 3, B: 2, C: 2},
    "path": {A: {B: 1}, B: {A: 2, B: 1}, C: {A: 2, B: 1}},
    "unique_path": {A: {B: 1}, B: {A: 2, B: 1}, C: {A: 2, B: 1}},
    "funnel": [[A, 3], [B, 2], [C, 1]],
    "unique_funnel": [[A, 3], [B, 2], [C, 1]],
}
PRO, FREE = vid("plan", "pro"), vid("plan", "free")
SEGMENT_COUNTS = {A: {PRO: 1, FREE: 1}, B: {PRO: 1, FREE: 0}, C: {PRO: 1, FREE: 1}}
SEGMENT_PATHS = {A: {PRO: {}, FREE: {}}, B: {PRO: {A: 1}, FREE: {}}, C: {PRO: {A: 1, B: 1}, FREE: {A: 1}}}
PROPERTY_FUNNEL = {
    "event_ids": [A, B, C],
    "property": {"name": "plan", "id": pid("plan"), "values": {PRO: "pro", FREE: "free"}},
    "totals": SEGMENT_COUNTS,
    "unique_totals": SEGMENT_COUNTS,
    "paths": SEGMENT_PATHS,
    "unique_paths": SEGMENT_PATHS,
    "funnels": {PRO: [[A, 1], [B, 1], [C, 1]], FREE: [[A, 1], [B, 0], [C, 0]]},
    "unique_funnels": {PRO: [[A, 1], [B, 1], [C, 1]], FREE: [[A, 1], [B, 0], [C, 0]]},
}


@pytest_twisted.ensureDeferred
async def test_funnel_preview(server, user_name):
    await _funnel_bucket(server, user_name)
    by_name = await get_json(server, user_name, "funnel", params=[("event", "A"), ("event", "B"), ("event", "C")])
    assert by_name == PLAIN_FUNNEL
    by_id = await get_json(server, user_name, "funnel", params=[("event_id", A), ("event_id", B), ("event_id", C)])
    assert by_id == PLAIN_FUNNEL
    reverse = await get_json(server, user_name, "funnel", params=[("event", "C"), ("event", "A")])
    assert (reverse["funnel"], reverse["unique_funnel"]) == ([[C, 2], [A, 0]], [[C, 2], [A, 0]])
    # Previews save nothing.
    assert (await get_json(server, user_name))["funnels"] == {}


@pytest_twisted.ensureDeferred
async def test_funnel_preview_with_property(server, user_name):
    await _funnel_bucket(server, user_name)
    params = [("event", "A"), ("event", "B"), ("event", "C"), ("property", "plan")]
    assert await get_json(server, user_name, "funnel", params=params) == PROPERTY_FUNNEL
    params = [("event_id", A), ("event_id", B), ("event_id", C), ("property", "plan")]
    assert await get_json(server, user_name, "funnel", params=params) == PROPERTY_FUNNEL
    # A property the bucket has never seen reports no values.
    report = await get_json(server, user_name, "funnel", params=[("event", "A"), ("event", "B"), ("property", "nope")])
    assert report == {
        "event_ids": [A, B],
        "property": {"name": "nope", "id": pid("nope"), "values": {}},
        "totals": {A: {}, B: {}},
        "unique_totals": {A: {}, B: {}},
        "paths": {A: {}, B: {}},
        "unique_paths": {A: {}, B: {}},
        "funnels": {},
        "unique_funnels": {},
    }


@pytest_twisted.ensureDeferred
async def test_funnel_unknown_step_counts_zero(server, user_name):
    await _funnel_bucket(server, user_name)
    never = eid("never")
    report = await get_json(server, user_name, "funnel", params=[("event", "A"), ("event", "never"), ("event", "C")])
    assert report["funnel"] == [[A, 3], [never, 0], [C, 0]]
    assert report["unique_funnel"] == [[A, 3], [never, 0], [C, 0]]
    assert (report["total"][never], report["unique_total"][never], report["path"][never]) == (0, 0, {})
    report = await get_json(server, user_name, "funnel", params=[("event_id", never), ("event_id", A)])
    assert report["funnel"] == [[never, 0], [A, 0]]
    report = await get_json(
        server, user_name, "funnel", params=[("event", "never"), ("event", "A"), ("property", "plan")]
    )
    assert report["funnels"] == {PRO: [[never, 0], [A, 0]], FREE: [[never, 0], [A, 0]]}


@pytest_twisted.ensureDeferred
async def test_a_report_reads_the_names_in_use_once_and_a_property_s_values_once(server, user_name, monkeypatch):
    """However many names a report gives (its event, the properties, their
    values), the bucket's names row is read once; a saved funnel split by a
    property reads the property's values once for its pairwise and exact parts."""
    await _funnel_bucket(server, user_name)
    await batch(server.client, user_name, "b", "v1", [], [["country", "nl"]])
    params = {"event": ["A", "B", "C"], "property": "plan"}
    saved = await server.client.post(path(user_name, "b", "funnel", "f"), params, auth=auth_of(user_name))
    assert saved.status == 201, saved.body
    scope = bucket_scope(user_name, "b")
    await server.app.backfills.finished(scope, "f")
    store = server.app.store
    names_reads: list[str] = []
    value_scans: list[str] = []
    read_rows, scan = store.read_rows, store.scan

    def counted_read_rows(read_scope, rows, *bounds):
        names_reads.extend(read_scope for row in rows if row == NAMES)
        return read_rows(read_scope, rows, *bounds)

    def counted_scan(scan_scope, kind, *args):
        if kind == VALUE.of(pid("plan")):
            value_scans.append(scan_scope)
        return scan(scan_scope, kind, *args)

    monkeypatch.setattr(store, "read_rows", counted_read_rows)
    monkeypatch.setattr(store, "scan", counted_scan)
    reports = [
        ((), None),
        (("event", "A"), {"property": "plan"}),
        (("property", "plan"), None),
        (("funnel", "f"), None),
        (("visitor", "v1"), None),
    ]
    for segments, report_params in reports:
        names_reads.clear()
        value_scans.clear()
        answer = await get_json(server, user_name, *segments, params=report_params)
        assert names_reads == [scope], segments
        assert value_scans == ([scope] if segments != () else []), segments
    assert answer["properties"] == {"country": ["nl"], "plan": ["pro"]}


@pytest.mark.parametrize(
    "params",
    [
        [],
        [("event", "A")],
        [("event_id", A)],
        [("property", "plan")],
        [("event", "A"), ("property", "plan")],
        [("event", "A"), ("event", "")],
    ],
)
@pytest_twisted.ensureDeferred
async def test_funnel_needs_two_steps(server, user_name, params):
    await _funnel_bucket(server, user_name)
    answer = await get_json(server, user_name, "funnel", params=params, status=400)
    assert isinstance(answer["error"], str)
    answer = await server.client.post(
        path(user_name, "b", "funnel", "f"), [("description", "d")] + params, auth=auth_of(user_name)
    )
    assert answer.status == 400
    await get_json(server, user_name, "funnel", "f", status=404)


@pytest_twisted.ensureDeferred
async def test_saved_funnel(server, user_name):
    client = server.client
    await _funnel_bucket(server, user_name)
    where = path(user_name, "b", "funnel", "my funnel")
    steps = [("event_id", A), ("event_id", B), ("event_id", C)]
    await get_json(server, user_name, "funnel", "my funnel", status=404)

    answer = await client.post(
        where, steps + [("description", "signups"), ("property", "plan")], auth=auth_of(user_name)
    )
    assert (answer.status, answer.json) == (201, {})
    report = await get_json(server, user_name, "funnel", "my funnel")
    # Part 2 adds the exact report (tests/test_exact_funnels.py); Part 1's keys are unchanged.
    assert report.pop("conversion")["backfill"]["state"] == "running"
    assert report == {**PROPERTY_FUNNEL, "description": "signups"}
    assert (await get_json(server, user_name))["funnels"] == {"my funnel": {"description": "signups"}}

    # POST again overwrites.
    answer = await client.post(where, steps + [("description", "plain")], auth=auth_of(user_name))
    assert answer.status == 201
    report = await get_json(server, user_name, "funnel", "my funnel")
    assert "by_value" not in report.pop("conversion")
    assert report == {**PLAIN_FUNNEL, "description": "plain"}
    # A saved funnel follows new data.
    await track(client, user_name, "b", "v4", "A", "B", "C")
    report = await get_json(server, user_name, "funnel", "my funnel")
    assert report["funnel"] == [[A, 4], [B, 3], [C, 2]]

    answer = await client.delete(where, auth=auth_of(user_name))
    assert (answer.status, answer.json) == (200, {})
    await get_json(server, user_name, "funnel", "my funnel", status=404)
    assert (await get_json(server, user_name))["funnels"] == {}
    assert (await client.delete(where, auth=auth_of(user_name))).status == 404


@pytest_twisted.ensureDeferred
async def test_saved_funnel_in_unknown_bucket_is_404(server, user_name):
    client = server.client
    await new_user(client, user_name)
    steps = [("event_id", A), ("event_id", B)]
    assert (await client.post(path(user_name, "nope", "funnel", "f"), steps, auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "nope", "funnel", "f"), auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "nope", "funnel"), steps, auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "nope", "event", "A"), auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "nope", "property", "p"), auth=auth_of(user_name))).status == 404


WIRE_16 = re.compile(r"[A-Za-z0-9_-]{22}")
WIRE_32 = re.compile(r"[A-Za-z0-9_-]{43}")


def test_hand_computed_ids():
    """The ids the tests expect: MD5s, URL-safe base64 without padding."""
    assert eid("A") == "f8VicOenD6gaWTW3Lqy-KQ"
    assert pid("plan") == "X8JRV2UNDLJPAiFtkEWE3w"
    assert vid("plan", "pro") == "X8JRV2UNDLJPAiFtkEWE36AatcD_gaYLfRzqhMx9y3o"
    assert vid("plan", {"n": [1, 2]}) == "X8JRV2UNDLJPAiFtkEWE38kXrIHMAh71r3Okv8i37uU"
    assert all(WIRE_16.fullmatch(x) for x in (A, B, C, pid("plan")))
    assert all(WIRE_32.fullmatch(x) for x in (PRO, FREE))


@pytest_twisted.ensureDeferred
async def test_ids_on_the_wire(server, user_name):
    await _funnel_bucket(server, user_name)
    bucket = await get_json(server, user_name)
    report = await get_json(server, user_name, "funnel", params=[("event", "A"), ("event", "B"), ("property", "plan")])
    event_ids = [e["id"] for e in bucket["events"].values()] + list(report["totals"]) + report["event_ids"]
    value_ids = list(report["property"]["values"]) + list(report["funnels"])
    assert sorted(set(event_ids)) == sorted({A, B, C})
    assert all(WIRE_16.fullmatch(x) for x in event_ids + list(bucket["properties"]))
    assert all(WIRE_32.fullmatch(x) for x in value_ids)
    assert all(x.startswith(pid("plan")[:21]) for x in value_ids)  # 16 bytes end mid-character
