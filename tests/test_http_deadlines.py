"""Deadlines for a request's headers and body, against slow clients (slowloris).

The idle timeout is reset by every byte, so a client trickling one byte at a
time would keep a connection (and a file descriptor) forever.  The server
gives a request's headers and its body each a deadline of their own; these
tests trickle bytes over a real socket with short deadlines and await the
close.
"""

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ServerEndpoint

from hiitrack.web.site import make_site
from tests.helpers import auth_of, new_user, path
from tests.sockets import exchange, trickle

DEADLINE = 0.6
DRIP = 0.1  # a byte every 0.1 s: far more often than the idle timeout


async def _listen(server, idle_timeout: float = 30):
    site = make_site(server.app, idle_timeout=idle_timeout, header_timeout=DEADLINE, body_timeout=DEADLINE)
    return await TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)


@pytest_twisted.ensureDeferred
async def test_headers_trickled_past_their_deadline_are_cut_off(server):
    port = await _listen(server)
    try:
        closed = await trickle(port.getHost().port, b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a" * 1000, DRIP)
    finally:
        await port.stopListening()
    assert DEADLINE <= closed.seconds < DEADLINE + 2, closed
    assert closed.received.startswith(b"HTTP/1.1 408 "), closed.received
    assert b'"error"' in closed.received


@pytest_twisted.ensureDeferred
async def test_a_request_line_trickled_byte_by_byte_is_cut_off(server):
    port = await _listen(server)
    try:
        closed = await trickle(port.getHost().port, b"", b"GET /" + b"x" * 1000, DRIP)
    finally:
        await port.stopListening()
    assert DEADLINE <= closed.seconds < DEADLINE + 2, closed
    assert closed.received.startswith(b"HTTP/1.1 408 "), closed.received


@pytest_twisted.ensureDeferred
async def test_a_body_trickled_past_its_deadline_is_cut_off_and_nothing_stored(server, user_name):
    await new_user(server.client, user_name)
    port = await _listen(server)
    head = (
        f"POST {path(user_name, 'b', 'event', 'A')} HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    try:
        closed = await trickle(port.getHost().port, head, b"visitor_id=v&pad=" + b"x" * 983, DRIP)
    finally:
        await port.stopListening()
    assert DEADLINE <= closed.seconds < DEADLINE + 2, closed
    assert closed.received.startswith(b"HTTP/1.1 408 "), closed.received
    assert await server.app.store.count(f"{user_name}/b") == 0
    answer = await server.client.get(path(user_name), auth=auth_of(user_name))
    assert answer.json["buckets"] == {}


@pytest_twisted.ensureDeferred
async def test_an_idle_keep_alive_connection_gets_the_idle_timeout(server):
    """The header deadline starts with a request's first byte, not when the
    previous answer went out: a quiet keep-alive connection lives until the
    idle timeout."""
    idle = 3 * DEADLINE
    port = await _listen(server, idle_timeout=idle)
    try:
        closed = await trickle(port.getHost().port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"", DRIP)
    finally:
        await port.stopListening()
    assert closed.received.startswith(b"HTTP/1.1 200 "), closed.received
    assert b"408" not in closed.received
    assert idle <= closed.seconds < idle + 2, closed


@pytest_twisted.ensureDeferred
async def test_requests_within_their_deadlines_are_answered(server):
    port = await _listen(server)
    try:
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nobody/b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        received = await exchange(port.getHost().port, request)
    finally:
        await port.stopListening()
    assert received.startswith(b"HTTP/1.1 200 ")
    assert received.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 401 " in received
