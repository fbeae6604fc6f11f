"""The driver's connections on the reactor thread (hiitrack/store/cassandra/wire.py): statements
sent at once, answers and timers run there, other threads' statements reach the node, a connection
the node drops fails its requests and is replaced, answers read in pieces are parsed."""

import threading

import pytest
import pytest_twisted
from cassandra.connection import ConnectionShutdown
from cassandra.query import SimpleStatement
from twisted.internet import reactor, task, threads
from twisted.internet.defer import Deferred

from hiitrack.sending import PromptConnection
from hiitrack.store import StoreUnavailable
from hiitrack.store.cassandra import CassandraStore
from hiitrack.store.cassandra.wire import ReactorConnection
from hiitrack.store.kinds import USER
from tests.conftest import CASSANDRA_URI

pytestmark = pytest.mark.cassandra

LOCAL = "SELECT release_version FROM system.local"


async def opened() -> CassandraStore:
    store = CassandraStore.from_uri(CASSANDRA_URI)
    await store.open()
    return store


def connections(store: CassandraStore) -> list[ReactorConnection]:
    session = store._cql.session
    return [connection for pool in session.get_pools() for connection in pool.get_connections()]


@pytest_twisted.ensureDeferred
async def test_statements_leave_at_once_answers_arrive_on_the_reactor_thread_others_are_handed_over():
    store = await opened()
    try:
        assert connections(store)
        assert all(isinstance(connection, ReactorConnection) for connection in connections(store))
        threads_seen: list[int] = []
        answered: Deferred = Deferred()
        future = store._cql.session.execute_async(LOCAL)
        # Sent already, not left for the reactor's next turn.
        sent = [connection._transport for connection in connections(store)]
        assert all(isinstance(transport, PromptConnection) for transport in sent)
        assert not any(transport.dataBuffer or transport._tempDataBuffer for transport in sent)
        future.add_callback(lambda rows: (threads_seen.append(threading.get_ident()), answered.callback(rows)))
        rows = await answered
        assert rows[0].release_version.startswith("5.")
        assert threads_seen == [threading.get_ident()]
        # From another thread (as the driver's control connection and heartbeats do): handed over.
        answer = await threads.deferToThread(store._cql.session.execute, LOCAL)
        assert answer.one().release_version.startswith("5.")
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_timer_fires_on_the_reactor_and_one_cancelled_from_another_thread_does_not():
    fired: list[tuple[str, int]] = []
    later: Deferred = Deferred()
    # Long enough for the thread pool to run the cancel first, even on a loaded machine.
    cancelled = ReactorConnection.create_timer(0.25, lambda: fired.append(("cancelled", threading.get_ident())))
    await threads.deferToThread(cancelled.cancel)
    ReactorConnection.create_timer(0.3, lambda: (fired.append(("kept", threading.get_ident())), later.callback(None)))
    await later
    assert fired == [("kept", threading.get_ident())]


@pytest_twisted.ensureDeferred
async def test_a_connection_the_node_drops_fails_its_requests_and_is_replaced():
    store = await opened()
    try:
        (dropped, *_) = connections(store)
        # As if the node had gone: the socket ends under the driver.
        dropped._transport.abortConnection()
        with pytest.raises((StoreUnavailable, ConnectionShutdown)):
            for _ in range(50):
                await store._cql.execute(SimpleStatement(LOCAL))
        assert dropped.is_defunct
        for _ in range(200):
            try:
                await store.create("wire-test", USER, "replaced", b"x")
                break
            except StoreUnavailable:
                # The driver reconnects on its own schedule, and says so to no one: asked again.
                await task.deferLater(reactor, 0.05, lambda: None)
        assert connections(store) and dropped not in connections(store)
        assert await store.get("wire-test", USER, "replaced") == b"x"
    finally:
        await store.close()


def a_byte_at_a_time(received):
    def deliver(data: bytes) -> None:
        for i in range(len(data)):
            received(data[i : i + 1])

    return deliver


@pytest_twisted.ensureDeferred
async def test_answers_read_a_byte_at_a_time_are_all_parsed(monkeypatch):
    """A read may end anywhere in the node's bytes, in a v5 segment's header too (as a restart's
    journal read once did in CI): each byte delivered alone still gives every answer."""
    store = await opened()
    try:
        for connection in connections(store):
            monkeypatch.setattr(connection, "received", a_byte_at_a_time(connection.received))
        for n in range(20):
            await store.create("wire-test", USER, f"byte-{n}", b"v" * n)
        for n in range(20):
            assert await store.get("wire-test", USER, f"byte-{n}") == b"v" * n
        assert all(not connection.is_defunct for connection in connections(store))
    finally:
        await store.close()
