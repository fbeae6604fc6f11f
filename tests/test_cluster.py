"""HiiTrack on a real 3-node Cassandra cluster, behind a real nginx, survives losing a node and a process.

Two `twistd` processes share a keyspace of replication factor 3 at
LOCAL_QUORUM, behind nginx configured from nginx.conf.example's routing
(tests/nginx.py).  Clients send hits as the tracker does: each with an
`insert_id`, retried until answered 200, one visitor's hits in order.  Under
that load one Cassandra node is SIGKILLed and later restarted, and one
HiiTrack process is SIGKILLed and restarted: its visitors' hits are refused
(502) meanwhile and retried, never moved to the other process (the example's
routing, issue 10), and every visitor is answered by one process only.
Reports read during the node outage must be answered, and at the end every
report, read through each process and through nginx, equals the brute-force
model of the hits answered 200: nothing lost, nothing counted twice.

A short run of the sizing benchmark (benchmarks/cluster.py) checks it
counts every event on the cluster.

The cluster is `scripts/cassandra cluster` (127.0.0.1-3, CQL port 9142),
never the shared single node.  The module's fixture starts it when it is not
running and then stops it afterwards; a cluster that was already running is
left running (with every node up).
"""

import base64
import http.client
import json
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from benchmarks.cluster import measure
from tests.model import Model
from tests.nginx import UPSTREAM, Nginx
from tests.processes import FOLDED_WITHIN, ROOT, TwistdServer

pytestmark = [pytest.mark.cassandra, pytest.mark.cluster]

SCRIPT = ROOT / "scripts" / "cassandra"
STORE = "cassandra://127.0.0.1,127.0.0.2,127.0.0.3:9142/hiitrack_cluster_test"
OPTIONS = ["--cassandra-replication", "SimpleStrategy:3", "--cassandra-consistency", "LOCAL_QUORUM"]
KILLED_NODE = "2"

CLIENTS = 6
SLOTS = 4  # visitors a client has going at once, their hits interleaved
HITS_PER_VISITOR = 8  # then the client starts a new visitor: histories stay short for the model
MAX_HITS = 3000  # per client: the load is bounded even if the test never says stop
ATTEMPTS = 400  # per hit, RETRY_DELAY apart: about 40 s, longer than a process restart
RETRY_DELAY = 0.1
PHASE_TIMEOUT = 180

EVENTS = ["Landed", "Viewed", "Signed up", "Paid"]
PLANS = ["free", "pro", "team"]


def _cluster(*command: str) -> None:
    done = subprocess.run([str(SCRIPT), "cluster", *command], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    was_running = subprocess.run([str(SCRIPT), "cluster", "status"], capture_output=True).returncode == 0
    _cluster("start")
    yield
    # A node a failed test left down comes back, or the cluster this fixture started stops.
    _cluster("start" if was_running else "stop")


def _hit(visitor: int, step: int) -> tuple[list[str], list[tuple[str, object]]]:
    """A visitor's step-th hit: one or two events, and sometimes a plan."""
    events = [EVENTS[(visitor + step * 3) % len(EVENTS)]]
    if (visitor + step) % 3 == 0:
        events.append(EVENTS[(visitor + step) % len(EVENTS)])
    properties: list[tuple[str, object]] = []
    if step % 4 == visitor % 4:
        properties.append(("plan", PLANS[(visitor + step) % len(PLANS)]))
    return events, properties


def test_the_sizing_benchmark_runs_on_the_cluster_and_counts_every_event(cluster):
    """benchmarks/cluster.py, whose figures are in docs/cassandra.md, in a short run."""
    sizing = measure(processes=2, seconds=2)
    assert sizing.answered > 0
    # Each request is one event: every one answered 200 is counted, one that failed (503) at most once.
    assert sizing.answered <= sizing.recorded <= sizing.answered + sizing.failed
    assert len(sizing.hiitrack_cores) == 2 and len(sizing.node_cores) == 3
    assert all(cores > 0 for cores in sizing.hiitrack_cores + sizing.node_cores)


class Connection:
    """One keep-alive HTTP connection to nginx, reopened after any failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def request(self, method: str, target: str, body: str | None = None) -> tuple[int, str, bytes]:
        """(status, the process that answered, body); status 0 when the connection failed."""
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.connection is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            self.connection.request(method, target, body=body, headers=headers)
            answer = self.connection.getresponse()
            return answer.status, answer.getheader(UPSTREAM, ""), answer.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            return 0, "", b""


@dataclass
class Load:
    """What the clients sent and what was answered, shared with the test's thread."""

    user: str
    sent: dict[str, list[tuple[list[str], list[tuple[str, object]]]]] = field(default_factory=dict)
    homes: dict[str, set[str]] = field(default_factory=dict)
    """The processes that answered each visitor's hits."""
    answered: list[int] = field(default_factory=lambda: [0] * CLIENTS)
    phase: str = "start"
    phases: list[tuple[str, float]] = field(default_factory=lambda: [("start", time.monotonic())])
    duplicates: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def client(self, number: int, port: int) -> None:
        """Hits of SLOTS visitors at a time, each hit retried until answered 200."""
        connection = Connection(port)
        visitors = list(range(number * 10**6, number * 10**6 + SLOTS))
        steps = [0] * SLOTS
        for hit in range(MAX_HITS):
            if self.stop.is_set():
                return
            slot = hit % SLOTS
            visitor, step = visitors[slot], steps[slot]
            events, properties = _hit(visitor, step)
            name = f"visitor-{visitor}"
            message = base64.b64encode(json.dumps([events, properties]).encode()).decode()
            body = urllib.parse.urlencode({"message": message, "insert_id": f"{name}-{step}"})
            # visitor_id in the query string, where nginx's routing sees it.
            target = f"/{self.user}/site/batch?visitor_id={name}"
            for _ in range(ATTEMPTS):
                status, upstream, answer = connection.request("POST", target, body)
                if status == 200:
                    break
                with self.changed:
                    self.failures[self.phase, status] += 1
                    self.changed.notify_all()
                time.sleep(RETRY_DELAY)
            else:
                self.errors.append(f"{name}'s hit {step} was never answered 200")
                return
            with self.changed:
                self.sent.setdefault(name, []).append((events, properties))
                self.homes.setdefault(name, set()).add(upstream)
                self.duplicates[self.phase] += json.loads(answer).get("duplicate", False)
                self.answered[number] += 1
                self.changed.notify_all()
            steps[slot] += 1
            if steps[slot] == HITS_PER_VISITOR:
                visitors[slot] += SLOTS
                steps[slot] = 0

    def enter(self, phase: str) -> None:
        with self.changed:
            self.phase = phase
            self.phases.append((phase, time.monotonic()))

    def timeline(self) -> str:
        ends = [when for _, when in self.phases[1:]] + [time.monotonic()]
        return ", ".join(f"{phase} {end - when:.0f} s" for (phase, when), end in zip(self.phases, ends, strict=True))

    def wait(self, done: Callable[[], bool], what: str) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: done() or bool(self.errors), PHASE_TIMEOUT), what
        assert not self.errors, self.errors

    def every_client_answers(self, hits: int, what: str) -> None:
        """Wait until each client has `hits` more hits answered: all its visitors were served."""
        with self.changed:
            since = list(self.answered)
        self.wait(lambda: all(n - s >= hits for n, s in zip(self.answered, since, strict=True)), what)

    def model(self) -> Model:
        model = Model()
        for visitor, hits in self.sent.items():
            for events, properties in hits:
                model.batch(visitor, events, properties, 0)
        return model


def _report(url: str, user: str, name: str, split: bool = False) -> tuple[int, Any]:
    where = f"{url}/{user}/site/event/{urllib.parse.quote(name)}" + ("?property=plan" if split else "")
    request = urllib.request.Request(
        where, headers={"Authorization": "Basic " + base64.b64encode(f"{user}:pw-secret".encode()).decode()}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def _differences(got: object, expected: object, where: str = "") -> dict[str, tuple[object, object]]:
    """Where two reports differ: {path: (got, expected)} for every differing leaf."""
    if isinstance(got, dict) and isinstance(expected, dict):
        found: dict[str, tuple[object, object]] = {}
        for key in sorted(got.keys() | expected.keys()):
            found.update(_differences(got.get(key), expected.get(key), f"{where}/{key}"))
        return found
    return {} if got == expected else {where: (got, expected)}


def _counted_twice(report: dict, expected: dict) -> bool:
    """Whether an event's total, overall or of a segment, exceeds the model's: a hit counted twice.

    Totals only grow with hits, so a lost hit can only lower them (uniques and paths need not).
    """
    if "total" in report:
        return report["total"] > expected["total"]
    return any(n > expected["totals"].get(value, 0) for value, n in report["totals"].items())


class NotExact(AssertionError):
    """Some report differs from the model: a hit was lost or counted twice."""


@pytest.mark.timeout(1500)
def test_a_cluster_loses_a_node_and_a_process_under_load_and_counts_every_hit_once(cluster, tmp_path):
    started = time.monotonic()
    servers = [TwistdServer(STORE, tmp_path, OPTIONS).start(timeout=120) for _ in range(2)]
    nginx = Nginx(tmp_path, [server.port for server in servers])
    readers = [nginx.url] + [server.url for server in servers]
    load = Load(f"c{uuid.uuid4().hex[:12]}")
    threads: list[threading.Thread] = []
    try:
        status, _, _ = Connection(nginx.port).request("POST", f"/{load.user}", "password=pw-secret")
        assert status == 201
        threads = [threading.Thread(target=load.client, args=(n, nginx.port)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        load.every_client_answers(2 * SLOTS, "the load did not start")

        load.enter("node down")
        _cluster("kill-node", KILLED_NODE)
        outage_reads = [_report(url, load.user, name)[0] for url in readers for name in EVENTS]
        load.every_client_answers(2 * SLOTS, "hits were not answered with a Cassandra node down")

        load.enter("node and process down")
        servers[0].kill()
        # Its visitors' hits are refused, and retried until it is back.
        refused = load.failures.copy()
        load.wait(lambda: load.failures[load.phase, 502] > refused[load.phase, 502], "no hit was refused")
        load.enter("node down, process restarting")
        servers[0].start(timeout=120)
        load.enter("node down")
        load.every_client_answers(2 * SLOTS, "hits were not answered after the process restarted")

        outage_reads += [_report(url, load.user, name, split=True)[0] for url in readers for name in EVENTS]
        load.enter("node restarting")
        _cluster("start-node", KILLED_NODE)
        load.enter("all up")
        load.every_client_answers(2 * SLOTS, "hits were not answered after the node came back")
        load.stop.set()
        for thread in threads:
            thread.join(timeout=ATTEMPTS * RETRY_DELAY + 60)
        load.enter("checking")
        print(f"\ncluster test: {load.timeline()}")
        print(f"failed attempts by phase and status {dict(load.failures)}, duplicates {dict(load.duplicates)}")
        assert not load.errors, load.errors
        assert outage_reads == [200] * len(outage_reads)
        # 502: nginx, while the killed process's requests fail; 503: the store, while a node is down.
        assert {status for _, status in load.failures} <= {502, 503}, load.failures
        moved = {visitor: homes for visitor, homes in load.homes.items() if len(homes) != 1}
        assert not moved, moved
        assert set().union(*load.homes.values()) == {f"127.0.0.1:{server.port}" for server in servers}

        model = load.model()

        def differing() -> dict:
            wrong = {}
            for url in readers:
                for name in EVENTS:
                    for split in (False, True):
                        status, report = _report(url, load.user, name, split)
                        assert status == 200, (url, name, report)
                        expected = model.event_report(name, "plan" if split else None)
                        assert not _counted_twice(report, expected), (url, name, _differences(report, expected))
                        if report != expected:
                            wrong[url, name, split] = _differences(report, expected)
            return wrong

        # A process sees the others' hits once they fold them into the cells, about every second.
        folded_by = time.monotonic() + FOLDED_WITHIN
        while (wrong := differing()) and time.monotonic() < folded_by:
            pass
        hits = sum(len(hits) for hits in load.sent.values())
        print(f"{hits} hits of {len(load.sent)} visitors, {time.monotonic() - started:.0f} s")
        if wrong:
            print(f"reports differing from the model: {len(wrong)}, cells: {sum(map(len, wrong.values()))}")
            raise NotExact("\n".join(f"{where}: {differences}" for where, differences in wrong.items()))
        # A write in doubt is sent again until it lands: with two replicas of three alive, it does.
        logs = "".join(log.read_text(errors="replace") for log in tmp_path.glob("twistd-*.log"))
        print(
            f"batches timed out once in a batchlog: {logs.count('timed out once in a batchlog')},"
            f" rounds of writes in doubt sent again: {logs.count('in doubt are sent again')}"
        )
        assert "still in doubt" not in logs
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=ATTEMPTS * RETRY_DELAY + 60)
        nginx.stop()
        for server in servers:
            server.stop()
