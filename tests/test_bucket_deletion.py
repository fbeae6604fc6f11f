"""Deleting a bucket during traffic: nothing of the old bucket reaches the new one.

Issue 10, item 7: after a DELETE in the middle of a loop, visitors' old
state (cached, or written by hits still under way) came back in the bucket
that the next hit created.  The first tests hold one hit at a fixed point
(its read of the visitor's state, or its write) while the bucket is deleted,
then let it go on; the last one deletes in the middle of a burst and checks
every report against the model.  Both stores.
"""

import random

import pytest
import pytest_twisted
from twisted.internet import defer

from hiitrack.store.kinds import VISITOR
from tests.helpers import auth_of, b64json, new_user, path, stored, track
from tests.model import Model, eid, vid

VISITORS = 20


def _hold(monkeypatch, store, method: str, matches) -> tuple[defer.Deferred, defer.Deferred]:
    """Hold the first call of `store.method` that `matches`: (reached, release)."""
    reached: defer.Deferred = defer.Deferred()
    release: defer.Deferred = defer.Deferred()
    real = getattr(store, method)

    async def held(*args):
        if matches(*args) and not reached.called:
            reached.callback(None)
            await release
        return await real(*args)

    monkeypatch.setattr(store, method, held)
    return reached, release


async def _only_post(server, user: str) -> None:
    """The new bucket holds exactly visitor w's one `Post`, as if the old bucket never was."""
    client = server.client
    await track(client, user, "b", "w", "Post")
    report = (await client.get(path(user, "b", "event", "Post"), auth=auth_of(user))).json
    assert (report["total"], report["unique_total"], report["path"], report["unique_path"]) == (1, 1, {}, {})
    assert (await client.get(path(user, "b", "event", "Pre"), auth=auth_of(user))).status == 404
    bucket = (await client.get(path(user, "b"), auth=auth_of(user))).json
    assert bucket["events"] == {"Post": {"id": eid("Post")}}
    # Only what one first hit of a fresh bucket stores: nothing left over.
    await track(client, user, "fresh", "w", "Post")
    assert await stored(server, f"{user}/b") == await stored(server, f"{user}/fresh")


@pytest.mark.parametrize("held_at", ["reading the visitor", "writing"])
@pytest_twisted.ensureDeferred
async def test_a_hit_under_way_while_its_bucket_is_deleted_stays_in_the_old_bucket(
    server, user_name, monkeypatch, held_at
):
    client = server.client
    scope = f"{user_name}/b"
    await new_user(client, user_name)
    await track(client, user_name, "b", "w", "Pre")
    if held_at == "writing":
        reached, release = _hold(monkeypatch, server.app.store, "write", lambda batch: batch.scope == scope)
    else:
        reached, release = _hold(
            monkeypatch, server.app.store, "get", lambda *address: address == (scope, VISITOR, "w")
        )
        server.app.tracker.forget(scope)  # so the hit reads w's state from the store
    hit = defer.ensureDeferred(client.post(path(user_name, "b", "event", "Pre"), {"visitor_id": "w"}))
    await reached
    deleting: defer.Deferred = defer.Deferred()
    real_delete = server.app.delete_bucket

    async def delete_bucket(*args):
        started = defer.ensureDeferred(real_delete(*args))  # runs up to its first wait
        deleting.callback(None)
        return await started

    monkeypatch.setattr(server.app, "delete_bucket", delete_bucket)
    delete = defer.ensureDeferred(client.delete(path(user_name, "b"), auth=auth_of(user_name)))
    await deleting
    if held_at == "reading the visitor":
        # The deletion does not wait for a hit that has not written yet.
        assert (await delete).status == 200
        release.callback(None)
    else:
        release.callback(None)
        assert (await delete).status == 200
    assert (await hit).status == 200
    await _only_post(server, user_name)


@pytest_twisted.ensureDeferred
async def test_a_delete_in_the_middle_of_a_burst_matches_the_model(server, user_name):
    client = server.client
    auth = auth_of(user_name)
    await new_user(client, user_name)
    rng = random.Random(7)
    visitors = [f"v{i}" for i in range(VISITORS)]
    hits = [visitor for visitor in visitors for _ in range(rng.randint(1, 4))]
    rng.shuffle(hits)
    half = len(hits) // 2

    def send(visitor: str) -> defer.Deferred:
        return defer.ensureDeferred(client.post(path(user_name, "b", "event", "Pre"), {"visitor_id": visitor}))

    first = [send(visitor) for visitor in hits[:half]]
    delete = defer.ensureDeferred(client.delete(path(user_name, "b"), auth=auth))
    second = [send(visitor) for visitor in hits[half:]]
    answers = await defer.gatherResults([*first, delete, *second], consumeErrors=True)
    assert {answer.status for answer in answers} <= {200, 404}
    # After the burst: each visitor gets a property of its own, then does Pre once more.
    for visitor in visitors:
        answer = await client.post(
            path(user_name, "b", "property", "who"), {"visitor_id": visitor, "value": b64json(visitor)}
        )
        assert answer.status == 200
        await track(client, user_name, "b", visitor, "Pre")
    answer = await client.get(path(user_name, "b", "event", "Pre"), {"property": "who"}, auth=auth)
    assert answer.status == 200, answer.json
    split = answer.json
    model = Model()
    for visitor in visitors:
        model.property(visitor, "who", visitor)
        # How many of its hits the new bucket holds, as its own segment says.
        for _ in range(split["totals"][vid("who", visitor)]):
            model.event(visitor, "Pre", 0)
    plain = (await client.get(path(user_name, "b", "event", "Pre"), auth=auth)).json
    assert plain == model.event_report("Pre")
    assert plain["unique_total"] == VISITORS
    assert split == model.event_report("Pre", "who")
    assert (await client.get(path(user_name, "b", "property", "who"), auth=auth)).json == model.property_report("who")
