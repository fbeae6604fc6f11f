"""Nothing is let in: every read route refuses strangers, keys stay in their bucket.

The routes come from the OpenAPI description (which tests/test_openapi.py
checks against the resource tree), so a new route is walked here too.
"""

import json
import statistics
import time

import pytest_twisted

from hiitrack.ids import encode_id, event_id, property_id
from hiitrack.store.kinds import USER
from hiitrack.web.static import STATIC
from tests.http import b64json, path

SAMPLES = {
    "bucket": "site",
    "event_name": "A",
    "event_id": encode_id(event_id("A")),
    "property_name": "plan",
    "property_id": encode_id(property_id("plan")),
    "funnel_name": "f",
    "visitor_id": "v",
}


def _read_routes(user: str) -> list[str]:
    spec = json.loads((STATIC / "openapi.json").read_text())
    routes = []
    for template, item in spec["paths"].items():
        operation = item.get("get")
        if operation is None or operation.get("security") == [] or not template.startswith("/{user}"):
            continue
        where = template.replace("{user}", user)
        for name, sample in SAMPLES.items():
            where = where.replace("{" + name + "}", sample)
        if where.endswith("/funnel"):
            where += "?event=A&event=B"
        if where.endswith("/visitors"):
            where += "?step=1&status=reached"
        routes.append(where)
    return routes


async def _owner_with_data(client, user: str) -> str:
    """A user with a bucket holding events, a property and a saved funnel; returns the access key."""
    await client.post(path(user), {"password": "pw-secret"})
    await client.get(
        path(user, "site", "batch"), {"visitor_id": "v", "message": b64json([["A", "B"], [["plan", "pro"]]])}
    )
    await client.post(path(user, "site", "funnel", "f"), {"event": ["A", "B"]}, auth=(user, "pw-secret"))
    await client.post(path(user, "other", "event", "A"), {"visitor_id": "v"})
    return (await client.get(path(user, "other"), auth=(user, "pw-secret"))).json["access_key"]


@pytest_twisted.ensureDeferred
async def test_every_read_route_refuses_strangers(server, user_name):
    client = server.client
    other_key = await _owner_with_data(client, user_name)
    # Dozens of wrong logins from one address: back-off (tests/test_login_throttle.py) would answer 429.
    server.app.accounts.address_backoff.free = server.app.accounts.user_backoff.free = 1000
    stranger = user_name + "x"
    await client.post(path(stranger), {"password": "theirs-pw"})
    routes = _read_routes(user_name)
    assert len(routes) >= 8
    for where in routes:
        assert (await client.get(where, auth=(user_name, "pw-secret"))).status == 200, where
        for label, auth, headers in [
            ("no credentials", None, {}),
            ("another user's credentials", (stranger, "theirs-pw"), {}),
            ("the owner's name with another user's password", (user_name, "theirs-pw"), {}),
            ("an access key of another bucket", (user_name, other_key), {}),
        ]:
            answer = await client.get(where, auth=auth, headers=headers)
            assert answer.status == 401, f"{where} with {label}: {answer.status}"
            assert answer.header("WWW-Authenticate") == 'Basic realm="hiitrack"', where
            assert "error" in answer.json
        quiet = await client.get(where, headers={"X-Requested-With": "XMLHttpRequest"})
        assert quiet.status == 401 and quiet.header("WWW-Authenticate") is None, where


@pytest_twisted.ensureDeferred
async def test_an_access_key_reads_only_its_bucket_and_dies_with_the_password(server, user_name):
    client = server.client
    await _owner_with_data(client, user_name)
    key = (await client.get(path(user_name, "site"), auth=(user_name, "pw-secret"))).json["access_key"]
    assert (await client.get(path(user_name, "site", "event", "A"), auth=(user_name, key))).status == 200
    assert (await client.get(path(user_name), auth=(user_name, key))).status == 401
    assert (await client.delete(path(user_name, "site"), auth=(user_name, key))).status == 401
    assert (
        await client.post(path(user_name, "site", "funnel", "g"), {"event": ["A", "B"]}, auth=(user_name, key))
    ).status == 401

    changed = await client.post(
        path(user_name), {"password": "new-secret", "current_password": "pw-secret"}, auth=(user_name, "pw-secret")
    )
    assert changed.status == 200
    assert (await client.get(path(user_name, "site"), auth=(user_name, "pw-secret"))).status == 401
    assert (await client.get(path(user_name, "site", "event", "A"), auth=(user_name, key))).status == 401
    new_key = (await client.get(path(user_name, "site"), auth=(user_name, "new-secret"))).json["access_key"]
    assert new_key != key
    assert (await client.get(path(user_name, "site", "event", "A"), auth=(user_name, new_key))).status == 200


@pytest_twisted.ensureDeferred
async def test_the_password_hash_never_leaves_the_server(server, user_name):
    client = server.client
    await _owner_with_data(client, user_name)
    record = json.loads(await server.app.store.get("", USER, user_name))
    for where in [path(user_name), path(user_name, "site")]:
        body = (await client.get(where, auth=(user_name, "pw-secret"))).body.decode()
        assert record["hash"] not in body and record["salt"] not in body


@pytest_twisted.ensureDeferred
async def test_a_failed_login_does_not_tell_whether_the_user_exists(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})

    async def seconds(user: str) -> float:
        started = time.perf_counter()
        answer = await client.get(path(user), auth=(user, "wrong"))
        assert answer.status == 401
        return time.perf_counter() - started

    existing = statistics.median([await seconds(user_name) for _ in range(5)])
    missing = statistics.median([await seconds(user_name + "nobody") for _ in range(5)])
    # Both pay one scrypt; without the decoy hash the missing user answers ~100x faster.
    assert 0.33 < missing / existing < 3, (existing, missing)


@pytest_twisted.ensureDeferred
async def test_cookies_and_sniffing(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": "pw-secret"})
    plain = await client.post(path(user_name, "site", "event", "A"), {})
    cookie = plain.headers.getRawHeaders("Set-Cookie")[0]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax") and "Secure" not in cookie
    assert plain.header("X-Content-Type-Options") == "nosniff"
    tls = await client.post(path(user_name, "site", "event", "A"), {}, headers={"X-Forwarded-Proto": "https"})
    cookie = tls.headers.getRawHeaders("Set-Cookie")[0]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=none" in cookie.replace("None", "none")
