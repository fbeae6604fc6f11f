"""Tracking over HTTP: events, properties, batches, the visitor cookie, the pixel."""

import base64

import pytest
import pytest_twisted

from tests.helpers import auth_of, b64json, batch, eid, get_json, new_user, path, pid, stored, track, vid

T = 1_700_000_000  # 2023-11-14 22:13:20 UTC
DAY_OF_T = 1_699_920_000  # 2023-11-14 00:00:00 UTC


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _set_cookie(answer) -> str | None:
    lines = answer.headers.getRawHeaders("Set-Cookie") or []
    assert len(lines) <= 1
    return lines[0] if lines else None


@pytest_twisted.ensureDeferred
async def test_event_post(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.post(path(user_name, "b", "event", "signup"), {"visitor_id": "v1"})
    assert (answer.status, answer.json) == (200, {})
    assert answer.header("Content-Type") == "application/json"
    await track(client, user_name, "b", "v1", "signup", "buy")
    await track(client, user_name, "b", "v2", "buy")
    assert await get_json(server, user_name, "event", "signup") == {
        "id": eid("signup"),
        "name": "signup",
        "total": 2,
        "unique_total": 1,
        "path": {eid("signup"): 1},
        "unique_path": {eid("signup"): 1},
        "properties": {},
    }
    assert await get_json(server, user_name, "event", "buy") == {
        "id": eid("buy"),
        "name": "buy",
        "total": 2,
        "unique_total": 2,
        "path": {eid("signup"): 1},
        "unique_path": {eid("signup"): 1},
        "properties": {},
    }


@pytest_twisted.ensureDeferred
async def test_property_post(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v1", "A", "A")
    answer = await client.post(
        path(user_name, "b", "property", "plan"), {"visitor_id": "v1", "value": b64json({"tier": "pro", "seats": 3})}
    )
    assert (answer.status, answer.json) == (200, {})
    # URL-safe base64 without padding is accepted too.
    value = base64.urlsafe_b64encode(b'"\xc3\xbc?>"').rstrip(b"=").decode()
    answer = await client.post(path(user_name, "b", "property", "plan"), {"visitor_id": "v2", "value": value})
    assert answer.status == 200, answer.body
    await track(client, user_name, "b", "v2", "A")
    pro, other = vid("plan", {"seats": 3, "tier": "pro"}), vid("plan", "ü?>")
    assert (await client.get(path(user_name, "b", "property", "plan"), auth=auth_of(user_name))).json == {
        "id": pid("plan"),
        "name": "plan",
        "values": {
            pro: {"value": {"tier": "pro", "seats": 3}, "total": {eid("A"): 1}},
            other: {"value": "ü?>", "total": {eid("A"): 1}},
        },
        "events": {eid("A"): "A"},
    }
    report = await get_json(server, user_name, "event", "A", params={"property": "plan"})
    assert report == {
        "id": eid("A"),
        "name": "A",
        "values": {pro: {"tier": "pro", "seats": 3}, other: "ü?>"},
        "totals": {pro: 2, other: 1},
        "unique_totals": {pro: 1, other: 1},
        "paths": {pro: {eid("A"): 1}, other: {}},
        "unique_paths": {pro: {eid("A"): 1}, other: {}},
        "properties": {pid("plan"): "plan"},
    }


@pytest.mark.parametrize(
    "value",
    [None, "", "!!!!", "a$b=", _b64(b"not json"), _b64(b"{"), _b64(b"\xff\xfe"), _b64(b"NaN"), _b64(b"1e999"), "é"],
)
@pytest_twisted.ensureDeferred
async def test_bad_property_value_is_400(server, user_name, value):
    client = server.client
    await new_user(client, user_name)
    await track(client, user_name, "b", "v1", "A")
    before = await stored(server, f"{user_name}/b")
    params = {"visitor_id": "v1"} if value is None else {"visitor_id": "v1", "value": value}
    answer = await client.post(path(user_name, "b", "property", "plan"), params)
    assert answer.status == 400
    assert isinstance(answer.json["error"], str)
    assert await stored(server, f"{user_name}/b") == before
    assert (await client.get(path(user_name, "b", "property", "plan"), auth=auth_of(user_name))).status == 404


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest_twisted.ensureDeferred
async def test_batch(server, user_name, method):
    client = server.client
    await new_user(client, user_name)
    message = b64json([["A", "B", "A"], [["plan", "pro"], ["age", 30]]])
    answer = await client.request(
        method, path(user_name, "b", "batch"), params={"visitor_id": "v1", "message": message}
    )
    assert (answer.status, answer.json) == (200, {"visitor_id": "v1"})
    pro, age = vid("plan", "pro"), vid("age", 30)
    assert await get_json(server, user_name, "event", "A", params={"property": "plan"}) == {
        "id": eid("A"),
        "name": "A",
        "values": {pro: "pro"},
        "totals": {pro: 2},
        "unique_totals": {pro: 1},
        "paths": {pro: {eid("A"): 1, eid("B"): 1}},
        "unique_paths": {pro: {eid("A"): 1, eid("B"): 1}},
        "properties": {pid("plan"): "plan", pid("age"): "age"},
    }
    b_age = await get_json(server, user_name, "event", "B", params={"property": "age"})
    assert (b_age["totals"], b_age["paths"]) == ({age: 1}, {age: {eid("A"): 1}})


@pytest_twisted.ensureDeferred
async def test_batch_applies_properties_before_events(server, user_name):
    """Hourly and daily series are not back-filled, so only properties set
    before the events show in the series of their segment."""
    client = server.client
    server.clock.now = T
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v1", ["A"], [["plan", "pro"]])
    report = await get_json(server, user_name, "event", "A", params={"property": "plan", "start": DAY_OF_T})
    pro = vid("plan", "pro")
    assert (report["totals"], report["unique_totals"]) == ({pro: [[DAY_OF_T, 1]]}, {pro: [[DAY_OF_T, 1]]})
    # A property posted after the event is credited in the plain counters only.
    await track(client, user_name, "b", "v2", "A")
    answer = await client.post(path(user_name, "b", "property", "plan"), {"visitor_id": "v2", "value": b64json("free")})
    assert answer.status == 200
    free = vid("plan", "free")
    report = await get_json(server, user_name, "event", "A", params={"property": "plan", "start": DAY_OF_T})
    assert report["totals"] == {pro: [[DAY_OF_T, 1]], free: []}
    assert (await get_json(server, user_name, "event", "A", params={"property": "plan"}))["totals"] == {pro: 1, free: 1}


@pytest.mark.parametrize("route", ["event", "property", "batch GET", "batch POST"])
@pytest_twisted.ensureDeferred
async def test_visitor_and_cookie(server, user_name, route):
    client = server.client
    await new_user(client, user_name)

    async def hit(params=None, cookies=None):
        params = dict(params or {})
        if route == "event":
            return await client.request("POST", path(user_name, "b", "event", "A"), params=params, cookies=cookies)
        if route == "property":
            params["value"] = b64json(1)
            return await client.request("POST", path(user_name, "b", "property", "p"), params=params, cookies=cookies)
        params["message"] = b64json([["A"], [["p", 1]]])
        return await client.request(route.split()[1], path(user_name, "b", "batch"), params=params, cookies=cookies)

    def named(answer, visitor):
        assert answer.status == 200, answer.body
        if route.startswith("batch"):
            assert answer.json == {"visitor_id": visitor}

    # visitor_id given, no cookie: the cookie is set to it.
    answer = await hit({"visitor_id": "given"})
    named(answer, "given")
    assert answer.cookie("v") == "given"
    cookie = _set_cookie(answer)
    assert "Path=/" in cookie and "Max-Age=" in cookie
    assert int(cookie.split("Max-Age=")[1].split(";")[0]) >= 365 * 86400
    # The same as the cookie: no new cookie.
    answer = await hit({"visitor_id": "given"}, {"v": "given"})
    named(answer, "given")
    assert _set_cookie(answer) is None
    # Only the cookie: it is the visitor, not set again.
    answer = await hit(cookies={"v": "fromcookie"})
    named(answer, "fromcookie")
    assert _set_cookie(answer) is None
    # visitor_id differs from the cookie: visitor_id wins and the cookie follows.
    answer = await hit({"visitor_id": "other"}, {"v": "fromcookie"})
    named(answer, "other")
    assert answer.cookie("v") == "other"
    # Neither: a new random visitor each time, named in the cookie.
    first, second = await hit(), await hit()
    new_ids = [first.cookie("v"), second.cookie("v")]
    assert all(new_ids) and new_ids[0] != new_ids[1]
    named(first, new_ids[0])
    named(second, new_ids[1])
    # Odd characters survive the round trip through the cookie.
    odd = 'a b;c=d/é,"x"'
    answer = await hit({"visitor_id": odd})
    named(answer, odd)
    quoted = answer.cookie("v")
    answer = await hit(cookies={"v": quoted})
    named(answer, odd)
    assert _set_cookie(answer) is None

    # given, fromcookie, other, two new, odd: six visitors, 8 hits.
    if route != "property":
        report = await get_json(server, user_name, "event", "A")
        assert (report["total"], report["unique_total"]) == (8, 6)
    if route != "event":
        prop = (await client.get(path(user_name, "b", "property", "p"), auth=auth_of(user_name))).json
        assert list(prop["values"]) == [vid("p", 1)]


INVALID_MESSAGES = [
    ("not base64", "!!!!"),
    ("not base64 either", "YWJj$"),
    ("not utf-8", _b64(b"\xff\xfe\xfd")),
    ("not json", _b64(b'[["A"], [')),
    ("not json text", _b64(b"hello")),
    ("empty", ""),
    ("object", b64json({"events": ["A"]})),
    ("string", b64json("A")),
    ("number", b64json(1)),
    ("null", b64json(None)),
    ("empty list", b64json([])),
    ("one item", b64json([["A"]])),
    ("three items", b64json([["A"], [], []])),
    ("events not a list", b64json(["A", []])),
    ("properties not a list", b64json([["A"], {"p": 1}])),
    ("number event", b64json([[1], []])),
    ("null event", b64json([[None], []])),
    ("list event", b64json([[["A"]], []])),
    ("one bad event among good", b64json([["A", "B", 3], []])),
    ("property not a list", b64json([["A"], ["p"]])),
    ("property of one item", b64json([["A"], [["p"]]])),
    ("property of three items", b64json([["A"], [["p", 1, 2]]])),
    ("property object", b64json([["A"], [{"p": 1}]])),
    ("number property name", b64json([["A"], [[1, "x"]]])),
    ("one bad property among good", b64json([["A"], [["p", 1], ["q"]]])),
    ("empty event name", b64json([[""], []])),
    ("empty property name", b64json([[], [["", 1]]])),
]


@pytest.mark.parametrize("why,message", INVALID_MESSAGES, ids=[why for why, _ in INVALID_MESSAGES])
@pytest_twisted.ensureDeferred
async def test_malformed_message_is_400_and_stores_nothing(server, user_name, why, message):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A"], [["p", 0]])
    before = await stored(server, f"{user_name}/b")
    report = await get_json(server, user_name, "event", "A")
    for method in ("GET", "POST"):
        answer = await client.request(
            method, path(user_name, "b", "batch"), params={"visitor_id": "v", "message": message}
        )
        assert answer.status == 400, answer.body
        assert answer.json["visitor_id"] == "v"
        assert isinstance(answer.json["error"], str)
    assert await stored(server, f"{user_name}/b") == before
    assert await get_json(server, user_name, "event", "A") == report
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert (bucket["events"], bucket["properties"]) == ({"A": {"id": eid("A")}}, {pid("p"): "p"})
    # A refused message does not create the bucket either.
    answer = await client.get(path(user_name, "new", "batch"), {"message": message})
    assert answer.status == 400
    assert isinstance(answer.json["visitor_id"], str) and answer.json["visitor_id"]
    assert await stored(server, f"{user_name}/new") == 0
    assert (await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {"b": {"description": ""}}


@pytest_twisted.ensureDeferred
async def test_missing_message_is_400(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.get(path(user_name, "b", "batch"), {"visitor_id": "v"})
    assert answer.status == 400
    assert answer.json["visitor_id"] == "v" and "error" in answer.json
    assert await stored(server, f"{user_name}/b") == 0


def _assert_pixel(answer):
    assert answer.header("Content-Type") == "image/gif"
    assert "no-cache" in answer.header("Cache-Control")
    body = answer.body
    assert body.startswith(b"GIF89a")
    assert body[6:10] == b"\x01\x00\x01\x00"  # 1×1
    assert body.endswith(b";")
    assert len(body) == 43


@pytest_twisted.ensureDeferred
async def test_pixel(server, user_name):
    client = server.client
    await new_user(client, user_name)
    message = b64json([["A"], [["p", True]]])
    answer = await client.get(path(user_name, "b", "batch"), {"message": message, "visitor_id": "v", "img": "1"})
    assert answer.status == 200
    _assert_pixel(answer)
    gif = answer.body
    answer = await client.get(path(user_name, "b", "batch"), {"message": message, "img": "1"})
    assert answer.status == 200
    _assert_pixel(answer)
    assert answer.cookie("v")
    report = await get_json(server, user_name, "event", "A", params={"property": "p"})
    assert (report["totals"], report["unique_totals"]) == ({vid("p", True): 2}, {vid("p", True): 2})

    before = await stored(server, f"{user_name}/b")
    answer = await client.get(path(user_name, "b", "batch"), {"message": "!!", "visitor_id": "v", "img": "1"})
    assert answer.status == 400
    _assert_pixel(answer)
    assert answer.body == gif
    answer = await client.get(path(user_name, "b", "batch"), {"message": b64json([[1], []]), "img": "1"})
    assert (answer.status, answer.body) == (400, gif)
    assert await stored(server, f"{user_name}/b") == before


@pytest_twisted.ensureDeferred
async def test_the_pixel_is_answered_to_refusals_before_the_batch_is_read(server, user_name):
    """An <img> shows a broken picture for anything but an image: a pixel request refused before
    its batch resource reads it (a callback, parameters that cannot be read, a bad path segment)
    still gets the GIF, with the refusal's status, and records nothing."""
    client = server.client
    await new_user(client, user_name)
    message = b64json([["A"], []])
    where = path(user_name, "b", "batch")
    before = await stored(server, f"{user_name}/b")
    refused = [
        ("GET", f"{where}?img=1&visitor_id=v&message={message}&callback=1x", None, None, 400),
        ("GET", f"{where}?img=1&visitor_id=%ff&message={message}", None, None, 400),
        ("POST", f"{where}?img=1&request_id=r", b"visitor_id=v", {"Content-Type": "text/plain"}, 400),
        ("GET", f"{where}?img=1&visitor_id=v&message={message}&pad={'x' * 64 * 1024}", None, None, 413),
        ("GET", f"/{user_name}/.b/batch?img=1&visitor_id=v&message={message}", None, None, 400),
        ("GET", f"/{user_name}/b/batch?img=1&visitor_id=v&message={message}", None, None, 200),
    ]
    for method, target, body, headers, status in refused:
        answer = await client.request(method, target, body=body, headers=headers)
        assert answer.status == status, (target[:80], answer.body)
        _assert_pixel(answer)
    assert await stored(server, f"{user_name}/b") > before
    assert (await get_json(server, user_name, "event", "A"))["total"] == 1
    # Without img=1 the same refusals are JSON.
    for method, target, body, headers, status in refused:
        answer = await client.request(method, target.replace("img=1&", ""), body=body, headers=headers)
        assert (answer.status, answer.header("Content-Type")) == (status, "application/json")


@pytest.mark.parametrize(
    "name",
    [
        "with space",
        "a/b",
        "/",
        "a%2Fb",
        "100%",
        "?x=1&y#z",
        "ünïcødé",
        "名前",
        "🎉 party",
        "+plus+",
        "tab\tnew\nline",
        "'\"<>",
    ],
)
@pytest_twisted.ensureDeferred
async def test_percent_decoded_names(server, user_name, name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.post(path(user_name, "b", "event", name), {"visitor_id": "v"})
    assert answer.status == 200, answer.body
    answer = await client.post(path(user_name, "b", "property", name), {"visitor_id": "v", "value": b64json(name)})
    assert answer.status == 200, answer.body
    await batch(client, user_name, "b", "v", [name])  # the same event by its name in a message
    report = await get_json(server, user_name, "event", name)
    assert (report["id"], report["name"], report["total"], report["path"]) == (eid(name), name, 2, {eid(name): 1})
    by_id = await client.get(path(user_name, "b", "event_id", eid(name)), auth=auth_of(user_name))
    assert by_id.json == report
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert (bucket["events"], bucket["properties"]) == ({name: {"id": eid(name)}}, {pid(name): name})
    prop = (await client.get(path(user_name, "b", "property", name), auth=auth_of(user_name))).json
    assert (prop["name"], prop["values"]) == (name, {vid(name, name): {"value": name, "total": {eid(name): 1}}})
