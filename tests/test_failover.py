"""A visitor that another process served meanwhile: the first process's cache must not be trusted.

Issue 10, item 8: nginx moved a visitor to a second process and back, and the
first process counted the visitor's later hits from its cached, stale state.
Here two apps share one store (as two processes share a keyspace); the
visitor goes to A, then B, then back to A after A's cache bound
(``--visitor-cache-seconds``, 60 by default), and every report equals the
model.  Both stores.  tests/test_nginx.py shows the routing that keeps a
visitor on one process in the first place.
"""

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint

from hiitrack.app import HiiTrack
from hiitrack.web.site import make_site
from tests.conftest import Clock, Server
from tests.helpers import auth_of, new_user, path, track
from tests.model import Model

T0 = 1_700_000_000


@pytest.fixture
def two_processes(store):
    """Two apps on one store, with one clock, each behind its own port."""
    clock = Clock()
    clock.now = T0
    running = []
    for _ in range(2):
        app = HiiTrack(store, clock=clock)
        pytest_twisted.blockon(defer.ensureDeferred(app.accounts.start()))
        port = pytest_twisted.blockon(TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(make_site(app)))
        running.append(Server(app, clock, port))
    yield running
    for server in running:
        pytest_twisted.blockon(defer.ensureDeferred(server.client.close()))
        pytest_twisted.blockon(server.port.stopListening())


@pytest_twisted.ensureDeferred
async def test_a_visitor_back_from_another_process_is_read_again(two_processes, user_name):
    first, second = two_processes
    await new_user(first.client, user_name)
    model = Model()
    for server, events in [(first, ["Pre"]), (second, ["Pre", "Mid"])]:
        await track(server.client, user_name, "b", "v", *events)
        for name in events:
            model.event("v", name, T0)
    first.clock.now = T0 + 61
    await track(first.client, user_name, "b", "v", "Post", "Pre")
    for name in ["Post", "Pre"]:
        model.event("v", name, T0 + 61)
    for server in two_processes:
        for name in ["Pre", "Mid", "Post"]:
            answer = await server.client.get(path(user_name, "b", "event", name), auth=auth_of(user_name))
            assert answer.json == model.event_report(name)
