"""Users and buckets over HTTP: create, read, delete (docs/api.md "Users", "Buckets")."""

import pytest
import pytest_twisted

from hiitrack.errors import NotFound
from tests.helpers import (
    PASSWORD,
    auth_of,
    b64json,
    batch,
    eid,
    new_bucket,
    new_user,
    path,
    pid,
    stored,
    track,
)


@pytest_twisted.ensureDeferred
async def test_create_user(server, user_name):
    answer = await server.client.post(path(user_name), {"password": PASSWORD})
    assert (answer.status, answer.json) == (201, {})
    assert answer.header("Content-Type") == "application/json"


@pytest_twisted.ensureDeferred
async def test_a_user_is_created_whatever_credentials_come_with_the_post(server, user_name):
    """A client that always sends its Basic login (curl -u, a saved browser login) still creates
    the user: only a POST with `current_password` is a change of an existing one."""
    answer = await server.client.post(path(user_name), {"password": PASSWORD}, auth=auth_of(user_name))
    assert (answer.status, answer.json) == (201, {})
    assert (await server.client.get(path(user_name), auth=auth_of(user_name))).status == 200
    again = await server.client.post(path(user_name), {"password": "another password"}, auth=auth_of(user_name))
    assert again.status == 403
    assert (await server.client.get(path(user_name), auth=auth_of(user_name))).status == 200


@pytest_twisted.ensureDeferred
async def test_create_existing_user_is_403(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.post(path(user_name), {"password": "another password"})
    assert answer.status == 403
    assert isinstance(answer.json["error"], str)
    # The first password still works: nothing was overwritten.
    assert (await server.client.get(path(user_name), auth=auth_of(user_name))).status == 200


@pytest_twisted.ensureDeferred
async def test_create_user_without_password_is_400(server, user_name):
    answer = await server.client.post(path(user_name), {"description": "x"})
    assert answer.status == 400
    assert isinstance(answer.json["error"], str)
    assert await stored(server, user_name) == 0
    assert (await server.client.post(path(user_name), {"password": PASSWORD})).status == 201


@pytest.mark.parametrize(
    "name",
    [".hidden", "a" * 65, "with space", "sl/ash", "é", "a+b", "a@b", "tab\t", "nul\x00"],
)
@pytest_twisted.ensureDeferred
async def test_invalid_user_names_are_400(server, name):
    answer = await server.client.post(path(name), {"password": PASSWORD})
    assert answer.status == 400
    assert "error" in answer.json


@pytest.mark.parametrize("pattern", ["{}", "{}A-Z_a.z-09", "_{}", "-{}", "{}.", "{}" + "x" * 47])
@pytest_twisted.ensureDeferred
async def test_valid_user_names(server, user_name, pattern):
    name = pattern.format(user_name)  # user_name is 17 characters: the last one is 64
    assert len(name) <= 64
    answer = await server.client.post(path(name), {"password": PASSWORD})
    assert (answer.status, answer.json) == (201, {})
    assert (await server.client.get(path(name), auth=(name, PASSWORD))).json["user_name"] == name


@pytest.mark.parametrize("name", [".hidden", "b" * 65, "with space", "ü", "a:b"])
@pytest_twisted.ensureDeferred
async def test_invalid_bucket_names_are_400(server, user_name, name):
    await new_user(server.client, user_name)
    answer = await server.client.post(path(user_name, name), {"description": "d"}, auth=auth_of(user_name))
    assert answer.status == 400
    answer = await server.client.post(path(user_name, name, "event", "A"), {"visitor_id": "v"})
    assert answer.status == 400
    assert (await server.client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {}


@pytest_twisted.ensureDeferred
async def test_get_user(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.get(path(user_name), auth=auth_of(user_name))
    assert (answer.status, answer.json) == (200, {"user_name": user_name, "buckets": {}})
    await new_bucket(server.client, user_name, "shop", "the shop")
    await track(server.client, user_name, "blog", "v1", "visit")  # created by tracking
    answer = await server.client.get(path(user_name), auth=auth_of(user_name))
    assert answer.json == {
        "user_name": user_name,
        "buckets": {"shop": {"description": "the shop"}, "blog": {"description": ""}},
    }


@pytest_twisted.ensureDeferred
async def test_create_bucket(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.post(path(user_name, "b.1"), {"description": "first"}, auth=auth_of(user_name))
    assert (answer.status, answer.json) == (201, {})
    again = await server.client.post(path(user_name, "b.1"), {"description": "second"}, auth=auth_of(user_name))
    assert again.status == 403
    assert "error" in again.json
    answer = await server.client.get(path(user_name, "b.1"), auth=auth_of(user_name))
    assert answer.json["description"] == "first"


@pytest_twisted.ensureDeferred
async def test_create_bucket_needs_auth(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.post(path(user_name, "b"), {"description": "d"})
    assert answer.status == 401
    answer = await server.client.post(path(user_name, "b"), {"description": "d"}, auth=(user_name, "wrong"))
    assert answer.status == 401
    assert await stored(server, user_name) == 0


@pytest_twisted.ensureDeferred
async def test_get_bucket_shape(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await new_bucket(client, user_name, "b", "my bucket")
    answer = await client.get(path(user_name, "b"), auth=auth_of(user_name))
    assert answer.status == 200
    body = answer.json
    key = body.pop("access_key")
    assert isinstance(key, str) and len(key) >= 22
    assert body == {
        "bucket_name": "b",
        "description": "my bucket",
        "events": {},
        "properties": {},
        "funnels": {},
    }

    await batch(client, user_name, "b", "v1", ["view", "buy"], [["plan", "pro"], ["plan", "free"], ["age", 30]])
    funnel = {"description": "sales", "event_id": [eid("view"), eid("buy")]}
    assert (await client.post(path(user_name, "b", "funnel", "sales"), funnel, auth=auth_of(user_name))).status == 201
    answer = await client.get(path(user_name, "b"), auth=auth_of(user_name))
    assert answer.json == {
        "bucket_name": "b",
        "description": "my bucket",
        "access_key": key,
        "events": {"view": {"id": eid("view")}, "buy": {"id": eid("buy")}},
        "properties": {pid("plan"): "plan", pid("age"): "age"},
        "funnels": {"sales": {"description": "sales"}},
    }


@pytest_twisted.ensureDeferred
async def test_overview_of_a_user_deleted_meanwhile_is_404(server, user_name):
    """The user can go between the bucket's authorization and its overview: 404, never a 500."""
    await new_user(server.client, user_name)
    await new_bucket(server.client, user_name, "b", "")
    record = await server.app.accounts.bucket(user_name, "b")
    assert (await server.client.delete(path(user_name), auth=auth_of(user_name))).status == 200
    with pytest.raises(NotFound):
        await server.app.reports.overview(user_name, "b", record)


@pytest_twisted.ensureDeferred
async def test_get_unknown_bucket_is_404(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.get(path(user_name, "nothing"), auth=auth_of(user_name))
    assert answer.status == 404
    assert "error" in answer.json
    assert (await server.client.delete(path(user_name, "nothing"), auth=auth_of(user_name))).status == 404


async def _user_with_filled_buckets(server, user, *buckets):
    """A new user whose buckets each hold events, a property value and a saved funnel."""
    client = server.client
    await new_user(client, user)
    for bucket in buckets:
        await batch(client, user, bucket, "v1", ["A", "B"], [["plan", "pro"]])
        await track(client, user, bucket, "v2", "A")
        funnel = {"description": "", "event_id": [eid("A"), eid("B")]}
        assert (await client.post(path(user, bucket, "funnel", "f"), funnel, auth=auth_of(user))).status == 201
        # Saved after the hits: its backfill writes what follows, before anyone counts the records.
        await server.app.backfills.finished(f"{user}/{bucket}", "f")


@pytest_twisted.ensureDeferred
async def test_delete_bucket_removes_all_data(server, user_name):
    client = server.client
    await _user_with_filled_buckets(server, user_name, "b", "keep")
    scope = f"{user_name}/b"
    before_keep = await stored(server, f"{user_name}/keep")
    assert await stored(server, scope) > 0

    answer = await client.delete(path(user_name, "b"), auth=auth_of(user_name))
    assert (answer.status, answer.json) == (200, {})
    assert await stored(server, scope) == 0
    assert await stored(server, f"{user_name}/keep") == before_keep
    assert (await client.get(path(user_name, "b"), auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "b", "event", "A"), auth=auth_of(user_name))).status == 404
    assert list((await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"]) == ["keep"]

    # The same bucket used again starts empty: no cached visitor state or names come back.
    await track(client, user_name, "b", "v1", "A")
    report = await client.get(path(user_name, "b", "event", "A"), auth=auth_of(user_name))
    assert report.json == {
        "id": eid("A"),
        "name": "A",
        "total": 1,
        "unique_total": 1,
        "path": {},
        "unique_path": {},
        "properties": {},
    }
    assert (await client.get(path(user_name, "b", "event", "B"), auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "b", "property", "plan"), auth=auth_of(user_name))).status == 404
    assert (await client.get(path(user_name, "b", "funnel", "f"), auth=auth_of(user_name))).status == 404
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert (bucket["events"], bucket["properties"], bucket["funnels"]) == ({"A": {"id": eid("A")}}, {}, {})


@pytest_twisted.ensureDeferred
async def test_delete_bucket_needs_password(server, user_name):
    client = server.client
    await _user_with_filled_buckets(server, user_name, "b")
    before = await stored(server, f"{user_name}/b")
    assert (await client.delete(path(user_name, "b"))).status == 401
    assert (await client.delete(path(user_name, "b"), auth=(user_name, "nope"))).status == 401
    assert await stored(server, f"{user_name}/b") == before


@pytest_twisted.ensureDeferred
async def test_delete_user_removes_all_data(server, user_name):
    client = server.client
    await _user_with_filled_buckets(server, user_name, "one", "two")
    scopes = [user_name, f"{user_name}/one", f"{user_name}/two"]
    for scope in scopes:
        assert await stored(server, scope) > 0

    assert (await client.delete(path(user_name), auth=(user_name, "nope"))).status == 401
    answer = await client.delete(path(user_name), auth=auth_of(user_name))
    assert (answer.status, answer.json) == (200, {})
    for scope in scopes:
        assert await stored(server, scope) == 0
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 401
    # Tracking for a user that is gone is 404 and creates nothing.
    answer = await client.post(path(user_name, "one", "event", "A"), {"visitor_id": "v1"})
    assert answer.status == 404
    for scope in scopes:
        assert await stored(server, scope) == 0

    # The name can be taken again; nothing of the old user comes back.
    await new_user(client, user_name, "new password")
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 401
    answer = await client.get(path(user_name), auth=(user_name, "new password"))
    assert answer.json == {"user_name": user_name, "buckets": {}}
    await track(client, user_name, "one", "v1", "B")
    report = await client.get(path(user_name, "one", "event", "B"), auth=(user_name, "new password"))
    assert (report.json["total"], report.json["unique_total"], report.json["path"]) == (1, 1, {})
    assert report.json["properties"] == {}


@pytest_twisted.ensureDeferred
async def test_change_password(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.post(
        path(user_name), {"password": "changed!", "current_password": PASSWORD}, auth=auth_of(user_name)
    )
    assert (answer.status, answer.json) == (200, {})
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 401
    assert (await client.get(path(user_name), auth=(user_name, "changed!"))).status == 200


@pytest_twisted.ensureDeferred
async def test_message_bucket_is_created_on_first_batch(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.get(path(user_name, "new", "batch"), {"message": b64json([["A"], []]), "visitor_id": "v"})
    assert answer.status == 200
    answer = await client.get(path(user_name, "new"), auth=auth_of(user_name))
    assert answer.json["events"] == {"A": {"id": eid("A")}}
