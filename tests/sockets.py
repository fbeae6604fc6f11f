"""Raw TCP clients for tests that need bytes HTTP clients won't send.

`exchange` sends exact bytes (odd paths, ``Expect: 100-continue``) and
returns everything the server answers until it closes.  `trickle` is a
slowloris: it sends a head, then one byte at a time, and reports when and
how the server closed the connection.  `kept_connection` sends exact bytes
on a connection kept open, and reads its answers one by one.
"""

from dataclasses import dataclass

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

__all__ = ["Closed", "KeptConnection", "exchange", "kept_connection", "trickle"]


@dataclass
class Closed:
    """How a connection ended: what the server sent, and after how long."""

    received: bytes
    seconds: float


class _Recorder(Protocol):
    """Writes `head`, then one byte of `drip` every `interval` seconds."""

    def __init__(self, head: bytes, drip: bytes, interval: float, give_up: float) -> None:
        self.head = head
        self.drip = drip
        self.interval = interval
        self.give_up = give_up
        self.received = b""
        self.closed: defer.Deferred[Closed] = defer.Deferred()
        self._next = None
        self._started = 0.0

    def connectionMade(self) -> None:
        # The reactor's clock, not time.monotonic(): the server's deadlines
        # fire on it, and the two drift apart while NTP adjusts the wall clock.
        self._started = reactor.seconds()
        self.transport.write(self.head)
        self._schedule()

    def _schedule(self) -> None:
        if self.drip:
            self._next = reactor.callLater(self.interval, self._send_byte)

    def _send_byte(self) -> None:
        if reactor.seconds() - self._started > self.give_up:
            self._next = None
            self.transport.abortConnection()
            return
        byte, self.drip = self.drip[:1], self.drip[1:]
        self.transport.write(byte)
        self._schedule()

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure) -> None:
        if self._next is not None and self._next.active():
            self._next.cancel()
        self.closed.callback(Closed(self.received, reactor.seconds() - self._started))


async def _connect(port: int, recorder: _Recorder) -> Closed:
    await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), recorder)
    return await recorder.closed


async def exchange(port: int, request: bytes, give_up: float = 30) -> bytes:
    """Send `request` whole; everything the server sent once it closed."""
    guard = _Recorder(request, b"", 0, give_up)
    timeout = reactor.callLater(give_up, lambda: guard.transport and guard.transport.abortConnection())
    try:
        return (await _connect(port, guard)).received
    finally:
        if timeout.active():
            timeout.cancel()


async def trickle(port: int, head: bytes, drip: bytes, interval: float, give_up: float = 20) -> Closed:
    """Send `head`, then `drip` a byte every `interval` s until the server closes.

    Stops itself (abort) after `give_up` seconds, so a server without a
    deadline fails the test instead of hanging it.
    """
    return await _connect(port, _Recorder(head, drip, interval, give_up))


class KeptConnection(Protocol):
    """A connection kept open: `send` writes bytes, `answer` awaits the next whole answer."""

    def __init__(self) -> None:
        self.received = b""
        self._waiting: list[defer.Deferred[bytes]] = []
        self.closed: defer.Deferred[bytes] = defer.Deferred()

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def answer(self) -> "defer.Deferred[bytes]":
        """The next answer, head and body (every answer here has a Content-Length)."""
        waiting: defer.Deferred[bytes] = defer.Deferred()
        self._waiting.append(waiting)
        self._deliver()
        return waiting

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self._deliver()

    def _deliver(self) -> None:
        while self._waiting:
            end = self.received.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.received[:end].lower()
            length = int(head.partition(b"\r\ncontent-length:")[2].partition(b"\r\n")[0] or b"0")
            if len(self.received) < end + 4 + length:
                return
            whole, self.received = self.received[: end + 4 + length], self.received[end + 4 + length :]
            self._waiting.pop(0).callback(whole)

    def connectionLost(self, reason: Failure) -> None:
        waiting, self._waiting = self._waiting, []
        for answer in waiting:
            answer.errback(reason)
        self.closed.callback(self.received)


async def kept_connection(port: int) -> KeptConnection:
    return await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), KeptConnection())
