"""Hostile and malformed input: a clear JSON error, and nothing stored.

Each row of the table is its own test: sent to a bucket that already holds
data, after which the bucket's stored rows and its reports must be exactly
as before.
"""

import base64
import socket

import pytest
import pytest_twisted
from twisted.internet import defer, reactor, threads

from tests.http import b64json, path

PASSWORD = "pw-secret"
NAME_256 = "é" * 128
NAME_257 = "é" * 128 + "x"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


USER = "{user}"
"""Stands for the test's user in the paths below."""
SITE = f"/{USER}/site"
DEEP = "[" * 3000 + "]" * 3000


def _row(
    method: str,
    where: str,
    params: object = None,
    *,
    body: bytes | None = None,
    content_type: str | None = None,
    status: int = 400,
    name: str,
) -> object:
    """One hostile request and the status it must get: one test."""
    headers = {"Content-Type": [content_type]} if content_type else {}
    return pytest.param(method, where, params, body, headers, status, id=name)


ROWS = [
    _row("POST", f"{SITE}/event/%FF%FE", name="event-name-not-utf8"),
    _row("POST", f"{SITE}/event/A?visitor_id=%FF", name="visitor-id-not-utf8"),
    _row("POST", f"{SITE}/event/%00", {"visitor_id": "v"}, name="event-name-nul"),
    _row("POST", f"{SITE}/event/A", {"visitor_id": "v\x00"}, name="visitor-id-nul"),
    _row("POST", f"{SITE}/event/{NAME_257}", {"visitor_id": "v"}, name="event-name-257-bytes"),
    _row(
        "POST", f"{SITE}/property/{NAME_257}", {"visitor_id": "v", "value": b64json(1)}, name="property-name-257-bytes"
    ),
    _row(
        "POST", f"{SITE}/property/p", {"visitor_id": "v", "value": _b64(DEEP.encode())}, name="value-nested-3000-deep"
    ),
    _row("POST", f"{SITE}/property/p", {"visitor_id": "v", "value": _b64(b"1e400")}, name="value-1e400"),
    _row("POST", f"{SITE}/property/p", {"visitor_id": "v", "value": "!!not base64!!"}, name="value-not-base64"),
    _row("POST", f"{SITE}/property/p", {"visitor_id": "v", "value": b64json("x" * 5000)}, name="value-too-long"),
    _row("GET", f"{SITE}/batch", {"message": b64json([["A"] * 101, []])}, name="batch-101-events"),
    _row("GET", f"{SITE}/batch", {"message": b64json([["A"], [["p", 1]] * 101])}, name="batch-101-properties"),
    _row("GET", f"{SITE}/batch", {"message": b64json([["A"], [["p"]]])}, name="batch-property-without-value"),
    _row("GET", f"{SITE}/batch", {"message": b64json([["A", 7], []])}, name="batch-event-not-a-string"),
    _row("GET", f"{SITE}/batch", {"message": b64json({"events": ["A"]})}, name="batch-not-a-list"),
    _row("GET", f"{SITE}/batch", {"message": _b64(b"\xff\xfe not json")}, name="batch-not-json"),
    _row(
        "GET", f"{SITE}/batch", {"message": b64json([["A"], []]), "visitor_id": "v" * 257}, name="batch-visitor-id-257"
    ),
    _row(
        "GET", f"{SITE}/batch", {"message": b64json([["A"], []]), "callback": "alert(1)//"}, name="batch-bad-callback"
    ),
    _row("POST", f"{SITE}/event/A", body=b"visitor_id=v", content_type="text/plain", name="body-text-plain"),
    _row("POST", f"{SITE}/event/A", body=b"visitor_id=v", content_type="multipart/form-data", name="body-multipart"),
    _row(
        "POST",
        f"{SITE}/event/A",
        body=b'{"visitor_id": {"a": 1}}',
        content_type="application/json",
        name="json-visitor-id-object",
    ),
    _row("POST", f"{SITE}/event/A", body=b'["visitor_id"]', content_type="application/json", name="json-not-an-object"),
    _row("POST", f"{SITE}/event/A", body=b"{not json", content_type="application/json", name="json-malformed"),
    _row("POST", f"{SITE}/event/A", {"visitor_id": "v", "pad": "x" * 70_000}, status=413, name="body-over-64-kib"),
    _row("PUT", f"{SITE}/event/A", {"visitor_id": "v"}, status=405, name="put-event"),
    _row("PATCH", SITE, status=405, name="patch-bucket"),
    _row("TRACE", "/openapi.json", status=405, name="trace-openapi"),
    _row("GET", f"{SITE}/event_id/!!!!!!!!!!!!!!!!!!!!!!", name="event-id-not-base64"),
    _row("GET", f"{SITE}/event_id/AAAA", name="event-id-short"),
    _row("GET", f"{SITE}/event_id/AAAAAAAAAAAAAAAAAAAAAB", name="event-id-not-canonical"),
    _row("GET", f"{SITE}/event/A", {"start": "1e3"}, name="start-not-an-integer"),
    _row("GET", f"{SITE}/event/A", {"start": str(10**30)}, name="start-too-large"),
    _row("GET", f"{SITE}/event/A", {"start": "0", "interval": "week"}, name="interval-unknown"),
    _row("GET", f"{SITE}/funnel", {"event": "A"}, name="funnel-one-step"),
    _row("GET", f"{SITE}/funnel", {"event_id": ["AAAA", "BBBB"]}, name="funnel-bad-event-ids"),
    _row("POST", "/.hidden", {"password": "x"}, name="user-name-hidden"),
    _row("POST", "/" + "u" * 65, {"password": "x"}, name="user-name-65-chars"),
]


async def _snapshot(server, user: str) -> tuple:
    client = server.client
    auth = (user, PASSWORD)
    bucket = await client.get(path(user, "site"), auth=auth)
    event = await client.get(path(user, "site", "event", "A"), auth=auth)
    assert (bucket.status, event.status) == (200, 200), (bucket.body, event.body)
    stored = await server.app.store.count(f"{user}/site")
    return bucket.json, event.json, stored


async def _user_with_an_event(client, user: str) -> None:
    """The user, and bucket `site` holding one event, that each hostile request must leave as they are."""
    assert (await client.post(path(user), {"password": PASSWORD})).status == 201
    answer = await client.post(path(user, "site", "event", "A"), {"visitor_id": "v"})
    assert answer.status == 200, answer.body


@pytest.mark.parametrize("method, where, params, body, headers, status", ROWS)
@pytest_twisted.ensureDeferred
async def test_hostile_request_is_refused_and_stores_nothing(
    server, user_name, method, where, params, body, headers, status
):
    client = server.client
    await _user_with_an_event(client, user_name)
    before = await _snapshot(server, user_name)
    where = where.replace(USER, user_name)
    if method in ("GET", "PUT", "PATCH", "TRACE") or body is not None:
        answer = await client.request(
            method, where, params=params, body=body, headers=headers, auth=(user_name, PASSWORD)
        )
    else:
        answer = await client.request(method, where, data=params)
    assert answer.status == status, f"{answer.status} {answer.body[:200]!r}"
    assert b"Traceback" not in answer.body
    assert answer.header("Content-Type") == "application/json"
    assert isinstance(answer.json.get("error"), str)
    if status == 405:
        assert answer.header("Allow")
    assert await _snapshot(server, user_name) == before, "the request changed the stored data"


@pytest_twisted.ensureDeferred
async def test_names_of_256_bytes_are_accepted(server, user_name):
    client = server.client
    assert (await client.post(path(user_name), {"password": PASSWORD})).status == 201
    assert len(NAME_256.encode()) == 256
    assert (await client.post(path(user_name, "site", "event", NAME_256), {"visitor_id": "v"})).status == 200
    answer = await client.post(path(user_name, "site", "property", NAME_256), {"visitor_id": "v", "value": b64json(1)})
    assert answer.status == 200
    report = await client.get(path(user_name, "site", "event", NAME_256), auth=(user_name, PASSWORD))
    assert (report.json["name"], report.json["total"]) == (NAME_256, 1)


@pytest_twisted.ensureDeferred
async def test_duplicated_parameters_take_the_first(server, user_name):
    client = server.client
    assert (await client.post(path(user_name), {"password": PASSWORD})).status == 201
    answer = await client.get(
        path(user_name, "site", "batch"),
        [("message", b64json([["A"], []])), ("visitor_id", "one"), ("visitor_id", "two")],
    )
    assert answer.json["visitor_id"] == "one"


def _send_huge_body(port: int) -> bytes:
    """10 MB announced, 64 KiB sent: the answer must come without the rest."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(
            b"POST /nobody/site/event/A HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 10485760\r\n\r\n" + b"a" * 65536
        )
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


@pytest_twisted.ensureDeferred
async def test_a_10_mb_body_is_refused_before_it_is_read(server):
    answer = await threads.deferToThread(_send_huge_body, server.port.getHost().port)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b'"error"' in body


@pytest_twisted.ensureDeferred
async def test_idle_connections_are_closed(store):
    """A connection that sends nothing is closed after the idle timeout."""
    from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
    from twisted.internet.protocol import Factory, Protocol

    from hiitrack.app import HiiTrack
    from hiitrack.web.site import make_site

    port = await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(
        make_site(HiiTrack(store), idle_timeout=0.5)
    )
    closed: defer.Deferred = defer.Deferred()

    class Idle(Protocol):
        def connectionLost(self, reason: object) -> None:
            closed.callback(reactor.seconds())

    try:
        opened = reactor.seconds()
        await TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port).connect(Factory.forProtocol(Idle))
        seconds = await closed
        assert 0.4 <= seconds - opened < 5
    finally:
        await port.stopListening()
