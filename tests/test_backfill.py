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
import re
import subprocess
import sys
import time
import uuid
from functools import partial
from pathlib import Path

import pytest_twisted
from twisted.internet.task import Clock

from hiitrack.backfill import Backfills
from hiitrack.store.interface import StoreUnavailable
from tests.funnel_model import BOUNDS, Funnel, model_report
from tests.helpers import vid
from tests.nginx import Nginx
from tests.processes import ROOT, TwistdServer, call, settled

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


def _import(store_uri: str, user: str, hits: list[dict]) -> None:
    """The operator's import of `hits` into the user's bucket `site`."""
    imported = subprocess.run(
        [sys.executable, "-m", "hiitrack.admin", "import", "--store", store_uri, f"{user}/site", "-"],
        input="".join(json.dumps(hit) + "\n" for hit in hits),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert imported.returncode == 0, imported.stderr


def _histories_of(hits: list[dict]) -> tuple[dict[str, list[tuple[int, str]]], dict[str, set[str]]]:
    """Each visitor's events in time order, and the values it holds: what the model reads."""
    events: dict[str, list[tuple[int, str]]] = {}
    values: dict[str, set[str]] = {}
    for hit in sorted(hits, key=lambda hit: hit["time"]):
        events.setdefault(hit["visitor_id"], []).extend((hit["time"] * 1000, name) for name in hit["events"])
        values.setdefault(hit["visitor_id"], set()).update(hit.get("properties", {}).values())
    return events, values


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
    _import(store_uri, user, hits)

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

    restarted = TwistdServer(store_uri, tmp_path, lease, writer=server.writer).start()
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

    events, values = _histories_of(hits)
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


def _backfilled_here(log: Path) -> int:
    """Visitors a process counted for another's sweep, from its access log."""
    answered = re.compile(r'"POST /[^ ]+/site/funnel/f/backfill HTTP/1\.[01]" 200 ')
    return sum(bool(answered.search(line)) for line in log.read_text(errors="replace").splitlines())


def test_behind_nginx_each_visitor_is_backfilled_by_the_process_that_serves_it(tmp_path):
    """Two processes behind nginx, hits to both while one sweeps: exact, each visitor counted where it is served.

    The bucket already has a saved funnel, so both processes hold their
    visitors' funnel states in cache.  Were the sweeping process to count
    the other's visitors itself, the other would go on from its cached
    states, without the new funnel, and count those visitors again.
    """
    store_uri = f"sqlite:{tmp_path}/hiitrack.db"
    user = f"n{uuid.uuid4().hex[:12]}"
    auth = f"{user}:{PASSWORD}"
    hits = _histories()[:4000]
    servers = [TwistdServer(store_uri, tmp_path, ["--backfill-lease", "30"]) for _ in range(2)]
    nginx = Nginx(tmp_path, [server.port for server in servers])
    for server in servers:
        server.options += ["--backfill-through", nginx.url]
    earlier = Funnel((("b",), ("c",)), "sequential", 3600)
    try:
        servers[0].start()
        assert call(f"{servers[0].url}/{user}", {"password": PASSWORD})[0] == 201
        _import(store_uri, user, hits)
        servers[1].start()
        active = sorted({hit["visitor_id"] for hit in hits})[:120]
        later = BASE + 2 * 86400
        sent: list[dict] = []

        def load(rounds: int) -> None:
            """Hits of the active visitors through nginx, each process serving its own."""
            for _ in range(rounds):
                for visitor in active:
                    when = later + len(sent)
                    event = "abcx"[len(sent) % 4]
                    status, answer = call(f"{nginx.url}/{user}/site/event/{event}?visitor_id={visitor}", {"time": when})
                    assert status == 200, answer
                    sent.append({"visitor_id": visitor, "time": when, "events": [event]})

        def save(name: str, definition: list[tuple[str, str]]) -> str:
            url = f"{servers[0].url}/{user}/site/funnel/{name}"
            status, answer = call(url, definition, auth=auth)  # type: ignore[arg-type]
            assert status == 201, answer
            return url

        def done(url: str) -> dict:
            return _wait_for(
                lambda: (found := call(url, auth=auth)[1]["conversion"])["backfill"]["state"] == "done" and found,
                "the backfill",
            )

        def knows_f(probe: int) -> bool:
            """Whether the process that did not save f counts in it: a new visitor there reaches its step 1."""
            visitor, when = f"probe{probe}", later + len(sent)
            assert call(f"{servers[1].url}/{user}/site/event/a?visitor_id={visitor}", {"time": when})[0] == 200
            sent.append({"visitor_id": visitor, "time": when, "events": ["a"]})
            reached = call(f"{report_url}/visitors?step=1&status=reached&limit=1000", auth=auth)[1]["visitors"]
            return visitor in reached

        done(save("g", [("event", "b"), ("event", "c"), ("window", "3600")]))
        load(1)  # Each process now holds its visitors' states (in g) in cache.
        report_url = save(
            "f",
            [
                ("event", "a"),
                ("event", "b"),
                ("event", "c"),
                ("exclude", "x"),
                ("window", "3600"),
                ("property", "plan"),
            ],
        )
        load(1)
        swept = done(report_url)["backfill"]["visitors"]
        probes = iter(range(1000))
        _wait_for(lambda: knows_f(next(probes)), "the other process to read the new funnel")
        load(3)
        events, values = _histories_of(hits + sent)
        expected = model_report(FUNNEL, events, values)
        expected_f = {
            "visitors": expected.visitors,
            "by_value": {vid("plan", plan): expected.by_value.get(plan, [0, 0, 0]) for plan in ("free", "pro", "team")},
        }
        expected_g = {"visitors": model_report(earlier, events, {}).visitors, "by_value": {}}

        def conversion(server: TwistdServer, name: str) -> dict:
            found = call(f"{server.url}/{user}/site/funnel/{name}", auth=auth)[1]["conversion"]
            return {"visitors": found["visitors"], "by_value": found.get("by_value", {})}

        # Each process reads the other's hits once that one folded them (about every second).
        answers = {
            name: [settled(partial(conversion, server, name), wanted) for server in servers]
            for name, wanted in (("f", expected_f), ("g", expected_g))
        }
    finally:
        for server in servers:
            server.stop()
        nginx.stop()
    assert swept >= len({hit["visitor_id"] for hit in hits})
    counted_by = [_backfilled_here(tmp_path / f"twistd-{server.port}.log") for server in servers]
    assert all(counted_by) and sum(counted_by) == swept, counted_by
    assert answers == {"f": [expected_f] * 2, "g": [expected_g] * 2}


def test_only_the_installations_processes_may_have_a_visitor_backfilled(tmp_path):
    store_uri = f"sqlite:{tmp_path}/hiitrack.db"
    user = f"s{uuid.uuid4().hex[:12]}"
    server = TwistdServer(store_uri, tmp_path).start()
    try:
        assert call(f"{server.url}/{user}", {"password": PASSWORD})[0] == 201
        _hit(server, user, "v1", "a", BASE, [])
        auth = f"{user}:{PASSWORD}"
        status, answer = call(f"{server.url}/{user}/site/funnel/f", [("event", "a"), ("event", "b")], auth=auth)  # type: ignore[arg-type]
        assert status == 201, answer
        forged = f"{server.url}/{user}/site/funnel/f/backfill?visitor_id=v1&version=00"
        status, answer = call(forged, {}, headers={"X-HiiTrack-Signature": "0" * 64})
        assert status == 401 and "error" in answer
    finally:
        server.stop()
