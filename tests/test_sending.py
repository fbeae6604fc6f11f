"""Answers sent at once (hiitrack.sending): whole, in order, and closed when asked."""

import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.protocol import Factory, Protocol

from hiitrack.sending import PromptConnection, listening_reactor, sent_at_once
from tests.helpers import auth_of, new_user, path
from tests.sockets import exchange

BIG = 8 * 1024 * 1024  # far over a loopback socket's buffer: most of it waits for the reactor


class _Answering(Protocol):
    """Writes `size` bytes in pieces while held, then closes; records whether the reactor had to help."""

    def __init__(self, size: int, waited: list[bool]) -> None:
        self.size = size
        self.waited = waited

    def connectionMade(self) -> None:
        assert isinstance(self.transport, PromptConnection)
        piece = bytes(range(256)) * 64
        with sent_at_once(self.transport):
            for start in range(0, self.size, len(piece)):
                self.transport.write(piece[: self.size - start])
            self.transport.writeSequence([b"<", b"end", b">"])
        self.waited.append(self.transport in reactor.getWriters())
        self.transport.loseConnection()


class _Reading(Protocol):
    def __init__(self) -> None:
        self.received = bytearray()
        self.closed: defer.Deferred[bytes] = defer.Deferred()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: object) -> None:
        self.closed.callback(bytes(self.received))


async def _received_from_answering(size: int) -> tuple[bytes, bool]:
    waited: list[bool] = []
    endpoint = TCP4ServerEndpoint(listening_reactor(reactor), 0, interface="127.0.0.1")
    port = await endpoint.listen(Factory.forProtocol(lambda: _Answering(size, waited)))
    try:
        reading = _Reading()
        await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port), reading)
        received = await reading.closed
    finally:
        await port.stopListening()
    return received, waited[0]


def _expected(size: int) -> bytes:
    piece = bytes(range(256)) * 64
    return b"".join(piece[: size - start] for start in range(0, size, len(piece))) + b"<end>"


@pytest_twisted.ensureDeferred
async def test_a_small_answer_leaves_at_once_without_the_reactor():
    received, waited = await _received_from_answering(300)
    assert received == _expected(300)
    assert not waited


@pytest_twisted.ensureDeferred
async def test_an_answer_larger_than_the_socket_takes_arrives_whole_and_in_order():
    received, waited = await _received_from_answering(BIG)
    assert len(received) == len(_expected(BIG))
    assert received == _expected(BIG)
    assert waited


@pytest_twisted.ensureDeferred
async def test_pipelined_hits_are_answered_in_order_and_the_last_closes(server, user_name):
    await new_user(server.client, user_name)
    body = b"visitor_id=v"
    requests = b"".join(
        b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: %d\r\n%s\r\n%s"
        % (path(user_name, "b", "event", name).encode(), len(body), b"Connection: close\r\n" if last else b"", body)
        for name, last in (("A", False), ("B", False), ("C", True))
    )
    answered = await exchange(server.port.getHost().port, requests)
    assert answered.count(b"HTTP/1.1 200 OK\r\n") == 3
    assert answered.endswith(b"\r\n\r\n{}")
    for name in "ABC":
        report = await server.client.get(path(user_name, "b", "event", name), auth=auth_of(user_name))
        assert report.json["total"] == 1, name
