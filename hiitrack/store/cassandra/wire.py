"""The driver's connections on the reactor thread: a statement and its answer without a thread hop.

The driver does its network I/O on a thread of its own (libev's loop).  A
statement started on the reactor is written by that thread, and its answer
is read there and handed back with `reactor.callFromThread`: two hand-offs,
each waiting for the GIL and for the other thread to wake.  At light load
they were a sizeable part of a hit's time on top of the node's.

`ReactorConnection` is a driver `Connection` whose socket the reactor reads
and writes.  The socket is opened by the driver's own code (with its socket
options, `TCP_NODELAY` among them) in the thread that asks for a connection,
and the reactor adopts it (a `hiitrack.sending.PromptConnection`).  On the
reactor thread a statement is sent at once, in one system call, and its
answer parsed where it arrives, its callbacks run there too; from other
threads (the driver's control connection, heartbeats and reconnections, the
store's `prepare` at open) the work is handed to the reactor.  So the
reactor must be running, and nothing on its thread may wait for the driver
(blocking calls go to a thread, as the store does).  No TLS: HiiTrack
connects to Cassandra without it.  It also mends the driver's parsing of
protocol v5 segments whose header a read splits.  Tests:
tests/test_cassandra_wire.py, tests/test_cassandra.py,
tests/test_cassandra_outage.py, tests/test_cluster.py.
"""

from collections.abc import Callable
from typing import Any

from cassandra.connection import Connection, ConnectionShutdown
from twisted.internet import reactor
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.python.threadable import isInIOThread

from hiitrack.sending import adopted, sent_at_once

__all__ = ["ReactorConnection", "on_reactor"]


def on_reactor(running: Any, call: Callable[..., object], *args: object) -> None:
    """Run `call` on the thread of the `running` reactor: now if this is it, else as soon as it can."""
    if isInIOThread():
        call(*args)
    else:
        running.callFromThread(call, *args)


class _Timer:
    """A driver timer (a request's timeout) as a reactor call; cancellable from any thread."""

    def __init__(self, timeout: float, callback: Callable[[], object]) -> None:
        self._call: IDelayedCall | None = None
        self._cancelled = False
        on_reactor(reactor, self._start, timeout, callback)

    def _start(self, timeout: float, callback: Callable[[], object]) -> None:
        if not self._cancelled:
            self._call = reactor.callLater(timeout, callback)  # type: ignore[attr-defined]

    def cancel(self) -> None:
        self._cancelled = True
        on_reactor(reactor, self._stop)

    def _stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()


class _Wire(Protocol):
    """The reactor's side of one connection: bytes in, the end of the socket."""

    def __init__(self, connection: "ReactorConnection") -> None:
        self._connection = connection

    def connectionMade(self) -> None:
        self._connection.adopted(self.transport)

    def dataReceived(self, data: bytes) -> None:
        self._connection.received(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        error = reason.value
        self._connection.lost(error if isinstance(error, Exception) else ConnectionShutdown("connection lost"))


class _WireFactory(Factory):
    def __init__(self, connection: "ReactorConnection") -> None:
        self._connection = connection

    def buildProtocol(self, addr: object) -> _Wire:
        return _Wire(self._connection)


class ReactorConnection(Connection):
    """A connection to one node, its I/O on the reactor thread."""

    _socket: Any
    is_closed: bool

    @classmethod
    def initialize_reactor(cls) -> None:
        """Nothing to start: the reactor is HiiTrack's own, running already."""

    @classmethod
    def create_timer(cls, timeout: float, callback: Callable[[], object]) -> _Timer:
        return _Timer(timeout, callback)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        Connection.__init__(self, *args, **kwargs)
        self._transport: Any = None
        # Blocking: the driver asks for connections from its own threads.
        self._connect_socket()
        # Before anything is written: writes from other threads queue behind this.
        on_reactor(reactor, self._adopt)
        self._send_options_message()

    def _adopt(self) -> None:
        sock = self._socket
        try:
            if not self.is_closed:
                # The reactor takes a duplicate of the socket (and _Wire.connectionMade the transport).
                adopted(reactor, sock, _WireFactory(self))
        finally:
            sock.close()

    def adopted(self, transport: Any) -> None:
        self._transport = transport
        # The reactor's duplicate is the socket from now on (the options are the original's).
        self._socket = transport.getHandle()

    def received(self, data: bytes) -> None:
        self._iobuf.write(data)
        self.process_io_buffer()

    def _process_segment_buffer(self) -> None:
        # The driver's own (3.30) drops the first bytes of a v5 segment header that arrives split
        # across reads: it keeps what follows the buffer's position, left at the end when the
        # header is short.  The stream is then out of step and the connection fails on a CRC.
        if self._io_buffer.readable_io_bytes() < self._segment_codec.header_length_with_crc:
            self._io_buffer._segment_consumed = False
            self._io_buffer.io_buffer.seek(0)
            return
        Connection._process_segment_buffer(self)

    def lost(self, error: Exception) -> None:
        self._transport = None
        # After close() nothing more (defunct skips a closed connection); otherwise the node went away.
        self.defunct(error)

    def push(self, data: bytes) -> None:
        on_reactor(reactor, self._write, data)

    def _write(self, data: bytes) -> None:
        # None once the socket has ended: the driver fails its requests then (defunct, close).
        if self._transport is not None:
            # Sent now, not at the end of the reactor's turn: under load that turn is many requests long.
            with sent_at_once(self._transport):
                self._transport.write(data)

    def close(self) -> None:
        with self.lock:
            if self.is_closed:
                return
            self.is_closed = True
        on_reactor(reactor, self._disconnect)
        if not self.is_defunct:
            self.error_all_requests(ConnectionShutdown(f"Connection to {self.endpoint} was closed"))
            # Whoever waits for this connection to be ready stops waiting.
            self.connected_event.set()

    def _disconnect(self) -> None:
        if self._transport is not None:
            self._transport.loseConnection()
