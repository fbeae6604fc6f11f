"""Retries with an insert_id count once (the reliability issue's exactly-once)."""

import pytest_twisted
from twisted.internet import defer

from hiitrack.counting import TOTAL, event_row
from hiitrack.ids import event_id
from tests.http import b64json, path


async def _report(client, user, event):
    return (await client.get(path(user, "site", "event", event), auth=(user, "pw-secret"))).json


@pytest_twisted.ensureDeferred
async def test_a_retried_event_counts_once(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})
    where = path(user_name, "site", "event", "Paid")
    first = await client.post(where, {"visitor_id": "v1", "insert_id": "k-1"})
    again = await client.post(where, {"visitor_id": "v1", "insert_id": "k-1"})
    other = await client.post(where, {"visitor_id": "v1", "insert_id": "k-2"})
    assert (first.status, first.json) == (200, {})
    assert (again.status, again.json) == (200, {"duplicate": True})
    assert (other.status, other.json) == (200, {})
    report = await _report(client, user_name, "Paid")
    assert (report["total"], report["unique_total"]) == (2, 1)


@pytest_twisted.ensureDeferred
async def test_simultaneous_retries_of_a_batch_count_once(server, user_name):
    """Ten copies of one batch in flight at once, from different visitors' connections."""
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})
    message = b64json([["Signed up", "Paid"], [["plan", "pro"]]])
    answers = await defer.gatherResults(
        [
            defer.ensureDeferred(
                client.post(
                    path(user_name, "site", "batch"),
                    {"message": message, "insert_id": "same", "visitor_id": f"v{i % 2}"},
                )
            )
            for i in range(10)
        ]
    )
    assert sorted(answer.json.get("duplicate", False) for answer in answers) == [False] + [True] * 9
    paid = await _report(client, user_name, "Paid")
    assert (paid["total"], sum(paid["path"].values())) == (1, 1)


@pytest_twisted.ensureDeferred
async def test_insert_ids_are_per_bucket_and_survive_the_cache(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})
    for bucket in ("one", "two"):
        answer = await client.post(path(user_name, bucket, "event", "A"), {"visitor_id": "v", "insert_id": "x"})
        assert answer.json == {}
    server.app.tracker.forget(f"{user_name}/one")
    answer = await client.post(path(user_name, "one", "event", "A"), {"visitor_id": "v", "insert_id": "x"})
    assert answer.json == {"duplicate": True}


@pytest_twisted.ensureDeferred
async def test_an_empty_insert_id_is_refused(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})
    answer = await client.post(path(user_name, "site", "event", "A"), {"visitor_id": "v", "insert_id": ""})
    assert answer.status == 400
    assert (await client.get(path(user_name, "site"), auth=(user_name, "pw-secret"))).status == 404


@pytest_twisted.ensureDeferred
async def test_a_new_visitors_hit_reads_its_insert_id_and_state_at_once(server, user_name):
    """Every tracker hit has an insert_id: a visitor's first hit asks for both reads before either answers."""
    store, tracker = server.app.store, server.app.tracker
    scope = f"{user_name}/site"
    get, asked, held = store.get, [], []

    async def held_get(read_scope, kind, key):
        if read_scope == scope and kind.name in ("insert", "visitor"):
            asked.append(kind.name)
            answered = defer.Deferred()
            held.append(answered)
            await answered
        return await get(read_scope, kind, key)

    store.get = held_get
    ticket = await tracker.opened(scope)
    hit = defer.Deferred.fromCoroutine(tracker.track(scope, ticket, "new", ["A"], insert_id="k-1"))
    assert sorted(asked) == ["insert", "visitor"]
    for answered in held:
        answered.callback(None)
    assert await hit is True
    del store.get
    again = await tracker.track(scope, await tracker.opened(scope), "new", ["A"], insert_id="k-1")
    assert again is False
    assert (await store.read_rows(scope, [event_row(event_id("A"))]))[0].get(TOTAL) == 1
