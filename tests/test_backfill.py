"""The backfill survives SIGKILL: a real twistd killed mid-backfill, restarted, exact when done.

Thousands of visitors' histories are imported into an embedded store, a
funnel (with an exclusion and a property) is saved into the bucket, and
hits of old and new visitors arrive while the backfill runs.  The server is
killed once the backfill has recorded progress, and started again with a
short lease, so that it takes its own backfill over.  When the backfill says
done, the report equals the brute-force model of every history: no visitor
missed, none counted twice.  A backfill's write is one transaction here;
on Cassandra a SIGKILL between a write's records and its counters loses
those counters, as it does for a live hit (docs/api.md, "Backfill").
The rounds that look for backfills to take over go on after a store failure.
The in-process cases (before, among and after hits; erase) are in
tests/test_exact_funnels.py.
"""

import json
import os
import random
import subprocess
import sys
import time
import uuid

import pytest_twisted
from twisted.internet.task import Clock

from hiitrack.backfill import Backfills
from hiitrack.store.interface import StoreUnavailable
from tests.funnel_model import BOUNDS, Funnel, model_report
from tests.helpers import vid
from tests.processes import ROOT, TwistdServer, call

PASSWORD = "pw-secret"
FUNNEL = Funnel((("a",), ("b",), ("c",)), "sequential", 3600, ("x",))
VISITORS = 3000
BASE = int(time.time()) - 3 * 86400


def _histories() -> list[dict]:
    """Every visitor's hits, as import lines: a few events each, some with a plan."""
    rng = random.Random(12)
    lines = []
    for number in range(VISITORS):
        now = BASE + rng.randint(0, 86400)
        for _ in range(rng.randint(1, 6)):
            now += rng.choice([1, 30, 600, 4000])
            hit: dict = {"visitor_id": f"v{number:04d}", "time": now, "events": [rng.choice("aabbcx")]}
            if rng.random() < 0.1:
                hit["properties"] = {"plan": rng.choice(["free", "pro", "team"])}
            lines.append(hit)
    return lines


def _wait_for(condition, what: str, timeout: float = 120.0):
    """Poll another process's answers until `condition` gives something true (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _hit(server: TwistdServer, user: str, visitor: str, event: str, when: int, sent: list[dict]) -> None:
    status, answer = call(f"{server.url}/{user}/site/event/{event}", {"visitor_id": visitor, "time": when})
    assert status == 200, answer
    sent.append({"visitor_id": visitor, "time": when, "events": [event]})


@pytest_twisted.ensureDeferred
async def test_claiming_goes_on_after_the_store_failed():
    """A round of looking for backfills to take over that meets a store down does not end the rounds."""

    class StoreDownOnce:
        scans = 0

        async def scan(self, scope: str, kind: object) -> dict:
            self.scans += 1
            if self.scans == 1:
                raise StoreUnavailable("down for a moment")
            return {}

    store, clock = StoreDownOnce(), Clock()
    backfills = Backfills(store, None, clock.seconds, lease_seconds=3, scheduler=clock)  # type: ignore[arg-type]
    backfills.start()
    clock.advance(1)
    clock.advance(1)
    assert store.scans == 3
    await backfills.stop()


def test_a_backfill_killed_midway_resumes_and_is_exact(tmp_path):
    store_uri = f"sqlite:{tmp_path}/hiitrack.db"
    user = f"b{uuid.uuid4().hex[:12]}"
    hits = _histories()
    lease = ["--backfill-lease", "1"]
    server = TwistdServer(store_uri, tmp_path, lease).start()
    try:
        assert call(f"{server.url}/{user}", {"password": PASSWORD})[0] == 201
    finally:
        server.stop()
    imported = subprocess.run(
        [sys.executable, "-m", "hiitrack.admin", "import", "--store", store_uri, f"{user}/site", "-"],
        input="".join(json.dumps(hit) + "\n" for hit in hits),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert imported.returncode == 0, imported.stderr

    report_url = f"/{user}/site/funnel/f"
    auth = f"{user}:{PASSWORD}"

    def backfill(url: str) -> dict:
        status, answer = call(url + report_url, auth=auth)
        assert status == 200, answer
        return answer["conversion"]["backfill"]

    server = TwistdServer(store_uri, tmp_path, lease).start()
    try:
        definition = [("event", "a"), ("event", "b"), ("event", "c"), ("exclude", "x")]
        definition += [("window", "3600"), ("property", "plan")]
        status, answer = call(server.url + report_url, definition, auth=auth)  # type: ignore[arg-type]
        assert status == 201, answer
        # Old visitors and new ones, while the sweep runs, a day after the imported hits.
        later = BASE + 2 * 86400
        for number in range(0, 40):
            _hit(server, user, f"v{number * 7:04d}", "abc"[number % 3], later + number, hits)
            _hit(server, user, f"new{number}", "abc"[number % 3], later + number, hits)
        progress = _wait_for(lambda: (found := backfill(server.url))["visitors"] >= 200 and found, "progress")
        assert progress["state"] == "running", "the backfill ended before the kill: it has too little to do"
    finally:
        server.kill()

    restarted = TwistdServer(store_uri, tmp_path, lease).start()
    try:
        done = _wait_for(lambda: (found := backfill(restarted.url))["state"] == "done" and found, "the backfill")
        assert done["visitors"] >= VISITORS
        for number in range(40, 60):
            _hit(restarted, user, f"v{number:04d}", "c", BASE + 2 * 86400 + 100 + number, hits)
        status, answer = call(restarted.url + report_url, auth=auth)
        assert status == 200, answer
        conversion = answer["conversion"]
    finally:
        restarted.stop()

    events: dict[str, list[tuple[int, str]]] = {}
    values: dict[str, set[str]] = {}
    for hit in sorted(hits, key=lambda hit: hit["time"]):
        events.setdefault(hit["visitor_id"], []).extend((hit["time"] * 1000, name) for name in hit["events"])
        values.setdefault(hit["visitor_id"], set()).update(hit.get("properties", {}).values())
    expected = model_report(FUNNEL, events, values)
    assert conversion["visitors"] == expected.visitors
    for step in (2, 3):
        assert conversion["time_to_convert"][step - 1] == {
            "buckets": [[bound, n] for bound, n in zip(BOUNDS, expected.time_to_convert[step - 1], strict=True)],
            "median": expected.medians[step - 1],
        }
    assert conversion["by_value"] == {
        vid("plan", plan): expected.by_value.get(plan, [0, 0, 0]) for plan in ("free", "pro", "team")
    }
