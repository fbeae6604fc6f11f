"""Helpers shared by the HTTP tests (tests/test_http_*.py).

Ids are computed here from docs/api.md's definitions (a 16-byte MD5 of the name,
of the value's canonical JSON), independently of hiitrack.ids, so a test
compares the server's answers with values worked out by hand.
"""

import base64
import hashlib
import json

from tests.http import b64json, path

__all__ = [
    "PASSWORD",
    "auth_of",
    "b64json",
    "batch",
    "eid",
    "get_json",
    "new_bucket",
    "new_user",
    "path",
    "pid",
    "stored",
    "track",
    "vid",
]

PASSWORD = "correct horse"


def _wire(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _md5(text: str) -> bytes:
    return hashlib.md5(text.encode("utf-8")).digest()


def eid(name: str) -> str:
    """The wire event_id of an event name."""
    return _wire(_md5(name))


def pid(name: str) -> str:
    """The wire property_id of a property name."""
    return _wire(_md5(name))


def vid(name: str, value: object) -> str:
    """The wire value_id: property id + hash of the value's canonical JSON."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _wire(_md5(name) + _md5(canonical))


def auth_of(user: str) -> tuple[str, str]:
    return (user, PASSWORD)


async def new_user(client, name: str, password: str = PASSWORD) -> None:
    answer = await client.post(path(name), {"password": password})
    assert answer.status == 201, answer.body


async def new_bucket(client, user: str, bucket: str, description: str = "", password: str = PASSWORD) -> None:
    answer = await client.post(path(user, bucket), {"description": description}, auth=(user, password))
    assert answer.status == 201, answer.body


async def track(client, user: str, bucket: str, visitor: str, *events: str) -> None:
    """POST each event for `visitor`, in order."""
    for name in events:
        answer = await client.post(path(user, bucket, "event", name), {"visitor_id": visitor})
        assert answer.status == 200, answer.body


async def batch(client, user: str, bucket: str, visitor: str, events: list, properties: list = ()) -> None:
    answer = await client.post(
        path(user, bucket, "batch"), {"visitor_id": visitor, "message": b64json([events, list(properties)])}
    )
    assert answer.status == 200, answer.body


async def stored(server, scope: str) -> int:
    """Records and counter cells the store holds for a scope."""
    return await server.app.store.count(scope)


async def get_json(server, user: str, *segments: str, params=None, status: int = 200):
    """GET a path under the user's bucket b with the user's password: the JSON answer, checked to come with `status`."""
    answer = await server.client.get(path(user, "b", *segments), params, auth=auth_of(user))
    assert answer.status == status, answer.body
    return answer.json
