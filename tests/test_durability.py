"""Nothing acknowledged is lost: SIGKILL a real twistd mid-load, restart, count.

Each request is a batch with event names of its own (`A<i>`, `B<i>`) and a
property value of its own, so after the restart every request can be checked
on its own: a request answered 200 must be counted whole (both events, the
path between them, its segment), and no request may be counted twice.  On
the embedded store a request is one transaction, so an unanswered one is
counted whole or not at all; Cassandra promises only the first two.
"""

import base64
import json
import threading
import urllib.error
import uuid

import pytest

from hiitrack.ids import encode_id, event_id, property_id, value_id
from tests.conftest import store_uri_for
from tests.processes import TwistdServer, call

CLIENTS = 8


class Answered:
    """Requests answered 200, shared by the clients; `reached` fires at a count."""

    def __init__(self, kill_at: int) -> None:
        self.requests: set[int] = set()
        self.kill_at = kill_at
        self.reached = threading.Event()
        self._lock = threading.Lock()

    def add(self, i: int) -> None:
        with self._lock:
            self.requests.add(i)
            if len(self.requests) >= self.kill_at:
                self.reached.set()


def _load(server: TwistdServer, user: str, first: int, answered: Answered, stop: threading.Event) -> None:
    """One client: sequential batches until the server dies or `stop`."""
    i = first
    while not stop.is_set() and i < first + 10_000:
        message = [[f"A{i}", f"B{i}"], [["request", i]]]
        data = {"visitor_id": f"v{i % 13}", "message": base64.b64encode(json.dumps(message).encode()).decode()}
        try:
            status, _ = call(f"{server.url}/{user}/site/batch", data)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return
        if status == 200:
            answered.add(i)
        i += CLIENTS


def _counts(url: str, user: str, i: int) -> tuple[int, ...]:
    """(total A, total B, path B←A, segment total of B) for request i."""
    auth = f"{user}:pw-secret"
    status, a = call(f"{url}/{user}/site/event/A{i}", auth=auth)
    if status == 404:
        a = {"total": 0}
    status, b = call(f"{url}/{user}/site/event/B{i}?property=request", auth=auth)
    if status == 404:
        return a["total"], 0, 0, 0
    segment = encode_id(value_id(property_id("request"), i))
    status, plain = call(f"{url}/{user}/site/event/B{i}", auth=auth)
    return a["total"], plain["total"], plain["path"].get(encode_id(event_id(f"A{i}")), 0), b["totals"].get(segment, 0)


@pytest.mark.parametrize("kill_at", [5, 40, 150])
def test_sigkill_loses_nothing_answered(store_kind, tmp_path, kill_at):
    """Kill points: once `kill_at` requests are answered, with 8 clients in flight."""
    store_uri = store_uri_for(store_kind, tmp_path)
    server = TwistdServer(store_uri, tmp_path).start()
    user = f"d{uuid.uuid4().hex[:12]}"
    try:
        assert call(f"{server.url}/{user}", {"password": "pw-secret"})[0] == 201
        answered = Answered(kill_at)
        stop = threading.Event()
        clients = [threading.Thread(target=_load, args=(server, user, n, answered, stop)) for n in range(CLIENTS)]
        for client in clients:
            client.start()
        assert answered.reached.wait(timeout=120), "the load did not get going"
        server.kill()
        stop.set()
        for client in clients:
            client.join(timeout=60)
        sent = max(answered.requests) + CLIENTS * 2
        print(f"{store_kind}: SIGKILL after {len(answered.requests)} answered requests")
    finally:
        server.kill()

    restarted = TwistdServer(store_uri, tmp_path, writer=server.writer).start()
    try:
        for i in range(sent):
            counts = _counts(restarted.url, user, i)
            if i in answered.requests:
                assert counts == (1, 1, 1, 1), f"request {i} was answered 200 but counted {counts}"
            elif store_kind == "sqlite":
                assert counts in {(0, 0, 0, 0), (1, 1, 1, 1)}, f"request {i} half applied: {counts}"
            else:
                assert max(counts) <= 1, f"request {i} counted twice: {counts}"
    finally:
        restarted.stop()
