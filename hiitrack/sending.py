"""Connections that send what is written at once, in one system call: answers, and Cassandra statements.

A Twisted TCP connection buffers every write and asks the reactor to tell
it when the socket can take data: an ``epoll_ctl`` to register, a turn of
the event loop that dispatches the writable socket, the ``send``, and an
``epoll_ctl`` to unregister.  An answer of a few hundred bytes to a hit
nearly always fits the socket's free buffer, so all but the ``send`` is
overhead (docs/performance.md, "Session 12").

While a connection is held (`sent_at_once`), its writes only collect; when
released, what they collected goes out with one ``send``, and whatever the
socket does not take then (or anything unusual: an earlier write still
pending, a closing connection, a paused producer) is left to Twisted's own
buffering, in order.  `listening_reactor` gives the endpoint parser a
reactor whose TCP ports make such connections; TLS and UNIX-socket
endpoints keep Twisted's own.  `adopted` makes one of a socket connected
elsewhere (the Cassandra store's connections, store/cassandra/wire.py).
Tests: tests/test_sending.py, tests/test_cassandra_wire.py.
"""

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from twisted.internet import tcp
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorCore, ITransport

__all__ = ["PromptConnection", "adopted", "listening_reactor", "sent_at_once"]


class PromptConnection(tcp.Server):
    """A server connection whose writes while held are sent when it is released."""

    _holds = 0

    def startWriting(self) -> None:
        if not self._holds:
            super().startWriting()

    def hold(self) -> None:
        self._holds += 1

    def release(self) -> None:
        self._holds -= 1
        if self._holds or not (self._tempDataBuffer or self.disconnecting):
            return
        if self.dataBuffer or self.disconnecting or self.producerPaused or not self.connected:
            super().startWriting()  # doWrite keeps the order, resumes and closes
            return
        data = b"".join(self._tempDataBuffer)
        try:
            sent = self.socket.send(data)
        except OSError:
            sent = 0  # the socket is full, or broken: doWrite meets the error again and closes
        rest = data[sent:]
        self._tempDataBuffer = [rest] if rest else []
        self._tempDataLen = len(rest)
        if rest:
            super().startWriting()


@contextmanager
def sent_at_once(transport: ITransport | None) -> Iterator[None]:
    """Collect what is written to `transport` meanwhile and send it at the end, if it can."""
    if not isinstance(transport, PromptConnection):
        yield
        return
    transport.hold()
    try:
        yield
    finally:
        transport.release()


def adopted(reactor: Any, connected: socket.socket, factory: IProtocolFactory) -> PromptConnection:
    """A `PromptConnection` of `reactor` on a duplicate of the `connected` socket, as
    `adoptStreamConnection` makes a Twisted connection of one."""
    made: PromptConnection = PromptConnection._fromConnectedSocket(
        connected.fileno(), connected.family, factory, reactor
    )
    return made


class PromptPort(tcp.Port):
    transport = PromptConnection


class _ListeningReactor:
    """The reactor, except that its TCP ports make `PromptConnection`s."""

    def __init__(self, reactor: IReactorCore) -> None:
        self._reactor = reactor

    def listenTCP(self, port: int, factory: IProtocolFactory, backlog: int = 50, interface: str = "") -> IListeningPort:
        listening = PromptPort(port, factory, backlog, interface, self._reactor)
        listening.startListening()
        return listening

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)


def listening_reactor(reactor: IReactorCore) -> Any:
    """`reactor` for `serverFromString`: TCP endpoints listen with `PromptConnection`s."""
    return _ListeningReactor(reactor)
