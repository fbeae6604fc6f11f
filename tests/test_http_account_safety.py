"""Account safety over HTTP (issue 10, items 1, 12, 13, 14, 15), on both stores.

A change needs the server's own origin (or no Origin at all, as curl sends)
and, for a password, the current one in the body; secrets never come from
the query string; passwords have a minimum length; a password change racing
the account's deletion does not bring it back; a bucket deleted and created
again has a new access key; first-hit bucket creation follows the user's
switch and the cap on buckets per user.
"""

import pytest
import pytest_twisted
from twisted.internet import defer

from hiitrack.limits import Limits
from hiitrack.store.kinds import USER
from tests.helpers import PASSWORD, auth_of, b64json, batch, eid, new_user, path, stored

OTHER_SITE = "http://evil.example"


CHANGES = [
    ("POST", (), {"password": "attacker-chose-this", "current_password": PASSWORD}),
    ("DELETE", (), None),
    ("POST", ("new",), {"description": "x"}),
    ("DELETE", ("b",), None),
    ("POST", ("b", "funnel", "g"), [("event_id", eid("A")), ("event_id", eid("B"))]),
]


@pytest.mark.parametrize("method,segments,data", CHANGES)
@pytest.mark.parametrize(
    "headers",
    [{"Origin": OTHER_SITE}, {"Origin": "null"}, {"Referer": OTHER_SITE + "/page.html"}],
    ids=["origin", "null-origin", "referer"],
)
@pytest_twisted.ensureDeferred
async def test_changes_from_another_origin_are_refused(server, user_name, method, segments, data, headers):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B"])
    before = {scope: await stored(server, scope) for scope in (user_name, f"{user_name}/b")}
    answer = await client.request(
        method, path(user_name, *segments), data=data, auth=auth_of(user_name), headers=headers
    )
    assert answer.status == 403, answer.body
    assert "another site" in answer.json["error"]
    assert {scope: await stored(server, scope) for scope in before} == before
    assert (await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {"b": {"description": ""}}


@pytest.mark.parametrize("method,segments,data", CHANGES)
@pytest_twisted.ensureDeferred
async def test_changes_from_the_own_origin_or_without_one_pass(server, user_name, method, segments, data):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A", "B"])
    own = {"Origin": server.url, "Referer": server.url + "/somewhere"}
    answer = await client.request(method, path(user_name, *segments), data=data, auth=auth_of(user_name), headers=own)
    assert answer.status in (200, 201), answer.body


@pytest_twisted.ensureDeferred
async def test_reads_and_tracking_from_another_origin_still_work(server, user_name):
    client = server.client
    await new_user(client, user_name)
    other = {"Origin": OTHER_SITE}
    tracked = await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"}, headers=other)
    assert tracked.status == 200
    message = {"visitor_id": "v", "message": b64json([["B"], []])}
    assert (await client.post(path(user_name, "b", "batch"), message, headers=other)).status == 200
    report = await client.get(path(user_name, "b", "event", "B"), auth=auth_of(user_name), headers=other)
    assert report.json["path"] == {eid("A"): 1}


@pytest_twisted.ensureDeferred
async def test_a_password_change_needs_the_current_password(server, user_name):
    client = server.client
    await new_user(client, user_name)
    for data, status in [
        # Without current_password it is no change but POST /{user}'s creation: 403, the user exists.
        ({"password": "new password"}, 403),
        ({"password": "new password", "current_password": "wrong password"}, 401),
    ]:
        answer = await client.post(path(user_name), data, auth=auth_of(user_name))
        assert answer.status == status, answer.body
        assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200
    changed = await client.post(
        path(user_name), {"password": "new password", "current_password": PASSWORD}, auth=auth_of(user_name)
    )
    assert (changed.status, changed.json) == (200, {})
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 401
    assert (await client.get(path(user_name), auth=(user_name, "new password"))).status == 200


@pytest.mark.parametrize("name", ["password", "current_password"])
@pytest_twisted.ensureDeferred
async def test_secrets_in_the_query_string_are_refused(server, user_name, name):
    client = server.client
    await new_user(client, user_name)
    data = {"password": "new password", "current_password": PASSWORD}
    answer = await client.request(
        "POST", path(user_name), params={name: data.pop(name)}, data=data, auth=auth_of(user_name)
    )
    assert answer.status == 400, answer.body
    assert "body" in answer.json["error"]
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200
    created = await client.request("POST", path(user_name + "q"), params={"password": PASSWORD})
    assert created.status == 400
    assert (await client.post(path(user_name + "q"), {"password": PASSWORD})).status == 201


@pytest.mark.parametrize("password", ["", "x", "7 chars", "x" * 1025])
@pytest_twisted.ensureDeferred
async def test_too_short_or_too_long_passwords_are_refused(server, user_name, password):
    client = server.client
    answer = await client.post(path(user_name), {"password": password})
    assert answer.status == 400 and "8-1024" in answer.json["error"]
    assert await server.app.accounts.user(user_name) is None
    await new_user(client, user_name)
    change = {"password": password, "current_password": PASSWORD}
    assert (await client.post(path(user_name), change, auth=auth_of(user_name))).status == 400
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200
    assert (await client.post(path(user_name + "8"), {"password": "8 chars!"})).status == 201


@pytest_twisted.ensureDeferred
async def test_a_password_change_racing_the_deletion_does_not_bring_the_account_back(server, user_name):
    client = server.client
    for attempt in range(3):
        name = f"{user_name}r{attempt}"
        await new_user(client, name)
        await batch(client, name, "b", "v1", ["A"])
        change = client.post(path(name), {"password": "new password", "current_password": PASSWORD}, auth=auth_of(name))
        delete = client.delete(path(name), auth=auth_of(name))
        changed, deleted = await defer.gatherResults([defer.ensureDeferred(change), defer.ensureDeferred(delete)])
        if deleted.status == 401:
            # The change came first: the deletion was asked with a dead password.
            assert changed.status == 200
            continue
        assert deleted.status == 200, deleted.body
        assert changed.status in (200, 403, 404), changed.body
        assert await server.app.accounts.user(name) is None
        for password in (PASSWORD, "new password"):
            assert (await client.get(path(name), auth=(name, password))).status == 401
        assert (await client.post(path(name, "b", "event", "A"), {"visitor_id": "v"})).status == 404


@pytest_twisted.ensureDeferred
async def test_the_compare_and_set_never_writes_over_a_deleted_or_changed_record(server, user_name):
    """The race above, made certain: the change lands after the deletion."""
    accounts = server.app.accounts
    await new_user(server.client, user_name)
    raw = await server.app.store.get("", USER, user_name)
    assert not await server.app.store.replace("", USER, user_name, raw + b" ", b"other")
    await server.app.delete_user(user_name)
    assert not await server.app.store.replace("", USER, user_name, raw, b"resurrected")
    assert await accounts.user(user_name) is None


@pytest_twisted.ensureDeferred
async def test_deleting_a_bucket_revokes_its_access_key(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A"])
    old_key = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json["access_key"]
    assert (await client.get(path(user_name, "b", "event", "A"), auth=(user_name, old_key))).status == 200
    assert (await client.delete(path(user_name, "b"), auth=auth_of(user_name))).status == 200
    # An anonymous hit creates the bucket again: the old key does not read it.
    await batch(client, user_name, "b", "v2", ["A"])
    for where in [path(user_name, "b"), path(user_name, "b", "event", "A")]:
        assert (await client.get(where, auth=(user_name, old_key))).status == 401
    new_key = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json["access_key"]
    assert new_key != old_key
    assert (await client.get(path(user_name, "b", "event", "A"), auth=(user_name, new_key))).json["total"] == 1


@pytest_twisted.ensureDeferred
async def test_first_hit_bucket_creation_follows_the_users_switch(server, user_name):
    client = server.client
    answer = await client.post(path(user_name), {"password": PASSWORD, "buckets_on_hit": "false"})
    assert answer.status == 201
    hit = await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"})
    assert hit.status == 404 and "POST" in hit.json["error"]
    assert (await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {}
    assert await stored(server, f"{user_name}/b") == 0
    # A bucket made by its owner takes hits.
    assert (await client.post(path(user_name, "b"), {"description": "d"}, auth=auth_of(user_name))).status == 201
    assert (await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"})).status == 200
    # The owner turns it back on, proving the password.
    switch = {"buckets_on_hit": "true", "current_password": PASSWORD}
    assert (await client.post(path(user_name), switch, auth=auth_of(user_name))).status == 200
    assert (await client.post(path(user_name, "c", "event", "A"), {"visitor_id": "v"})).status == 200
    assert set((await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"]) == {"b", "c"}
    bad = await client.post(path(user_name), {"buckets_on_hit": "maybe", "current_password": PASSWORD})
    assert bad.status == 400


@pytest_twisted.ensureDeferred
async def test_buckets_per_user_are_capped(server, user_name):
    client = server.client
    server.app.accounts.limits = Limits(user_buckets=3)
    await new_user(client, user_name)
    for bucket in ("a", "b"):
        assert (await client.post(path(user_name, bucket, "event", "A"), {"visitor_id": "v"})).status == 200
    assert (await client.post(path(user_name, "c"), {"description": ""}, auth=auth_of(user_name))).status == 201
    over = [
        await client.post(path(user_name, "d", "event", "A"), {"visitor_id": "v"}),
        await client.get(path(user_name, "d", "batch"), {"visitor_id": "v", "message": b64json([["A"], []])}),
        await client.post(path(user_name, "d"), {"description": ""}, auth=auth_of(user_name)),
    ]
    for answer in over:
        assert answer.status == 422, answer.body
        assert (answer.json["limit"], answer.json["max"]) == ("user-buckets", 3)
    assert set((await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"]) == {"a", "b", "c"}
    assert await stored(server, f"{user_name}/d") == 0
    # Existing buckets keep taking hits.
    assert (await client.post(path(user_name, "a", "event", "B"), {"visitor_id": "v"})).status == 200
