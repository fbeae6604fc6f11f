"""Whole tracking requests answered without Twisted's request machinery (hiitrack.web.lean).

A request whose route the site has walked before is answered as a
`LeanRequest` when it arrives whole; its answer must be the one Twisted
gives for the same bytes, and whatever the lean path does not take must
reach Twisted's channel and be answered as before.  Raw bytes over a real
loopback socket, as a browser or nginx sends them.
"""

import base64
import re

import pytest
import pytest_twisted
import ujson
from twisted.internet import defer

from hiitrack.web import site as site_module
from hiitrack.web.events import Event
from hiitrack.web.lean import LEAN_BYTES, LeanRequest, parse_whole
from hiitrack.web.site import ApiChannel
from tests.helpers import auth_of, new_user
from tests.sockets import KeptConnection, exchange, kept_connection


@pytest.fixture
def store_kind() -> str:
    """The lean path is the web layer's, the same for every store."""
    return "sqlite"


@pytest.fixture
def leans(monkeypatch) -> list[LeanRequest]:
    """Every LeanRequest the site makes."""
    made: list[LeanRequest] = []

    class Counted(LeanRequest):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(site_module, "LeanRequest", Counted)
    return made


def request(
    method: str, target: str, body: bytes = b"", *headers: str, content_type: str = "application/x-www-form-urlencoded"
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if body:
        lines += [f"Content-Type: {content_type}"] if content_type else []
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode() + body


def _message(events: list[str], properties: list[list[object]]) -> str:
    return base64.b64encode(ujson.dumps([events, properties]).encode()).decode()


def _cases(user: str) -> dict[str, bytes]:
    """Tracking requests of every kind the tracker and the pixel send, and some refused ones."""
    message = _message(["signup", "pay"], [["plan", "pro"]])
    value = base64.b64encode(b'"pro"').decode()
    batch_body = ujson.dumps({"visitor_id": "v1", "message": message}).encode()
    return {
        "event": request("POST", f"/{user}/b/event/e1", b"visitor_id=v1"),
        "event, new visitor": request("POST", f"/{user}/b/event/e2", b"time=1700000000"),
        "event, cookie": request("POST", f"/{user}/b/event/e3", b"x=1", "Cookie: a=b; v=v9"),
        "event, behind TLS": request("POST", f"/{user}/b/event/e4", b"x=1", "X-Forwarded-Proto: https"),
        "event, CORS": request("POST", f"/{user}/b/event/e5", b"visitor_id=v1", "Origin: https://shop.example"),
        "event, JSONP": request("POST", f"/{user}/b/event/e6?callback=cb.done", b"visitor_id=v1&request_id=r7"),
        "event, bad time": request("POST", f"/{user}/b/event/e7", b"visitor_id=v1&time=soon"),
        "event, bad callback": request("POST", f"/{user}/b/event/e8?callback=alert(1)", b"visitor_id=v1"),
        "event, no body": request("POST", f"/{user}/b/event/e9?visitor_id=v2"),
        "event, no content type": request("POST", f"/{user}/b/event/e10", b"visitor_id=v1", content_type=""),
        "event, credentials": request("POST", f"/{user}/b/event/e11", b"visitor_id=v1", "Authorization: Basic eDp5"),
        "property": request("POST", f"/{user}/b/property/plan", f"visitor_id=v1&value={value}".encode()),
        "batch, JSON": request("POST", f"/{user}/c/batch", batch_body, content_type="application/json"),
        "batch, pixel": request("GET", f"/{user}/d/batch?img=1&visitor_id=v1&message={message}"),
        "batch, refused pixel": request("GET", f"/{user}/e/batch?img=1&visitor_id=v1&message=nonsense"),
        "batch, refused": request("GET", f"/{user}/f/batch?visitor_id=v1&message=nonsense"),
    }


def _without_what_differs(answer: bytes) -> bytes:
    """An answer without its date and a new visitor's random id."""
    answer = re.sub(rb"\r\nDate: [^\r]*", b"\r\nDate: -", answer)
    return re.sub(rb"v=[A-Za-z0-9_%-]{16,}", b"v=ID", answer)


@pytest_twisted.ensureDeferred
async def test_a_lean_answer_is_the_answer_twisted_gives(server, user_name, leans, monkeypatch):
    await new_user(server.client, user_name)
    logged: list[str] = []
    site = server.port.factory
    formatter = site._logFormatter

    def kept(timestamp: str, request) -> str:
        logged.append(re.sub(r"\[[^]]*\]", "[-]", formatter(timestamp, request)))
        return logged[-1]

    monkeypatch.setattr(site, "_logFormatter", kept)
    connection = await kept_connection(server.port.getHost().port)
    for name, sent in _cases(user_name).items():
        answers = []
        for lean in (0, 1):
            connection.send(sent)
            answers.append(_without_what_differs(await connection.answer()))
            # The first walks the tree (Twisted's request), the second is lean.
            assert len(leans) == lean, name
        assert answers[0] == answers[1], name
        assert logged[-1] == logged[-2], name
        leans.clear()
    connection.transport.loseConnection()
    await connection.closed
    report = await server.client.get(f"/{user_name}/b/event/e1", auth=auth_of(user_name))
    assert (report.status, report.json["total"], report.json["unique_total"]) == (200, 2, 1)


@pytest_twisted.ensureDeferred
async def test_what_the_lean_path_does_not_take_is_answered_by_twisted(server, user_name, leans):
    await new_user(server.client, user_name)
    event = f"/{user_name}/b/event/e1"
    hit = request("POST", event, b"visitor_id=v1")
    connection = await kept_connection(server.port.getHost().port)
    connection.send(hit)
    assert (await connection.answer()).startswith(b"HTTP/1.1 200 OK")
    head, body = hit.split(b"\r\n\r\n")
    kept_open = {
        "two requests in one read": hit + hit,
        "a chunked body": head.replace(b"Content-Length: 13", b"Transfer-Encoding: chunked")
        + b"\r\n\r\nd\r\nvisitor_id=v1\r\n0\r\n\r\n",
        "a folded header": head + b"\r\nX-Note: a\r\n b\r\n\r\n" + body,
        "a report": request("GET", event),
        "a preflight": request("OPTIONS", event, b"", "Origin: https://shop.example"),
        "100-continue": head + b"\r\nExpect: 100-continue\r\n\r\n" + body,
    }
    answers = {
        "two requests in one read": [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"],
        "a chunked body": [b"HTTP/1.1 200 OK"],
        "a folded header": [b"HTTP/1.1 200 OK"],
        "a report": [b"HTTP/1.1 401 Unauthorized"],
        "a preflight": [b"HTTP/1.1 204 No Content"],
        "100-continue": [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK"],
    }
    for name, sent in kept_open.items():
        connection.send(sent)
        for start in answers[name]:
            answer = await connection.answer()
            if start.startswith(b"HTTP/1.1 100"):
                answer += await connection.answer()
            assert answer.startswith(start), (name, answer)
    # Only the second of the two: Twisted hands it back whole once the first is answered.
    assert [lean.uri for lean in leans] == [event.encode()]
    leans.clear()
    connection.transport.loseConnection()
    await connection.closed
    port = server.port.getHost().port
    closing = {
        "HTTP/1.0": hit.replace(b"HTTP/1.1", b"HTTP/1.0"),
        "Connection: close": head + b"\r\nConnection: close\r\n\r\n" + body,
        "two lengths": head + b"\r\nContent-Length: 13\r\n\r\n" + body,
        "a NUL in a header": head + b"\r\nX-Note: a\x00b\r\n\r\n" + body,
        "a line feed in a header": head + b"\r\nX-Note: a\nb\r\n\r\n" + body,
    }
    expected = {
        "HTTP/1.0": b"HTTP/1.0 200 OK",
        "Connection: close": b"HTTP/1.1 200 OK",
        "two lengths": b"HTTP/1.1 400 Bad Request",
        "a NUL in a header": b"HTTP/1.1 400 Bad Request",
        "a line feed in a header": b"HTTP/1.1 400 Bad Request",
    }
    for name, sent in closing.items():
        assert (await exchange(port, sent)).startswith(expected[name]), name
    assert leans == []
    report = await server.client.get(event, auth=auth_of(user_name))
    # The first hit, 5 kept open (the report and the preflight record nothing), HTTP/1.0 and close.
    assert report.json["total"] == 1 + 5 + 2


class HeldHits:
    """Hits that wait for the test before they are recorded: each reports when it arrives."""

    def __init__(self, app, monkeypatch) -> None:
        self.arrived: defer.DeferredQueue[None] = defer.DeferredQueue()
        self._gates: defer.DeferredQueue[None] = defer.DeferredQueue()
        record_hit = app.record_hit

        async def held(*args, **kwargs):
            self.arrived.put(None)
            await self._gates.get()
            return await record_hit(*args, **kwargs)

        monkeypatch.setattr(app, "record_hit", held)

    def release(self) -> None:
        self._gates.put(None)


def _reads(monkeypatch) -> defer.DeferredQueue[bytes]:
    """What each of the server's connections reads, as it reads it."""
    reads: defer.DeferredQueue[bytes] = defer.DeferredQueue()
    data_received = ApiChannel.dataReceived

    def spied(self, data: bytes) -> None:
        data_received(self, data)
        # After: a waiting test runs at once, inside `put`.
        reads.put(data)

    monkeypatch.setattr(ApiChannel, "dataReceived", spied)
    return reads


async def _walked(server, user_name: str) -> tuple[str, KeptConnection]:
    """A tracking path the site has walked once, and a connection kept open."""
    await new_user(server.client, user_name)
    event = f"/{user_name}/b/event/e1"
    connection = await kept_connection(server.port.getHost().port)
    connection.send(request("POST", event, b"visitor_id=v0"))
    assert (await connection.answer()).startswith(b"HTTP/1.1 200 OK")
    return event, connection


@pytest_twisted.ensureDeferred
async def test_a_request_sent_while_a_lean_one_is_answered_waits_for_it(server, user_name, leans, monkeypatch):
    event, connection = await _walked(server, user_name)
    hits = HeldHits(server.app, monkeypatch)
    reads = _reads(monkeypatch)
    connection.send(request("POST", event, b"visitor_id=v1&request_id=first"))
    await reads.get()
    await hits.arrived.get()
    connection.send(request("POST", event, b"visitor_id=v2&request_id=second"))
    await reads.get()
    # Read while the first is answered: held, not parsed.
    assert hits.arrived.pending == [] and len(leans) == 1
    hits.release()
    first = await connection.answer()
    await hits.arrived.get()
    hits.release()
    second = await connection.answer()
    assert first.endswith(b'{"request_id":"first"}') and second.endswith(b'{"request_id":"second"}')
    assert len(leans) == 2
    connection.transport.loseConnection()
    await connection.closed
    report = await server.client.get(event, auth=auth_of(user_name))
    assert (report.json["total"], report.json["unique_total"]) == (3, 3)


@pytest_twisted.ensureDeferred
async def test_a_client_that_leaves_before_a_lean_answer_loses_only_the_answer(server, user_name, leans, monkeypatch):
    event, connection = await _walked(server, user_name)
    hits = HeldHits(server.app, monkeypatch)
    finished = []
    monkeypatch.setattr(site_module.ApiSite, "log", lambda site, request: finished.append(request))
    connection.send(request("POST", event, b"visitor_id=v1"))
    await hits.arrived.get()
    connection.transport.abortConnection()
    await connection.closed
    hits.release()
    # The hit is recorded, and nothing is written to the closed connection or logged as answered.
    report = await server.client.get(event, auth=auth_of(user_name))
    assert (report.json["total"], report.json["unique_total"]) == (2, 2)
    assert len(leans) == 1 and not leans[0].finished
    assert [request.method for request in finished] == [b"GET"]


@pytest_twisted.ensureDeferred
async def test_the_idle_timeout_does_not_cut_a_lean_answer_short(server, user_name, leans, monkeypatch):
    event, connection = await _walked(server, user_name)
    hits = HeldHits(server.app, monkeypatch)
    timeouts: defer.DeferredQueue[None] = defer.DeferredQueue()
    timeout_connection = ApiChannel.timeoutConnection

    def spied(self) -> None:
        answering = self._lean is not None  # not another connection's (the client's idle ones)
        timeout_connection(self)
        if answering:
            timeouts.put(None)

    monkeypatch.setattr(ApiChannel, "timeoutConnection", spied)
    connection.send(request("POST", event, b"visitor_id=v1"))
    await hits.arrived.get()
    # This connection's idle timeout, shortened while its lean request is answered.
    leans[0].channel.setTimeout(0.2)
    await timeouts.get()
    hits.release()
    assert (await connection.answer()).startswith(b"HTTP/1.1 200 OK")
    assert len(leans) == 1
    connection.transport.loseConnection()
    await connection.closed


def test_parse_whole_takes_one_whole_request_only():
    hit = request("POST", "/u/b/event/e", b"visitor_id=v1", "Connection: Keep-Alive", "cookie: v=1", "Cookie: v=2")
    method, target, path, headers, body = parse_whole(hit)
    assert (method, target, path, body) == (b"POST", b"/u/b/event/e", b"/u/b/event/e", b"visitor_id=v1")
    assert headers[b"cookie"] == [b"v=1", b"v=2"] and headers[b"content-length"] == [b"13"]
    head, _, body = hit.partition(b"\r\n\r\n")
    refused = [
        hit[:-1],
        hit + b"G",
        hit.replace(b"HTTP/1.1", b"HTTP/1.0"),
        hit.replace(b"/u/b/event/e", b"/u/b/event/\xff"),
        hit.replace(b"POST", b"PO(ST"),
        head + b"\r\nContent-Length: 13\r\n\r\n" + body,
        head + b"\r\nTransfer-Encoding: identity\r\n\r\n" + body,
        head + b"\r\nExpect: 100-continue\r\n\r\n" + body,
        head + b"\r\nConnection: close\r\n\r\n" + body,
        head + b"\r\nX-Note: a\r\n\tb\r\n\r\n" + body,
        head + b"\r\nX Note: a\r\n\r\n" + body,
        head + b"\r\nX-Note: a\rb\r\n\r\n" + body,
        head.replace(b"Content-Length: 13", b"Content-Length: +13") + b"\r\n\r\n" + body,
        head + b"\r\n" + b"X-Pad: 1\r\n" * 500 + b"\r\n" + body,
        head + b"\r\nX-Pad: " + b"a" * LEAN_BYTES + b"\r\n\r\n" + body,
    ]
    assert [parse_whole(data) for data in refused] == [None] * len(refused)
    pixel = (b"GET", b"/u/b/batch?img=1", b"/u/b/batch", {b"host": [b"127.0.0.1"]}, b"")
    assert parse_whole(request("GET", "/u/b/batch?img=1")) == pixel


@pytest_twisted.ensureDeferred
async def test_a_lean_request_that_fails_unexpectedly_is_answered_500(server, user_name, leans, monkeypatch):
    event, connection = await _walked(server, user_name)

    def broken(self, request) -> object:
        raise RuntimeError("a bug")

    monkeypatch.setattr(Event, "render", broken)
    connection.send(request("POST", event, b"visitor_id=v1"))
    answer = await connection.closed
    assert answer.startswith(b"HTTP/1.1 500 Internal Server Error") and b"a bug" not in answer
    assert answer.endswith(b'{"error":"internal server error"}') and len(leans) == 1
