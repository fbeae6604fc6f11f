"""The limits of docs/api.md: a request over them is refused whole, nothing stored."""

import json
from urllib.parse import quote

import pytest
import pytest_twisted

from tests.helpers import auth_of, b64json, batch, eid, get_json, new_user, path, pid, stored, track, vid
from tests.sockets import exchange

KIB64 = 64 * 1024


async def _filled(server, user):
    """A user whose bucket b holds one event; the store count of b before a refusal."""
    await new_user(server.client, user)
    await track(server.client, user, "b", "v", "A")
    return await stored(server, f"{user}/b")


async def _total(server, user, name="A"):
    answer = await server.client.get(path(user, "b", "event", name), auth=auth_of(user))
    return answer.json["total"] if answer.status == 200 else None


async def _set_value_both_ways(server, user, value, ok, batch_events=()):
    """On a filled bucket b, property p of visitor v set to `value` by its own POST and in a batch: both
    taken and the value stored (`ok`), or both refused with 400 and nothing stored.  The two answers."""
    client = server.client
    before = await _filled(server, user)
    message = b64json([list(batch_events), [["p", value]]])
    answers = [
        await client.post(path(user, "b", "property", "p"), {"visitor_id": "v", "value": b64json(value)}),
        await client.post(path(user, "b", "batch"), {"visitor_id": "v", "message": message}),
    ]
    if ok:
        assert [a.status for a in answers] == [200, 200]
        prop = await get_json(server, user, "property", "p")
        assert prop["values"] == {vid("p", value): {"value": value, "total": {eid("A"): 1}}}
    else:
        assert [a.status for a in answers] == [400, 400]
        assert await stored(server, f"{user}/b") == before
    return answers


def _form(size: int) -> bytes:
    """A form body of exactly `size` bytes naming visitor v."""
    head = b"visitor_id=v&pad="
    return head + b"x" * (size - len(head))


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest_twisted.ensureDeferred
async def test_body_of_64_kib_is_accepted(server, user_name):
    await _filled(server, user_name)
    answer = await server.client.request("POST", path(user_name, "b", "event", "A"), body=_form(KIB64), headers=FORM)
    assert (answer.status, answer.json) == (200, {})
    assert await _total(server, user_name) == 2


@pytest.mark.parametrize("size", [KIB64 + 1, 2 * KIB64, 1024 * 1024])
@pytest_twisted.ensureDeferred
async def test_body_over_64_kib_is_413(server, user_name, size):
    before = await _filled(server, user_name)
    for where in [
        path(user_name, "b", "event", "A"),
        path(user_name, "b", "batch"),
        path(user_name, "new", "event", "A"),
    ]:
        answer = await server.client.request("POST", where, body=_form(size), headers=FORM)
        assert answer.status == 413
        assert isinstance(answer.json["error"], str)
    body = b'{"visitor_id": "v", "pad": "' + b"x" * size + b'"}'
    answer = await server.client.request(
        "POST", path(user_name, "b", "event", "A"), body=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status == 413
    assert await stored(server, f"{user_name}/b") == before
    assert await stored(server, f"{user_name}/new") == 0
    assert await _total(server, user_name) == 1


def _query(size: int) -> str:
    head = "visitor_id=v&pad="
    return head + "x" * (size - len(head))


@pytest_twisted.ensureDeferred
async def test_query_of_64_kib_is_accepted(server, user_name):
    await _filled(server, user_name)
    answer = await server.client.request("POST", path(user_name, "b", "event", "A") + "?" + _query(KIB64))
    assert (answer.status, answer.json) == (200, {})
    assert await _total(server, user_name) == 2


@pytest.mark.parametrize("size", [KIB64 + 1, KIB64 + 4096, 100 * 1024])
@pytest_twisted.ensureDeferred
async def test_query_over_64_kib_is_413(server, user_name, size):
    before = await _filled(server, user_name)
    answer = await server.client.request("POST", path(user_name, "b", "event", "A") + "?" + _query(size))
    assert answer.status == 413
    assert isinstance(answer.json["error"], str)
    assert await stored(server, f"{user_name}/b") == before
    assert await _total(server, user_name) == 1


@pytest_twisted.ensureDeferred
async def test_batch_message_over_64_kib_is_413(server, user_name):
    before = await _filled(server, user_name)
    message = b64json([["A"] * 100, [["p", "x" * 4000]] * 20])
    assert len(message) > KIB64
    answer = await server.client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": message})
    assert answer.status == 413
    answer = await server.client.post(path(user_name, "b", "batch"), {"visitor_id": "v", "message": message})
    assert answer.status == 413
    assert await stored(server, f"{user_name}/b") == before


NAME_256 = ["x" * 256, "é" * 128, "😀" * 64, "名" * 85 + "x"]
NAME_257 = ["x" * 257, "é" * 128 + "x", "😀" * 64 + "x", "名" * 85 + "xx", "名" * 86]


@pytest.mark.parametrize("name", NAME_256)
@pytest_twisted.ensureDeferred
async def test_names_of_256_bytes_are_accepted(server, user_name, name):
    assert len(name.encode("utf-8")) == 256
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v", name)
    answer = await client.post(path(user_name, "b", "property", name), {"visitor_id": "v", "value": b64json(1)})
    assert answer.status == 200, answer.body
    await batch(client, user_name, "b", "v", [name], [[name, 2]])
    assert await _total(server, user_name, name) == 2
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert (bucket["events"], bucket["properties"]) == ({name: {"id": eid(name)}}, {pid(name): name})
    report = await client.get(
        path(user_name, "b", "funnel"), [("event", name), ("event", name)], auth=auth_of(user_name)
    )
    assert report.json["funnel"] == [[eid(name), 2], [eid(name), 1]]
    answer = await client.post(
        path(user_name, "b", "funnel", name), [("event_id", eid(name))] * 2, auth=auth_of(user_name)
    )
    assert answer.status == 201


@pytest.mark.parametrize("name", NAME_257)
@pytest_twisted.ensureDeferred
async def test_names_over_256_bytes_are_400(server, user_name, name):
    assert len(name.encode("utf-8")) == 257 or len(name.encode("utf-8")) == 258
    client = server.client
    before = await _filled(server, user_name)
    answers = [
        await client.post(path(user_name, "b", "event", name), {"visitor_id": "v"}),
        await client.get(path(user_name, "b", "event", name), auth=auth_of(user_name)),
        await client.post(path(user_name, "b", "property", name), {"visitor_id": "v", "value": b64json(1)}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["A", name], []])}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["A"], [[name, 1]]])}),
        await client.get(path(user_name, "b", "funnel"), [("event", "A"), ("event", name)], auth=auth_of(user_name)),
        await client.post(path(user_name, "b", "funnel", name), [("event_id", eid("A"))] * 2, auth=auth_of(user_name)),
    ]
    assert [a.status for a in answers] == [400] * len(answers)
    for answer in answers:
        assert isinstance(answer.json["error"], str)
    assert await stored(server, f"{user_name}/b") == before
    assert await _total(server, user_name) == 1


@pytest_twisted.ensureDeferred
async def test_empty_names_are_400(server, user_name):
    client = server.client
    before = await _filled(server, user_name)
    answers = [
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["A", ""], []])}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": "v", "message": b64json([["A"], [["", 1]]])}),
        await client.get(path(user_name, "b", "funnel"), [("event", "A"), ("event", "")], auth=auth_of(user_name)),
        await client.get(
            path(user_name, "b", "funnel"), [("event", "A"), ("event", "A"), ("property", "")], auth=auth_of(user_name)
        ),
    ]
    assert [a.status for a in answers] == [400] * len(answers)
    # An empty path segment is a trailing slash: redirected, never recorded.
    answer = await client.post(path(user_name, "b", "event", ""), {"visitor_id": "v"})
    assert answer.status == 301
    assert await stored(server, f"{user_name}/b") == before
    assert await _total(server, user_name) == 1


@pytest.mark.parametrize(
    "value,ok",
    [
        ("x" * 4094, True),  # "xx…x" is 4096 bytes of JSON
        ("x" * 4095, False),
        ("é" * 2047, True),  # 4094 bytes of UTF-8 + 2 quotes
        ("é" * 2048, False),
        ({"a": "x" * 4088}, True),  # {"a":"…"} adds 8 bytes
        ({"a": "x" * 4089}, False),
        (list(range(1000)) + [1234567], True),  # 2897 digits, 1000 commas, 2 brackets: 3899
        ([123456789] * 410, False),  # 3690 digits, 409 commas, 2 brackets: 4101
    ],
)
@pytest_twisted.ensureDeferred
async def test_property_value_limit(server, user_name, value, ok):
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    assert (size <= 4096) == ok
    answers = await _set_value_both_ways(server, user_name, value, ok)
    if not ok:
        assert answers[1].json["visitor_id"] == "v"


@pytest.mark.parametrize(
    "events,properties,ok", [(100, 0, True), (101, 0, False), (0, 100, True), (0, 101, False), (100, 100, True)]
)
@pytest_twisted.ensureDeferred
async def test_batch_size_limits(server, user_name, events, properties, ok):
    client = server.client
    before = await _filled(server, user_name)
    message = b64json([["A"] * events, [["p", n] for n in range(properties)]])
    answer = await client.post(path(user_name, "b", "batch"), {"visitor_id": "v", "message": message})
    if ok:
        assert (answer.status, answer.json) == (200, {"visitor_id": "v"})
        assert await _total(server, user_name) == 1 + events
    else:
        assert answer.status == 400
        assert answer.json["visitor_id"] == "v" and isinstance(answer.json["error"], str)
        assert await stored(server, f"{user_name}/b") == before
        assert await _total(server, user_name) == 1


@pytest.mark.parametrize(
    "visitor,ok", [("v" * 256, True), ("é" * 256, True), ("v" * 257, False), ("é" * 257, False), ("", False)]
)
@pytest_twisted.ensureDeferred
async def test_visitor_id_limit(server, user_name, visitor, ok):
    client = server.client
    before = await _filled(server, user_name)
    answers = [
        await client.post(path(user_name, "b", "event", "A"), {"visitor_id": visitor}),
        await client.post(path(user_name, "b", "property", "p"), {"visitor_id": visitor, "value": b64json(1)}),
        await client.get(path(user_name, "b", "batch"), {"visitor_id": visitor, "message": b64json([["A"], []])}),
    ]
    if ok:
        assert [a.status for a in answers] == [200, 200, 200]
        assert answers[2].json == {"visitor_id": visitor}
        report = (await client.get(path(user_name, "b", "event", "A"), auth=auth_of(user_name))).json
        assert (report["total"], report["unique_total"]) == (3, 2)
    else:
        assert [a.status for a in answers] == [400, 400, 400]
        assert await stored(server, f"{user_name}/b") == before
    if visitor:
        # The same limit holds for the visitor named by the cookie.
        answer = await client.post(path(user_name, "b", "event", "A"), cookies={"v": quote(visitor, safe="")})
        assert answer.status == (200 if ok else 400)


def _nested(depth: int) -> object:
    value: object = 1
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("depth,ok", [(32, True), (33, False), (958, False)])
@pytest_twisted.ensureDeferred
async def test_property_values_nest_at_most_32_deep(server, user_name, depth, ok):
    """Deeper values used to pass the checks and fail later with a RecursionError (500)."""
    answers = await _set_value_both_ways(server, user_name, _nested(depth), ok, batch_events=["A"])
    if not ok:
        assert all("32" in a.json["error"] for a in answers)


@pytest_twisted.ensureDeferred
async def test_no_100_continue_after_a_413(server, user_name):
    """A client that asked ``Expect: 100-continue`` for a body over the limit
    gets the 413 alone: a 100 after it would tell it to send the body."""
    await new_user(server.client, user_name)
    request = (
        f"POST {path(user_name, 'b', 'event', 'A')} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {1024 * 1024}\r\n\r\n"
    ).encode()
    received = await exchange(server.port.getHost().port, request)
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert b"100 Continue" not in received
    assert received.count(b"HTTP/1.1 ") == 1
    assert await stored(server, f"{user_name}/b") == 0
