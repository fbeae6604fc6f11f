"""The Cassandra node goes down mid-run and comes back.

Stops the real node of scripts/cassandra while a server is tracking events,
checks that tracking answers 503 quickly and the server keeps answering,
starts the node again and checks that the server serves again on its own and
that every event answered 200 is counted.  While the node is down no other
Cassandra test can run, so the test is marked `outage` (run it alone or
last) and always starts the node again.
"""

import os
import time
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.internet.utils import getProcessOutputAndValue

from hiitrack.store.cassandra import REQUEST_TIMEOUT
from tests.helpers import auth_of, new_user, path

pytestmark = pytest.mark.cassandra

SCRIPT = Path(__file__).parent.parent / "scripts" / "cassandra"
BACK_WITHIN = 90.0
"""Seconds the server may take to serve again once the node answers CQL."""


async def node(command: str) -> None:
    out, err, code = await getProcessOutputAndValue(str(SCRIPT), [command], env=os.environ)
    assert code == 0, (command, out, err)


@pytest.mark.outage
@pytest.mark.parametrize("store_kind", ["cassandra"])
@pytest_twisted.ensureDeferred
async def test_node_outage_answers_503_and_recovers(server, user_name):
    client = server.client
    await new_user(client, user_name)
    answered: dict[int, int] = {}

    async def track(visitor: str) -> tuple[int, float]:
        started = time.monotonic()
        answer = await client.post(path(user_name, "site", "event", "A"), {"visitor_id": visitor})
        answered[answer.status] = answered.get(answer.status, 0) + 1
        return answer.status, time.monotonic() - started

    for i in range(10):
        assert (await track(f"before{i}"))[0] == 200

    try:
        await node("stop")
        latencies = []
        for i in range(10):
            status, seconds = await track(f"during{i % 3}")
            assert status == 503
            latencies.append(seconds)
        print(f"503 latencies while the node is down: max {max(latencies):.3f}s, all {latencies}")
        assert max(latencies) < REQUEST_TIMEOUT + 1
        report = await client.get(path(user_name, "site", "event", "A"), auth=auth_of(user_name))
        assert report.status == 503, report.body
        assert "error" in report.json
    finally:
        await node("start")

    started = time.monotonic()
    while (await track("after"))[0] != 200:
        assert time.monotonic() - started < BACK_WITHIN, answered
        await task.deferLater(reactor, 0.5, lambda: None)
    print(f"serving again {time.monotonic() - started:.1f}s after the node answered CQL")
    for i in range(10):
        assert (await track(f"after{i}"))[0] == 200

    report = await client.get(path(user_name, "site", "event", "A"), auth=auth_of(user_name))
    assert report.status == 200, report.body
    # Everything answered 200 is counted; a 503 is counted only if a write
    # timed out after being applied, which a node that is simply down never does.
    assert answered[200] == 21
    assert report.json["total"] == answered[200], answered
