"""Two `twistd` processes share one Cassandra keyspace, visitor-sticky.

Each visitor always reaches the same process (as nginx.conf.example routes
them), the processes run at the same time, and at the end both answer the
same reports, equal to the brute-force model: counters add up across
processes (each sees the other's hits once that one folded them).
"""

import base64
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
import zlib

import pytest

from tests.conftest import CASSANDRA_URI
from tests.model import Model
from tests.processes import TwistdServer, settled

pytestmark = pytest.mark.cassandra

VISITORS = 24
EVENTS = ["Landed", "Signed up", "Paid"]


def _call(url: str, data: dict | None = None, auth: str | None = None, status: int = 200) -> dict:
    """The JSON answer, checked to come with `status` (urlopen raises on errors)."""
    request = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode() if data else None)
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == status, (url, answer.status)
        return json.loads(answer.read())


def _actions(v: int) -> list[tuple[str, str]]:
    """A visitor's hits: events, and a plan before the third one."""
    names = [EVENTS[(v + i) % 3] for i in range(6 + v % 5)]
    return (
        [("event", name) for name in names[:2]]
        + [("plan", "pro" if v % 2 else "free")]
        + [("event", name) for name in names[2:]]
    )


def test_two_processes_on_one_keyspace_add_up(tmp_path):
    servers = [TwistdServer(CASSANDRA_URI, tmp_path).start() for _ in range(2)]
    user = f"s{uuid.uuid4().hex[:12]}"
    try:
        _call(f"{servers[0].url}/{user}", {"password": "pw-secret"}, status=201)
        model = Model()
        errors: list[BaseException] = []

        def visitor(v: int) -> None:
            vid = f"visitor-{v}"
            # Sticky: the visitor's process is a hash of its id, as nginx's `hash`.
            server = servers[zlib.crc32(vid.encode()) % 2]
            try:
                for kind, name in _actions(v):
                    if kind == "event":
                        _call(f"{server.url}/{user}/site/event/{urllib.parse.quote(name)}", {"visitor_id": vid})
                    else:
                        value = base64.b64encode(json.dumps(name).encode()).decode()
                        _call(f"{server.url}/{user}/site/property/plan", {"visitor_id": vid, "value": value})
            except BaseException as error:  # reported below, in the test's thread
                errors.append(error)

        for v in range(VISITORS):
            for kind, name in _actions(v):
                if kind == "event":
                    model.event(f"visitor-{v}", name, 0)
                else:
                    model.property(f"visitor-{v}", "plan", name)
        threads = [threading.Thread(target=visitor, args=(v,)) for v in range(VISITORS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert not errors, errors
        assert {zlib.crc32(f"visitor-{v}".encode()) % 2 for v in range(VISITORS)} == {0, 1}

        # Each process sees the other's hits once that one folded them (about every second).
        for server in servers:
            for name in EVENTS:
                where = f"{server.url}/{user}/site/event/{urllib.parse.quote(name)}"
                for url, expected in [
                    (where, model.event_report(name)),
                    (where + "?property=plan", model.event_report(name, "plan")),
                ]:
                    assert settled(lambda url=url: _call(url, auth=f"{user}:pw-secret"), expected) == expected
    finally:
        for server in servers:
            server.stop()
