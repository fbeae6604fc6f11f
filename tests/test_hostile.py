"""Hostile and malformed input: a clear JSON error, and nothing stored.

Each row of the table is sent to a bucket that already holds data; after it,
the bucket's stored rows and its reports must be exactly as before.
"""

import base64
import socket

import pytest_twisted
from twisted.internet import defer, reactor, threads

from tests.http import b64json, path

PASSWORD = "pw"
NAME_256 = "é" * 128
NAME_257 = "é" * 128 + "x"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _rows(user: str) -> list[tuple]:
    """(method, where, params, body, headers, expected status) — `U` stands for the user."""
    site = f"/{user}/site"
    deep = "[" * 3000 + "]" * 3000
    return [
        ("POST", f"{site}/event/%FF%FE", None, None, {}, 400),
        ("POST", f"{site}/event/A?visitor_id=%FF", None, None, {}, 400),
        ("POST", f"{site}/event/%00", {"visitor_id": "v"}, None, {}, 400),
        ("POST", f"{site}/event/A", {"visitor_id": "v\x00"}, None, {}, 400),
        ("POST", f"{site}/event/{NAME_257}", {"visitor_id": "v"}, None, {}, 400),
        ("POST", f"{site}/property/{NAME_257}", {"visitor_id": "v", "value": b64json(1)}, None, {}, 400),
        ("POST", f"{site}/property/p", {"visitor_id": "v", "value": _b64(deep.encode())}, None, {}, 400),
        ("POST", f"{site}/property/p", {"visitor_id": "v", "value": _b64(b"1e400")}, None, {}, 400),
        ("POST", f"{site}/property/p", {"visitor_id": "v", "value": "!!not base64!!"}, None, {}, 400),
        ("POST", f"{site}/property/p", {"visitor_id": "v", "value": b64json("x" * 5000)}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A"] * 101, []])}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A"], [["p", 1]] * 101])}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A"], [["p"]]])}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A", 7], []])}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json({"events": ["A"]})}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": _b64(b"\xff\xfe not json")}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A"], []]), "visitor_id": "v" * 257}, None, {}, 400),
        ("GET", f"{site}/batch", {"message": b64json([["A"], []]), "callback": "alert(1)//"}, None, {}, 400),
        ("POST", f"{site}/event/A", None, b"visitor_id=v", {"Content-Type": ["text/plain"]}, 400),
        ("POST", f"{site}/event/A", None, b"visitor_id=v", {"Content-Type": ["multipart/form-data"]}, 400),
        ("POST", f"{site}/event/A", None, b'{"visitor_id": {"a": 1}}', {"Content-Type": ["application/json"]}, 400),
        ("POST", f"{site}/event/A", None, b'["visitor_id"]', {"Content-Type": ["application/json"]}, 400),
        ("POST", f"{site}/event/A", None, b"{not json", {"Content-Type": ["application/json"]}, 400),
        ("POST", f"{site}/event/A", {"visitor_id": "v", "pad": "x" * 70_000}, None, {}, 413),
        ("PUT", f"{site}/event/A", {"visitor_id": "v"}, None, {}, 405),
        ("PATCH", f"{site}", None, None, {}, 405),
        ("TRACE", "/openapi.json", None, None, {}, 405),
        ("GET", f"{site}/event_id/!!!!!!!!!!!!!!!!!!!!!!", None, None, {}, 400),
        ("GET", f"{site}/event_id/AAAA", None, None, {}, 400),
        ("GET", f"{site}/event_id/AAAAAAAAAAAAAAAAAAAAAB", None, None, {}, 400),
        ("GET", f"{site}/event/A", {"start": "1e3"}, None, {}, 400),
        ("GET", f"{site}/event/A", {"start": str(10**30)}, None, {}, 400),
        ("GET", f"{site}/event/A", {"start": "0", "interval": "week"}, None, {}, 400),
        ("GET", f"{site}/funnel", {"event": "A"}, None, {}, 400),
        ("GET", f"{site}/funnel", {"event_id": ["AAAA", "BBBB"]}, None, {}, 400),
        ("POST", "/.hidden", {"password": "x"}, None, {}, 400),
        ("POST", f"/{'u' * 65}", {"password": "x"}, None, {}, 400),
    ]


async def _snapshot(server, user: str) -> tuple:
    client = server.client
    auth = (user, PASSWORD)
    bucket = (await client.get(path(user, "site"), auth=auth)).json
    event = (await client.get(path(user, "site", "event", "A"), auth=auth)).json
    stored = await server.app.store.count(f"{user}/site")
    return bucket, event, stored


@pytest_twisted.ensureDeferred
async def test_hostile_requests_are_refused_and_store_nothing(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": PASSWORD})
    await client.post(path(user_name, "site", "event", "A"), {"visitor_id": "v"})
    before = await _snapshot(server, user_name)
    for method, where, params, body, headers, status in _rows(user_name):
        if method in ("GET", "PUT", "PATCH", "TRACE") or body is not None:
            answer = await client.request(
                method, where, params=params, body=body, headers=headers, auth=(user_name, PASSWORD)
            )
        else:
            answer = await client.request(method, where, data=params)
        case = f"{method} {where[:80]} {str(params)[:80]}"
        assert answer.status == status, f"{case}: {answer.status} {answer.body[:200]!r}"
        assert b"Traceback" not in answer.body, case
        assert answer.header("Content-Type") == "application/json", case
        assert isinstance(answer.json.get("error"), str), case
        if status == 405:
            assert answer.header("Allow"), case
        assert await _snapshot(server, user_name) == before, f"{case} changed the stored data"


@pytest_twisted.ensureDeferred
async def test_names_of_256_bytes_are_accepted(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": PASSWORD})
    assert len(NAME_256.encode()) == 256
    assert (await client.post(path(user_name, "site", "event", NAME_256), {"visitor_id": "v"})).status == 200
    answer = await client.post(path(user_name, "site", "property", NAME_256), {"visitor_id": "v", "value": b64json(1)})
    assert answer.status == 200
    report = await client.get(path(user_name, "site", "event", NAME_256), auth=(user_name, PASSWORD))
    assert (report.json["name"], report.json["total"]) == (NAME_256, 1)


@pytest_twisted.ensureDeferred
async def test_duplicated_parameters_take_the_first(server, user_name):
    client = server.client
    await client.post(path(user_name), {"password": PASSWORD})
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
