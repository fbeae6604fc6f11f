"""Fixtures shared by the whole suite.

Every store-backed fixture is parametrized over both backends, so each HTTP
and property-based test runs on SQLite and on a real Cassandra node (started
by scripts/cassandra; the suite fails, never skips, when it is not up).
Tests isolate themselves by using fresh user names (`user_name`), so one
Cassandra keyspace serves the whole session.  The Cassandra runs carry the
`cassandra` marker (so do the Cassandra-only test files), so that
`scripts/test -m "not cassandra"` runs the SQLite half without the node.
"""

import os
import uuid

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint

from hiitrack.app import HiiTrack
from hiitrack.native import stale_refusal
from hiitrack.sending import listening_reactor
from hiitrack.store import open_store
from hiitrack.web.site import make_site
from tests.http import Client

CASSANDRA = os.environ.get("HIITRACK_TEST_CASSANDRA", "127.0.0.1:9042")
# A checkout of its own may need a keyspace of its own: a keyspace at a newer
# schema version than this code knows is refused, as it would be in production.
KEYSPACE = os.environ.get("HIITRACK_TEST_KEYSPACE", "hiitrack_test")
CASSANDRA_URI = f"cassandra://{CASSANDRA}/{KEYSPACE}"
STORES = ["sqlite", pytest.param("cassandra", marks=pytest.mark.cassandra)]


class Clock:
    """The server's clock in tests: real time unless a test sets it."""

    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float:
        import time

        return time.time() if self.now is None else self.now


def store_uri_for(kind: str, tmp_path: object) -> str:
    return f"sqlite:{tmp_path}/hiitrack.db" if kind == "sqlite" else CASSANDRA_URI


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(store_kind: str, tmp_path: object):
    """An opened store of each kind; closed after the test."""
    opened = open_store(store_uri_for(store_kind, tmp_path))
    try:
        pytest_twisted.blockon(defer.ensureDeferred(opened.open()))
    except Exception as error:
        pytest.fail(
            f"the {store_kind} store did not open ({error!r}); for Cassandra run `scripts/cassandra start` first",
            pytrace=False,
        )
    yield opened
    pytest_twisted.blockon(defer.ensureDeferred(opened.close()))


@pytest.fixture
def user_name() -> str:
    return f"u{uuid.uuid4().hex[:16]}"


class Server:
    """A HiiTrack app listening on a loopback port, with a client for it."""

    def __init__(self, app: HiiTrack, clock: Clock, port: object) -> None:
        self.app = app
        self.clock = clock
        self.port = port
        self.url = f"http://127.0.0.1:{port.getHost().port}"
        self.client = Client(self.url)


@pytest.fixture
def server(store):
    clock = Clock()
    app = HiiTrack(store, clock=clock)
    pytest_twisted.blockon(defer.ensureDeferred(app.accounts.start()))
    # As twistd listens (hiitrack.tap): answers sent at once (hiitrack.sending).
    endpoint = TCP4ServerEndpoint(listening_reactor(reactor), 0, interface="127.0.0.1")
    port = pytest_twisted.blockon(endpoint.listen(make_site(app)))
    running = Server(app, clock, port)
    yield running
    pytest_twisted.blockon(defer.ensureDeferred(app.backfills.stop()))
    pytest_twisted.blockon(defer.ensureDeferred(running.client.close()))
    pytest_twisted.blockon(port.stopListening())


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test compiled modules older than their source: the edit would not be tested."""
    if refusal := stale_refusal():
        pytest.exit(refusal, returncode=2)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that stop the shared Cassandra node run after all the others."""
    items.sort(key=lambda item: item.get_closest_marker("outage") is not None)
