"""Authentication over HTTP: Basic credentials, access keys, open tracking routes."""

import base64

import pytest
import pytest_twisted

from tests.helpers import (
    PASSWORD,
    auth_of,
    b64json,
    batch,
    eid,
    new_user,
    path,
    pid,
    stored,
)

CHALLENGE = 'Basic realm="hiitrack"'


def _assert_401(answer, challenge=True):
    assert answer.status == 401, answer.body
    assert isinstance(answer.json["error"], str)
    assert answer.header("WWW-Authenticate") == (CHALLENGE if challenge else None)


def _basic(text: bytes) -> dict:
    return {"Authorization": b"Basic " + base64.b64encode(text)}


async def _setup(server, user):
    """A user with bucket b (events A, B; property plan; funnel f) and bucket other."""
    client = server.client
    await new_user(client, user)
    await batch(client, user, "b", "v1", ["A", "B"], [["plan", "pro"]])
    await batch(client, user, "other", "v1", ["A"])
    steps = {"description": "d", "event_id": [eid("A"), eid("B")]}
    assert (await client.post(path(user, "b", "funnel", "f"), steps, auth=auth_of(user))).status == 201
    # Saved after the hits: its backfill is done before anyone counts the records.
    await server.app.backfills.finished(f"{user}/b", "f")
    return (await client.get(path(user, "b"), auth=auth_of(user))).json["access_key"]


PROTECTED = [
    ("GET", ()),
    ("DELETE", ()),
    ("GET", ("b",)),
    ("POST", ("new",)),
    ("DELETE", ("b",)),
    ("GET", ("b", "event", "A")),
    ("GET", ("b", "event_id", eid("A"))),
    ("GET", ("b", "property", "plan")),
    ("GET", ("b", "property_id", pid("plan"))),
    ("GET", ("b", "funnel")),
    ("GET", ("b", "funnel", "f")),
    ("POST", ("b", "funnel", "g")),
    ("DELETE", ("b", "funnel", "f")),
]


def _params(segments):
    if segments[-1:] == ("funnel",):
        return [("event", "A"), ("event", "B")]
    if segments[-1:] == ("g",):
        return [("event_id", eid("A")), ("event_id", eid("B"))]
    return None


@pytest.mark.parametrize("method,segments", PROTECTED)
@pytest_twisted.ensureDeferred
async def test_every_protected_route_needs_credentials(server, user_name, method, segments):
    await _setup(server, user_name)
    where = path(user_name, *segments)
    before = await stored(server, f"{user_name}/b")
    params = _params(segments)
    _assert_401(await server.client.request(method, where, params=params))
    _assert_401(await server.client.request(method, where, params=params, auth=(user_name, "wrong")))
    _assert_401(
        await server.client.request(method, where, params=params, headers={"X-Requested-With": "XMLHttpRequest"}),
        challenge=False,
    )
    assert await stored(server, f"{user_name}/b") == before
    answer = await server.client.request(method, where, params=params, auth=auth_of(user_name))
    assert answer.status in (200, 201), answer.body


@pytest_twisted.ensureDeferred
async def test_xhr_wrong_password_has_no_challenge(server, user_name):
    await new_user(server.client, user_name)
    answer = await server.client.get(
        path(user_name), auth=(user_name, "wrong"), headers={"X-Requested-With": "XMLHttpRequest"}
    )
    _assert_401(answer, challenge=False)


@pytest_twisted.ensureDeferred
async def test_other_users_credentials(server, user_name):
    other = user_name + "x"
    await _setup(server, user_name)
    await new_user(server.client, other)
    for segments in [(), ("b",), ("b", "event", "A")]:
        _assert_401(await server.client.get(path(user_name, *segments), auth=auth_of(other)))
    # Even with the victim's password typed under another login.
    _assert_401(await server.client.get(path(user_name), auth=(other, PASSWORD)))


@pytest_twisted.ensureDeferred
async def test_unknown_user(server, user_name):
    _assert_401(await server.client.get(path(user_name), auth=auth_of(user_name)))
    _assert_401(await server.client.get(path(user_name, "b"), auth=auth_of(user_name)))
    _assert_401(await server.client.delete(path(user_name), auth=auth_of(user_name)))


@pytest.mark.parametrize(
    "header",
    [
        b"Basic",
        b"Basic ",
        b"Basic !!!notbase64",
        b"Bearer abc",
        b"Digest username=x",
        b"Basic " + base64.b64encode(b"no colon here"),
        b"Basic " + base64.b64encode(b"\xff\xfe:\xff"),
        b"basic",
    ],
)
@pytest_twisted.ensureDeferred
async def test_malformed_authorization(server, user_name, header):
    await new_user(server.client, user_name)
    _assert_401(await server.client.get(path(user_name), headers={"Authorization": header}))


@pytest_twisted.ensureDeferred
async def test_basic_scheme_is_case_insensitive(server, user_name):
    await new_user(server.client, user_name)
    token = base64.b64encode(f"{user_name}:{PASSWORD}".encode())
    answer = await server.client.get(path(user_name), headers={"Authorization": b"basic " + token})
    assert answer.status == 200


@pytest_twisted.ensureDeferred
async def test_password_with_colon_and_unicode(server, user_name):
    password = "pä:ss wörd"
    await new_user(server.client, user_name, password)
    header = _basic(f"{user_name}:{password}".encode())
    assert (await server.client.get(path(user_name), headers=header)).status == 200
    _assert_401(await server.client.get(path(user_name), auth=(user_name, "pä")))


@pytest_twisted.ensureDeferred
async def test_access_key_reads_its_bucket(server, user_name):
    key = await _setup(server, user_name)
    client = server.client
    auth = (user_name, key)
    reads = [
        (("b",), None),
        (("b", "event", "A"), None),
        (("b", "event", "A"), {"property": "plan"}),
        (("b", "event_id", eid("A")), None),
        (("b", "property", "plan"), None),
        (("b", "property_id", pid("plan")), None),
        (("b", "funnel"), [("event", "A"), ("event", "B")]),
        (("b", "funnel"), [("event_id", eid("A")), ("event_id", eid("B"))]),
        (("b", "funnel", "f"), None),
    ]
    for segments, params in reads:
        with_key = await client.get(path(user_name, *segments), params, auth=auth)
        with_password = await client.get(path(user_name, *segments), params, auth=auth_of(user_name))
        assert with_key.status == 200, (segments, with_key.body)
        assert with_key.json == with_password.json
    bucket = (await client.get(path(user_name, "b"), auth=auth)).json
    assert bucket["access_key"] == key


@pytest_twisted.ensureDeferred
async def test_access_key_opens_nothing_else(server, user_name):
    key = await _setup(server, user_name)
    client = server.client
    auth = (user_name, key)
    before = {scope: await stored(server, scope) for scope in (user_name, f"{user_name}/b", f"{user_name}/other")}
    _assert_401(await client.get(path(user_name), auth=auth))
    _assert_401(await client.get(path(user_name, "other"), auth=auth))
    _assert_401(await client.get(path(user_name, "other", "event", "A"), auth=auth))
    _assert_401(await client.delete(path(user_name), auth=auth))
    _assert_401(await client.delete(path(user_name, "b"), auth=auth))
    _assert_401(await client.post(path(user_name, "b"), {"description": "x"}, auth=auth))
    _assert_401(await client.post(path(user_name, "new"), {"description": "x"}, auth=auth))
    _assert_401(await client.post(path(user_name), {"password": "taken over", "current_password": key}, auth=auth))
    steps = [("event_id", eid("B")), ("event_id", eid("A"))]
    _assert_401(await client.post(path(user_name, "b", "funnel", "g"), steps, auth=auth))
    _assert_401(await client.post(path(user_name, "b", "funnel", "f"), steps, auth=auth))
    _assert_401(await client.delete(path(user_name, "b", "funnel", "f"), auth=auth))
    # Another user's bucket of the same name does not take the key either.
    other = user_name + "x"
    await new_user(client, other)
    await batch(client, other, "b", "v1", ["A"])
    _assert_401(await client.get(path(other, "b"), auth=(other, key)))
    after = {scope: await stored(server, scope) for scope in before}
    assert after == before
    assert (await client.get(path(user_name, "b", "funnel", "f"), auth=auth_of(user_name))).json["event_ids"] == [
        eid("A"),
        eid("B"),
    ]
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200


@pytest_twisted.ensureDeferred
async def test_access_key_retired_with_password(server, user_name):
    key = await _setup(server, user_name)
    client = server.client
    assert (
        await client.post(
            path(user_name), {"password": "new password", "current_password": PASSWORD}, auth=auth_of(user_name)
        )
    ).status == 200
    _assert_401(await client.get(path(user_name, "b"), auth=(user_name, key)))


@pytest_twisted.ensureDeferred
async def test_tracking_routes_are_open(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answers = [
        await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"}),
        await client.post(path(user_name, "b", "property", "plan"), {"visitor_id": "v", "value": b64json("x")}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["B"], []])}),
        await client.post(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["C"], []])}),
    ]
    assert [(a.status, a.json) for a in answers] == [
        (200, {}),
        (200, {}),
        (200, {"visitor_id": "v"}),
        (200, {"visitor_id": "v"}),
    ]
    report = await client.get(path(user_name, "b", "event", "C"), auth=auth_of(user_name))
    assert report.json["path"] == {eid("A"): 1, eid("B"): 1}


@pytest_twisted.ensureDeferred
async def test_tracking_unknown_user_is_404_and_creates_nothing(server, user_name):
    client = server.client
    answers = [
        await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"}),
        await client.post(path(user_name, "b", "property", "plan"), {"visitor_id": "v", "value": b64json("x")}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["B"], []])}),
        await client.post(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["C"], []])}),
    ]
    for answer in answers:
        assert answer.status == 404
        assert isinstance(answer.json["error"], str)
    assert await stored(server, user_name) == 0
    assert await stored(server, f"{user_name}/b") == 0
    # The user made afterwards has no bucket b.
    await new_user(client, user_name)
    assert (await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {}
