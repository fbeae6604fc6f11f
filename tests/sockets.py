"""Raw TCP clients for tests that need bytes HTTP clients won't send.

`exchange` sends exact bytes (odd paths, ``Expect: 100-continue``) and
returns everything the server answers until it closes.  `trickle` is a
slowloris: it sends a head, then one byte at a time, and reports when and
how the server closed the connection.
"""

from dataclasses import dataclass

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure

__all__ = ["Closed", "exchange", "trickle"]


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
