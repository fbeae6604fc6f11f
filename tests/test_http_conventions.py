"""The conventions of docs/api.md that hold on every route: JSON, JSONP, request_id,
parameters, trailing slashes, 405 and 404, and never a traceback."""

import base64
import itertools
from urllib.parse import parse_qsl

import pytest
import pytest_twisted
import ujson
from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.web.server import Request, Site

from hiitrack.errors import BadRequest
from hiitrack.metrics import METRICS
from hiitrack.web.params import Params, _form_pairs
from hiitrack.web.render import ApiResource
from hiitrack.web.static import STATIC
from tests.helpers import auth_of, b64json, batch, eid, new_user, path, stored
from tests.sockets import exchange

JSON_BODY = {"Content-Type": "application/json"}
FORM_BODY = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest_twisted.ensureDeferred
async def test_json_content_type(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answers = [
        await client.get("/"),
        await client.get(path(user_name), auth=auth_of(user_name)),
        await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v"}),
        await client.get(path(user_name, "b", "event", "nope"), auth=auth_of(user_name)),
        await client.get(path(user_name)),
    ]
    assert [a.status for a in answers] == [200, 200, 200, 404, 401]
    for answer in answers:
        assert answer.header("Content-Type") == "application/json"
        assert isinstance(answer.json, dict)


@pytest_twisted.ensureDeferred
async def test_request_id_is_echoed(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v", "request_id": "r-1"})
    assert (answer.status, answer.json) == (200, {"request_id": "r-1"})
    answer = await client.get(
        path(user_name, "b", "batch"), {"message": b64json([["A"], []]), "visitor_id": "v", "request_id": "42"}
    )
    assert answer.json == {"visitor_id": "v", "request_id": "42"}
    answer = await client.get(path(user_name), {"request_id": "me"}, auth=auth_of(user_name))
    assert answer.json == {"user_name": user_name, "buckets": {"b": {"description": ""}}, "request_id": "me"}
    # Errors echo it too.
    answer = await client.get(path(user_name, "b", "event", "nope"), {"request_id": "e404"}, auth=auth_of(user_name))
    assert answer.status == 404
    assert answer.json["request_id"] == "e404" and "error" in answer.json
    answer = await client.get(path(user_name), {"request_id": "e401"})
    assert (answer.status, answer.json["request_id"]) == (401, "e401")
    answer = await client.get(path(user_name, "b", "batch"), {"message": "!!", "visitor_id": "v", "request_id": "e400"})
    assert answer.status == 400
    assert answer.json["request_id"] == "e400" and answer.json["visitor_id"] == "v"
    answer = await client.request("PUT", path(user_name), params={"request_id": "e405"})
    assert (answer.status, answer.json["request_id"]) == (405, "e405")


@pytest_twisted.ensureDeferred
async def test_request_id_is_echoed_when_the_parameters_are_refused(server, user_name):
    """Parameters that cannot be read (a body of another type, bad JSON, bad percent-encoding, too
    large) and a trailing slash's 301 still echo the query string's request_id."""
    client = server.client
    await new_user(client, user_name)
    hit = path(user_name, "b", "event", "A")
    refused = [
        (hit + "?request_id=r%2F1", b"visitor_id=v", {"Content-Type": "text/plain"}, 400),
        (hit + "?request_id=r%2F1", b"{not json", JSON_BODY, 400),
        (hit + "?request_id=r%2F1&visitor_id=%ff", None, None, 400),
        (hit + "?request_id=r%2F1&pad=" + "x" * 64 * 1024, None, None, 413),
        (hit + "?request_id=r%2F1", b"visitor_id=v&pad=" + b"x" * 64 * 1024, FORM_BODY, 413),
        (hit + "/?request_id=r%2F1", None, None, 301),
    ]
    for where, body, headers, status in refused:
        answer = await client.request("POST", where, body=body, headers=headers)
        assert (answer.status, answer.json["request_id"]) == (status, "r/1"), (where[:80], body)
        assert "error" in answer.json
    # A request_id that is itself badly encoded is left out, and the refusal is answered all the same.
    answer = await client.request("POST", hit + "?request_id=%ff", body=b"x", headers={"Content-Type": "text/plain"})
    assert answer.status == 400 and "request_id" not in answer.json
    assert await stored(server, f"{user_name}/b") == 0


@pytest.mark.parametrize(
    "sent",
    [
        b"NONSENSE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"POST /u/b/event/A HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST /u/b/event/A HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_request_twisted_cannot_read_gets_a_json_400(server, sent):
    received = await exchange(server.port.getHost().port, sent)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), received
    assert b"Content-Type: application/json" in head
    assert "error" in ujson.loads(body)


@pytest_twisted.ensureDeferred
async def test_jsonp(server, user_name):
    client = server.client
    await new_user(client, user_name)
    message = b64json([["A"], []])
    answer = await client.get(path(user_name, "b", "batch"), {"message": message, "visitor_id": "v", "callback": "cb"})
    assert answer.status == 200
    assert answer.header("Content-Type") == "application/javascript"
    assert answer.body == b'cb({"visitor_id":"v"});'
    answer = await client.post(
        path(user_name, "b", "event", "A"), {"visitor_id": "v", "callback": "jQuery_1.$cb2", "request_id": "7"}
    )
    assert (answer.status, answer.body) == (200, b'jQuery_1.$cb2({"request_id":"7"});')
    # A reserved word may name a property further down the path, not start it.
    answer = await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "v", "callback": "ns.new"})
    assert (answer.status, answer.body) == (200, b"ns.new({});")


@pytest.mark.parametrize(
    "method,where",
    [
        ("GET", "/u1"),
        ("GET", "/u1/b"),
        ("GET", "/u1/b/event/A"),
        ("GET", "/u1/b/event_id/" + eid("A")),
        ("GET", "/u1/b/property/p"),
        ("GET", "/u1/b/funnel?event=A&event=B"),
        ("POST", "/u1/b"),
        ("DELETE", "/u1/b/funnel/f"),
        ("GET", "/"),
        ("GET", "/u1/b/nothing"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_jsonp_is_refused_off_the_tracking_routes(server, user_name, method, where):
    """A <script src=".../acme/site?callback=steal"> on another site would run
    with the analyst's cached login and read the access key: JSONP is only
    for the open tracking routes, and anywhere else it is a plain 400."""
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A", "B"], [["p", 1]])
    where = where.replace("/u1", f"/{user_name}")
    answer = await client.request(method, where, params={"callback": "steal"}, auth=auth_of(user_name))
    assert answer.status == 400, answer.body
    assert answer.header("Content-Type") == "application/json"
    assert b"steal" not in answer.body and b"access_key" not in answer.body
    assert "callback" in answer.json["error"]
    # Nothing was done: the bucket is still there, the funnel never saved.
    bucket = (await client.get(path(user_name, "b"), auth=auth_of(user_name))).json
    assert bucket["funnels"] == {} and "access_key" in bucket


@pytest_twisted.ensureDeferred
async def test_jsonp_error_keeps_status(server, user_name):
    client = server.client
    answer = await client.get(path(user_name, "b", "batch"), {"message": b64json([[], []]), "callback": "cb"})
    assert answer.status == 404
    assert answer.header("Content-Type") == "application/javascript"
    assert answer.body.startswith(b"cb(") and answer.body.endswith(b");")
    assert "error" in ujson.loads(answer.body[3:-2])
    await new_user(client, user_name)
    answer = await client.get(path(user_name, "b", "batch"), {"message": "%%%", "visitor_id": "v", "callback": "cb"})
    assert answer.status == 400
    assert answer.header("Content-Type") == "application/javascript"
    inner = ujson.loads(answer.body[3:-2])
    assert inner["visitor_id"] == "v" and "error" in inner


@pytest.mark.parametrize(
    "callback",
    ["alert(1)", "a b", "1abc", "a..b", "a.", ".a", "", "a;b", "a[0]", "x" * 200, "<script>", "é", "while", "new.x"],
)
@pytest_twisted.ensureDeferred
async def test_invalid_callback_is_400(server, user_name, callback):
    client = server.client
    await new_user(client, user_name)
    answer = await client.get(
        path(user_name, "b", "batch"), {"message": b64json([["A"], []]), "visitor_id": "v", "callback": callback}
    )
    assert answer.status == 400
    assert answer.header("Content-Type") == "application/json"
    assert "error" in answer.json
    assert callback.encode("utf-8") not in answer.body or callback == ""
    answer = await client.get(path(user_name), {"callback": callback}, auth=auth_of(user_name))
    assert answer.status == 400


@pytest.mark.parametrize(
    "where,location",
    [
        ("/u1/", "/u1"),
        ("/u1/b/", "/u1/b"),
        ("/u1/b/event/A%20B/", "/u1/b/event/A%20B"),
        ("/u1/b/event/A/?request_id=1&x=%2F", "/u1/b/event/A?request_id=1&x=%2F"),
        ("/u1/b/funnel/?event=A&event=B", "/u1/b/funnel?event=A&event=B"),
        ("/u1/b/batch/?message=abc", "/u1/b/batch?message=abc"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_trailing_slash_redirects(server, where, location):
    for method in ("GET", "POST", "DELETE"):
        answer = await server.client.request(method, where)
        assert answer.status == 301
        assert answer.header("Location") == location


@pytest.mark.parametrize(
    "where,location",
    [
        ("//evil.example/", "/evil.example"),
        ("//evil.example//", "/evil.example"),
        ("///evil.example/", "/evil.example"),
        ("/\\evil.example/", "/evil.example"),
        ("/\\/evil.example/", "/evil.example"),
        ("//\\evil.example/x/?a=1", "/evil.example/x?a=1"),
        ("/%2F%2Fevil.example/", "/%2F%2Fevil.example"),
        ("//", "/"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_trailing_slash_redirect_stays_on_this_server(server, where, location):
    """``Location: //evil.example`` would send a browser to another host:
    the redirect is always an absolute path starting with a single slash."""
    request = f"GET {where} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
    received = await exchange(server.port.getHost().port, request)
    head = received.split(b"\r\n\r\n")[0].split(b"\r\n")
    assert head[0].startswith(b"HTTP/1.1 301 "), received
    locations = [line.split(b": ", 1)[1] for line in head if line.lower().startswith(b"location: ")]
    assert locations == [location.encode()]


@pytest_twisted.ensureDeferred
async def test_favicon_is_served_without_a_login_prompt(server):
    """A 401 with a Basic challenge for /favicon.ico makes Chromium forget
    the analyst's login: the server has an icon of its own."""
    for headers in ({}, {"Authorization": "Basic bm9ib2R5OnNlY3JldA=="}):
        answer = await server.client.get("/favicon.ico", headers=headers)
        assert answer.status == 200
        assert answer.header("Content-Type") == "image/x-icon"
        assert answer.header("WWW-Authenticate") is None
        assert answer.body == (STATIC / "favicon.ico").read_bytes()
        assert answer.body[:4] == b"\x00\x00\x01\x00"  # an ICO file
        assert answer.header("ETag") and "max-age" in answer.header("Cache-Control")


@pytest_twisted.ensureDeferred
async def test_answers_to_credentials_are_not_cached(server, user_name):
    """The bucket overview carries the access key: no cache may keep it."""
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A"])
    overview = await client.get(path(user_name, "b"), auth=auth_of(user_name))
    assert overview.header("Cache-Control") == "no-store"
    key = overview.json["access_key"]
    for where in [path(user_name, "b"), path(user_name, "b", "event", "A")]:
        answer = await client.get(where, auth=(user_name, key))
        assert answer.status == 200
        assert answer.header("Cache-Control") == "no-store"
    answer = await client.get(path(user_name), auth=auth_of(user_name))
    assert answer.header("Cache-Control") == "no-store"


@pytest_twisted.ensureDeferred
async def test_head_on_batch_records_nothing(server, user_name):
    """GET /batch records a hit, so HEAD cannot answer what GET would
    without recording it too: it is refused."""
    client = server.client
    await new_user(client, user_name)
    params = {"message": b64json([["A"], [["p", 1]]]), "visitor_id": "v"}
    answer = await client.request("HEAD", path(user_name, "b", "batch"), params=params)
    assert answer.status == 405
    assert answer.header("Allow") == "GET, POST"
    assert answer.body == b""
    assert await server.app.store.count(f"{user_name}/b") == 0
    assert (await client.get(path(user_name), auth=auth_of(user_name))).json["buckets"] == {}
    # HEAD on a report is still a GET without the body.
    await batch(client, user_name, "b", "v", ["A"])
    answer = await client.request("HEAD", path(user_name, "b", "event", "A"), auth=auth_of(user_name))
    assert (answer.status, answer.body) == (200, b"")


@pytest_twisted.ensureDeferred
async def test_parameters_from_query_form_and_json(server, user_name):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A", "B", "C"])
    where = path(user_name, "b", "funnel", "f")
    order = [eid("C"), eid("A"), eid("B")]
    # Query string, repeated parameters in order.
    answer = await client.post(
        where, params=[("event_id", s) for s in order] + [("description", "q")], auth=auth_of(user_name)
    )
    assert answer.status == 201
    report = (await client.get(where, auth=auth_of(user_name))).json
    assert (report["event_ids"], report["description"]) == (order, "q")
    # Form body.
    form = [("event_id", order[2]), ("event_id", order[0]), ("description", "form")]
    assert (await client.post(where, form, auth=auth_of(user_name))).status == 201
    report = (await client.get(where, auth=auth_of(user_name))).json
    assert (report["event_ids"], report["description"]) == ([order[2], order[0]], "form")
    # JSON object body: a list is a repeated parameter.
    body = ujson.dumps({"event_id": [order[1], order[2], order[0]], "description": "json"}).encode()
    answer = await client.request("POST", where, body=body, headers=JSON_BODY, auth=auth_of(user_name))
    assert answer.status == 201, answer.body
    report = (await client.get(where, auth=auth_of(user_name))).json
    assert (report["event_ids"], report["description"]) == ([order[1], order[2], order[0]], "json")
    # Funnel preview steps by name from the query keep their order.
    preview = await client.get(
        path(user_name, "b", "funnel"), [("event", "B"), ("event", "A")], auth=auth_of(user_name)
    )
    assert preview.json["funnel"] == [[eid("B"), 1], [eid("A"), 0]]


@pytest_twisted.ensureDeferred
async def test_tracking_parameters_from_every_source(server, user_name):
    client = server.client
    await new_user(client, user_name)
    where = path(user_name, "b", "event", "A")
    assert (await client.post(where, params={"visitor_id": "q"})).cookie("v") == "q"
    assert (await client.post(where, {"visitor_id": "f"})).cookie("v") == "f"
    answer = await client.request("POST", where, body=b'{"visitor_id": "j"}', headers=JSON_BODY)
    assert (answer.status, answer.cookie("v")) == (200, "j")
    message = b64json([["A"], [["n", 1]]])
    answer = await client.request(
        "POST",
        path(user_name, "b", "batch"),
        body=ujson.dumps({"message": message, "visitor_id": "j"}).encode(),
        headers=JSON_BODY,
    )
    assert (answer.status, answer.json) == (200, {"visitor_id": "j"})
    # A JSON number parameter counts as its text.
    answer = await client.request("POST", where, body=b'{"visitor_id": 12}', headers=JSON_BODY)
    assert (answer.status, answer.cookie("v")) == (200, "12")
    report = (await client.get(where, auth=auth_of(user_name))).json
    assert (report["total"], report["unique_total"]) == (5, 4)


@pytest_twisted.ensureDeferred
async def test_first_of_repeated_single_parameter_wins(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answer = await client.post(
        path(user_name, "b", "batch"),
        [("visitor_id", "first"), ("visitor_id", "second"), ("message", b64json([["A"], []]))],
    )
    assert answer.json == {"visitor_id": "first"}
    # The query string comes before the body.
    answer = await client.post(
        path(user_name, "b", "batch"),
        {"visitor_id": "body", "message": b64json([["A"], []])},
        params={"visitor_id": "query"},
    )
    assert answer.json == {"visitor_id": "query"}


@pytest.mark.parametrize(
    "body,content_type",
    [
        (b"visitor_id=v", "text/plain"),
        (b"<x/>", "application/xml"),
        (b"visitor_id=v", None),
        (b'["visitor_id", "v"]', "application/json"),
        (b'"v"', "application/json"),
        (b"{not json", "application/json"),
        (b'{"visitor_id": {"a": 1}}', "application/json"),
        (b'{"visitor_id": null}', "application/json"),
        (b'{"visitor_id": [["v"]]}', "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"visitor_id=%FF", "application/x-www-form-urlencoded"),
        (b"visitor_id=\xff", "application/x-www-form-urlencoded"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_bad_bodies_are_400(server, user_name, body, content_type):
    client = server.client
    await new_user(client, user_name)
    headers = {"Content-Type": content_type} if content_type else {}
    answer = await client.request("POST", path(user_name, "b", "event", "A"), body=body, headers=headers)
    assert answer.status == 400
    assert "error" in answer.json
    assert await server.app.store.count(f"{user_name}/b") == 0


@pytest.mark.parametrize(
    "method,where,allow",
    [
        ("PUT", "/", "GET, HEAD"),
        ("PUT", "/u1", "DELETE, GET, HEAD, POST"),
        ("PATCH", "/u1/b", "DELETE, GET, HEAD, POST"),
        ("DELETE", "/u1/b/event/A", "GET, HEAD, POST"),
        ("POST", "/u1/b/event_id/" + eid("A"), "GET, HEAD"),
        ("PUT", "/u1/b/property/p", "GET, HEAD, POST"),
        ("DELETE", "/u1/b/property_id/" + eid("p"), "GET, HEAD"),
        ("DELETE", "/u1/b/batch", "GET, POST"),
        ("POST", "/u1/b/funnel", "GET, HEAD"),
        ("PUT", "/u1/b/funnel/f", "DELETE, GET, HEAD, POST"),
        ("OPTIONS", "/u1/b/funnel/f", "DELETE, GET, HEAD, POST"),
    ],
)
@pytest_twisted.ensureDeferred
async def test_unsupported_methods_are_405(server, method, where, allow):
    answer = await server.client.request(method, where)
    assert answer.status == 405
    assert sorted(answer.header("Allow").split(", ")) == allow.split(", ")
    assert answer.header("Content-Type") == "application/json"
    assert "error" in answer.json


@pytest.mark.parametrize(
    "where",
    [
        "/u1/b/nothing",
        "/u1/b/events/A",
        "/u1/b/event",
        "/u1/b/event_id",
        "/u1/b/property",
        "/u1/b/property_id",
        "/u1/b/event/A/more",
        "/u1/b/batch/more",
        "/u1/b/funnel/f/more",
        "/u1/b/event_id/" + eid("A") + "/x",
    ],
)
@pytest_twisted.ensureDeferred
async def test_unknown_paths_are_404(server, user_name, where):
    await new_user(server.client, user_name)
    where = where.replace("/u1/", f"/{user_name}/")
    for method in ("GET", "POST", "DELETE"):
        answer = await server.client.request(method, where, auth=auth_of(user_name))
        assert answer.status == 404, (method, where, answer.status, answer.body)
        assert answer.header("Content-Type") == "application/json"
        assert "error" in answer.json
    assert await server.app.store.count(f"{user_name}/b") == 0


NASTY = [
    ("GET", "/%FF"),
    ("GET", "/u1/%FF"),
    ("POST", "/u1/b/event/%FF%FE"),
    ("POST", "/u1/b/event/a%00b"),
    ("POST", "/u1/b/property/%C3"),
    ("GET", "/u1/b/event_id/%FF"),
    ("GET", "/u1/b/event_id/" + "\u00e9" * 22),
    ("GET", "/u1/b/funnel?event=%FF&event=a"),
    ("GET", "/u1/b/batch?message=%ZZ"),
    ("GET", "/u1/b/batch?message=\xff"),
    ("GET", "/u1/b/event/A?start=1e9"),
    ("GET", "/u1/b/event/A?start=99999999999999999999999999"),
    ("GET", "/u1/b/event/A?start=0&finish=99999999999999999999999999"),
    ("GET", "/u1/b/event/A?start=18446744073709551616&finish=18446744073709551617"),
    ("GET", "/u1/b/event/A?start=-5"),
    ("GET", "/u1/b/event/A?start=" + "9" * 5000),
    ("GET", "/u1/b/event/A?start=%E0%A5%A7"),
    ("GET", "/u1/b/event/A?start=1&interval=week"),
    ("GET", "/u1/b/event/A?property=%00"),
    ("GET", "/u1/b/funnel?event_id=%00&event_id=x"),
    ("GET", "/u1/b/funnel?event=A&event=B&property="),
    ("POST", "/u1/b/event/A?visitor_id="),
    ("POST", "/u1/b/property/p?value=&visitor_id=v"),
    ("POST", "/u1/b/property/p?value=bnVsbA&visitor_id=v%00"),
]


@pytest.mark.parametrize("method,where", NASTY)
@pytest_twisted.ensureDeferred
async def test_no_traceback_for_bad_input(server, user_name, method, where):
    client = server.client
    await new_user(client, user_name)
    await batch(client, user_name, "b", "v", ["A", "B"])
    answer = await client.request(method, where.replace("/u1/", f"/{user_name}/"), auth=auth_of(user_name))
    assert 400 <= answer.status < 500, (answer.status, answer.body)
    assert b"Traceback" not in answer.body
    assert isinstance(answer.json["error"], str)


@pytest.mark.parametrize(
    "json_text",
    [
        '[["a\\ud800"], []]',
        '[[], [["p\\udc00", 1]]]',
        '[[], [["p", "\\ud83d"]]]',
        '[[], [["p", {"\\udfff": 1}]]]',
    ],
)
@pytest_twisted.ensureDeferred
async def test_lone_surrogates_are_400(server, user_name, json_text):
    """JSON can spell lone surrogates (\\ud800) that UTF-8 cannot carry."""
    client = server.client
    await new_user(client, user_name)
    message = base64.b64encode(json_text.encode("ascii")).decode("ascii")
    answer = await client.get(path(user_name, "b", "batch"), {"message": message, "visitor_id": "v"})
    assert answer.status == 400, answer.body
    assert b"Traceback" not in answer.body
    body = b'{"visitor_id": "a\\ud800"}'
    answer = await client.request("POST", path(user_name, "b", "event", "A"), body=body, headers=JSON_BODY)
    assert answer.status == 400, answer.body
    value = base64.b64encode(b'"\\udc00"').decode("ascii")
    answer = await client.post(path(user_name, "b", "property", "p"), {"value": value, "visitor_id": "v"})
    assert answer.status == 400, answer.body
    assert await server.app.store.count(f"{user_name}/b") == 0


@pytest_twisted.ensureDeferred
async def test_client_gone_before_the_answer_gets_nothing():
    """A client that hangs up while its handler works: one log line and a 499, no error, nothing written."""
    answer_ready: Deferred[None] = Deferred()

    class Slow(ApiResource):
        isLeaf = True
        route = "/test/slow"

        async def handle_GET(self, request: Request, params: Params) -> dict:
            await answer_ready
            return {"late": True}

    gone = METRICS.requests.labels(Slow.route, "GET", "499")
    before = gone._value.get()
    channel = Site(Slow()).buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /slow HTTP/1.1\r\nHost: example\r\n\r\n")
    channel.connectionLost(Failure(ConnectionDone()))
    with capturedLogs() as events:
        answer_ready.callback(None)
    assert [event["log_format"] for event in events] == ["client went away before the answer to {uri}"]
    assert transport.value() == b""
    assert gone._value.get() == before + 1


FORM_PIECES = ["a", "b=", "=", "&", ";", "+", "%20", "%", "%zz", "%C3%A9", "%ff", "\xe9", "c=d"]


def test_form_pairs_read_as_parse_qsl_reads_them():
    """Every string of up to four pieces: the pairs parse_qsl (blank values kept, UTF-8, strict)
    finds, or 400 where it fails; the fast path for text with nothing to decode included."""
    for pieces in itertools.chain.from_iterable(itertools.product(FORM_PIECES, repeat=n) for n in range(5)):
        data = "".join(pieces).encode("latin-1")
        try:
            model = parse_qsl(data.decode("ascii"), keep_blank_values=True, encoding="utf-8", errors="strict")
        except (UnicodeDecodeError, ValueError):
            with pytest.raises(BadRequest):
                _form_pairs(data, "form body")
        else:
            assert _form_pairs(data, "form body") == model, data
