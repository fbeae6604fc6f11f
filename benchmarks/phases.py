"""The benchmark's runs: the floor, ingest on each store, scale-out, the funnel and memory.

Each run starts its own servers (benchmarks/servers.py), drives them with wrk
(benchmarks/wrk.py), reads the totals back (benchmarks/client.py) and writes
its figures and exact-count checks into the report (benchmarks/report.py).
Tests: tests/test_bench_smoke.py.
"""

import argparse
import itertools
import secrets
import shutil
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.client import (
    basic,
    commits,
    create_user,
    funnel_path,
    http,
    recorded,
    recorded_once_folded,
    seen_elsewhere,
)
from benchmarks.light_load import light_load
from benchmarks.node_latency import node_minutes
from benchmarks.report import TARGETS, Report
from benchmarks.servers import (
    NODE_PID,
    Server,
    cpu_seconds,
    drop_keyspaces,
    start_floor,
    start_hiitrack,
    start_nginx,
)
from benchmarks.workload import BATCH_EVENTS, PLANS
from benchmarks.wrk import CONNECTIONS, Load, combined, run_wrk
from hiitrack.store.write_behind import FOLD_SECONDS

__all__ = ["LOAD_EVENTS", "Bench"]

# Loading the funnel's data is not measured: larger messages, more connections.
LOAD_EVENTS = 10
LOAD_CONNECTIONS = 64
PAIRED_ROUNDS = 2
"""Rounds of one floor run and one store run behind each ingest figure, the floor first in the
first round and the store first in the next (ABBA), so that a drift of the machine's speed over
the figure's minute weighs on both alike; the ratio is the store's mean requests/s over the
floor's.  This machine's floor moved by half within a minute (docs/performance.md): a floor
measured minutes before its store's runs put that into every ratio.  Each round also runs the
lean floor between the two (benchmarks/floor.py: without Twisted's form parsing, which
HiiTrack turns off), for a second ratio; the targets are over issue 14's floor."""
SPEED_ORDER = (0, 1, 1, 0)
"""The funnel's reads, smaller store first, then the larger twice, then the smaller again (ABBA),
at each number of connections: a drift of the machine's speed over those minutes weighs on both
sizes alike, where a size read minutes after the other put the drift into the speed ratio."""
QUIET_WINDOW = 0.5
QUIET_SHARE = 0.1
"""Of a core: below it, over `QUIET_WINDOW` seconds, the server and the node are quiet."""
QUIET_LIMIT = 10.0
"""Seconds waited at most for quiet: a node still compacting does not hold the run up longer."""
USER = "bench"
"""The user whose buckets every phase writes to."""
WARM_UP_ROUND = 30.0
"""Seconds of each wrk run of the node's warm-up, events and batches in turn."""


class Bench:
    """The runs of one benchmark, each writing its figures and failed checks into `report`."""

    def __init__(self, args: argparse.Namespace, work: Path, report: Report) -> None:
        self.args = args
        self.work = work
        self.report = report
        self.keyspaces: list[str] = []
        self.seed = 0

    def next_seed(self) -> int:
        self.seed += 1
        return self.seed

    def quiet(self, pids: list[int]) -> None:
        """Wait until the processes `pids` use under `QUIET_SHARE` of a core over half a second, at
        most `QUIET_LIMIT` seconds: the work a run leaves behind (a last fold, the node's flushes)
        then falls on neither the floor's run after it nor the store's."""
        deadline = time.monotonic() + QUIET_LIMIT
        while time.monotonic() < deadline:
            before = sum(cpu_seconds(pid) for pid in pids)
            time.sleep(QUIET_WINDOW)
            if sum(cpu_seconds(pid) for pid in pids) - before < QUIET_SHARE * QUIET_WINDOW:
                return

    def store_uri(self, kind: str, name: str) -> str:
        if kind == "sqlite":
            return f"sqlite:{self.work / name}.db"
        keyspace = f"bench_{secrets.token_hex(4)}"
        self.keyspaces.append(keyspace)
        return f"cassandra://127.0.0.1/{keyspace}"

    def warm_node(self) -> None:
        """Load the Cassandra node before it is measured, `--node-warmup` seconds of event and batch
        hits through a HiiTrack of its own.  A node minutes old still runs its JIT's first code:
        its own logged batch is several times slower at the tail (benchmarks/node_latency.py), as a
        production node that has run for days never is."""
        seconds = self.args.node_warmup
        if seconds <= 0:
            return
        age = node_minutes()
        print(f"warming the cassandra node: {seconds:.0f} s of load", flush=True)
        store = self.store_uri("cassandra", "warm-up")
        server = start_hiitrack(self.work, store, "warm-up")
        try:
            create_user(server.port, "warm")
            deadline = time.monotonic() + seconds
            modes = itertools.cycle(("event", "batch"))
            while (left := deadline - time.monotonic()) > 1:
                run_wrk(
                    self.work,
                    server.port,
                    mode=next(modes),
                    prefix="/warm/up",
                    visitors=1000,
                    seconds=min(left, WARM_UP_ROUND),
                    seed=0,
                )
        finally:
            server.stop()
            # Its data would otherwise be flushed and compacted during the runs measured.
            keyspace = store.rpartition("/")[2]
            self.keyspaces.remove(keyspace)
            drop_keyspaces([keyspace])
        started = "" if age is None else f", the node up {age:.0f} minutes before"
        self.report.row(
            "cassandra node, before its runs", f"warmed with {seconds:.0f} s of event and batch load{started}"
        )

    def ingest(self, kind: str) -> dict[str, float]:
        """Each mode and visitor count on the store, in turn with the bare floor (`PAIRED_ROUNDS`);
        the floor's mean requests/s of each mode, for the scale-out's ratio."""
        print(f"ingest on {kind}, in turn with the bare floor (twisted.web, parsing only)", flush=True)
        floor, lean = start_floor(self.work), start_floor(self.work, lean=True)
        try:
            server = start_hiitrack(self.work, self.store_uri(kind, f"ingest-{kind}"), f"ingest-{kind}")
            try:
                create_user(server.port, USER)
                busy = [server.process.pid] + ([int(NODE_PID.read_text())] if kind == "cassandra" else [])
                targets = {"floor": (floor.port, "/floor/b"), "lean floor": (lean.port, "/floor/b")}
                floors = {
                    mode: statistics.fmean(
                        self.ingest_figure(kind, targets, server.port, busy, mode, per_request, visitors)
                        for visitors in self.args.visitor_counts
                    )
                    for mode, per_request in (("event", 1), ("batch", BATCH_EVENTS))
                }
                self.light_load(kind, server.port, USER)
            finally:
                server.stop()
        finally:
            floor.stop()
            lean.stop()
        return floors

    def ingest_figure(
        self,
        kind: str,
        floors: dict[str, tuple[int, str]],
        port: int,
        busy: list[int],
        mode: str,
        per_request: int,
        visitors: int,
    ) -> float:
        """One ingest row: the runs of the store on `port` against the floor's and the lean
        floor's (`floors`: port and path prefix), taken in turn while the processes `busy` are
        quiet, and checked exact; the floor's mean requests/s."""
        user, bucket = USER, f"{mode}{visitors}"
        label = f"{kind} {mode} {visitors:,} visitors"
        commits_before, batches_before, _ = commits(port)
        targets = {**floors, "store": (port, f"/{user}/{bucket}")}
        runs = self.in_turn(targets, busy, mode, visitors)
        commits_after, batches_after, _ = commits(port)
        rates = {name: statistics.fmean(load.rate for which, load in runs if which == name) for name in targets}
        for which, load in runs:
            if which != "store" and (load.bad or load.ok == 0):
                self.report.failures.append(f"{which}, {label}: {load.bad} errors, {load.ok} answers")
        on_store = [load for which, load in runs if which == "store"]
        self.report.check(label, combined(on_store), per_request, recorded(port, user, bucket))
        grouped = (batches_after - batches_before) / max(1.0, commits_after - commits_before)
        floor_rate, lean_rate, store_rate = rates["floor"], rates["lean floor"], rates["store"]
        ratio = store_rate / floor_rate if floor_rate else 0.0
        lean_ratio = store_rate / lean_rate if lean_rate else 0.0
        target = TARGETS.get(f"{kind} {mode}")
        in_turn = ", ".join(f"{which} {load.rate:,.0f}" for which, load in runs)
        self.report.row(
            f"{label}: requests/s (events/s) ÷ floor",
            f"{store_rate:,.0f} ({store_rate * per_request:,.0f}) ÷ {floor_rate:,.0f} = {ratio:.2f}"
            f" (÷ the lean floor's {lean_rate:,.0f} = {lean_ratio:.2f})"
            f"; {grouped:.1f} requests/commit; runs in turn: {in_turn}",
            "" if target is None else f"≥ {target}",
            None if target is None else ratio >= target,
        )
        return floor_rate

    def in_turn(
        self, targets: dict[str, tuple[int, str]], busy: list[int], mode: str, visitors: int
    ) -> list[tuple[str, Load]]:
        """`PAIRED_ROUNDS` rounds of a run on each of `targets` (port, path prefix), in their order
        in the first round and the other way round in the next (ABBA), each once the processes
        `busy` are quiet: which ran, and its load."""
        runs = []
        for round_ in range(PAIRED_ROUNDS):
            for which in list(targets) if round_ % 2 == 0 else reversed(targets):
                self.quiet(busy)
                port, prefix = targets[which]
                load = run_wrk(
                    self.work,
                    port,
                    mode=mode,
                    prefix=prefix,
                    visitors=visitors,
                    seconds=self.args.duration,
                    seed=self.next_seed(),
                )
                runs.append((which, load))
        return runs

    def light_load(self, kind: str, port: int, user: str) -> None:
        """A hit's latency when it is alone (benchmarks/light_load.py)."""
        hits = self.args.light_hits
        latencies, kinds = light_load(port, f"/{user}/light", hits)
        total = recorded(port, user, "light")
        if total != hits:
            self.report.failures.append(f"{kind} light load: {total} events counted of {hits} answered 200")
        cuts = statistics.quantiles(latencies, n=100)
        self.report.row(
            f"{kind} light load, one hit at a time ({hits:,} hits, 1 in 10 of a visitor with a large state): p50 / p99",
            f"{cuts[49] * 1000:.1f} / {cuts[98] * 1000:.1f} ms",
            f"p99 ≤ {TARGETS['light_p99_ms']:.0f} ms",
            cuts[98] * 1000 <= TARGETS["light_p99_ms"],
        )
        # A visitor's first hit reads its state from the store, not the cache ("large" had its first before).
        first = [took for took, its in zip(latencies, kinds, strict=True) if its == "first"]
        if len(first) >= 2:
            first_cuts = statistics.quantiles(first, n=10)
            self.report.row(
                f"{kind} light load, of which the first hits of {len(first)} new visitors: p50 / p90",
                f"{first_cuts[4] * 1000:.1f} / {first_cuts[8] * 1000:.1f} ms",
            )

    def restart(self, kind: str) -> None:
        """SIGKILL the server halfway through an event load and start it again: every hit answered
        200 must be counted, and at most one more per connection (the hits in flight when it
        died); the restart (Cassandra folds the killed process's journal before it listens) is
        timed against the first, clean start."""
        store = self.store_uri(kind, f"restart-{kind}")
        # The same writer name, so that the restarted process folds the killed one's journal.
        options = ["--cassandra-writer", "bench-restart"]
        started = time.monotonic()
        server = start_hiitrack(self.work, store, f"restart-{kind}", options)
        clean = time.monotonic() - started
        user, bucket = USER, "restart"
        try:
            create_user(server.port, user)
            killer = threading.Timer(self.args.duration / 2, server.process.kill)
            killer.start()
            load = run_wrk(
                self.work,
                server.port,
                mode="event",
                prefix=f"/{user}/{bucket}",
                seconds=self.args.duration,
                seed=self.next_seed(),
                cap=5.0,
            )
            killer.join()
        finally:
            server.stop()
        started = time.monotonic()
        again = start_hiitrack(self.work, store, f"restart-{kind}-again", options)
        took = time.monotonic() - started
        try:
            total = recorded(again.port, user, bucket)
        finally:
            again.stop()
        label = f"{kind} SIGKILL halfway through {self.args.duration:.0f} s of event load, then a restart"
        exact = load.ok <= total <= load.ok + CONNECTIONS
        if not exact:
            self.report.failures.append(f"{label}: {total} counted, {load.ok} answered 200")
        self.report.row(
            f"{label}: counted / answered 200; restart ÷ clean start",
            f"{total:,} / {load.ok:,}; {took:.1f} s ÷ {clean:.1f} s",
            f"answered ≤ counted ≤ answered + {CONNECTIONS}",
            exact,
        )

    def scale_out(self, floor: dict[str, float]) -> None:
        """Two processes on one Cassandra keyspace behind nginx, visitor-sticky.

        nginx routes with the upstream of nginx.conf.example (consistent hash
        of the visitor id); the figure is the combined event ingest rate.
        """
        nginx = shutil.which("nginx")
        if nginx is None:
            self.report.failures.append("scale-out: nginx is missing (apt-get install -y nginx-light)")
            return
        print("scale-out: 2 processes on one Cassandra keyspace behind nginx", flush=True)
        store = self.store_uri("cassandra", "scale-out")
        servers = [start_hiitrack(self.work, store, f"scale-out-{n}") for n in range(2)]
        proxy = start_nginx(nginx, self.work, servers)
        user, bucket = USER, "scaled"
        try:
            create_user(servers[0].port, user)
            load = run_wrk(
                self.work,
                proxy.port,
                mode="event",
                prefix=f"/{user}/{bucket}",
                visitors=100_000,
                seconds=self.args.duration,
                seed=self.next_seed(),
                visitor_in_query=True,
            )
            total = recorded_once_folded(servers[1].port, user, bucket, load.ok)
            self.report.check("scale-out", load, 1, total)
            ratio = load.rate / floor["event"] if floor.get("event") else 0.0
            self.report.row(
                "cassandra event, 2 processes behind nginx: requests/s ÷ floor",
                f"{load.rate:,.0f} ÷ {floor['event']:,.0f} = {ratio:.2f}",
            )
            self.staleness("cassandra, a hit answered 200 by one process", servers[0].port, servers[1].port, user)
        finally:
            proxy.stop()
            for server in servers:
                server.stop()

    def sqlite_beside(self) -> None:
        """Two processes on one SQLite file: the first journals, the second reads its hits once folded."""
        print("staleness: 2 processes on one SQLite file", flush=True)
        store = f"sqlite:{self.work}/beside.db"
        # The first holds the journal lock once it listens: it opens the store first.
        servers = [start_hiitrack(self.work, store, "beside-0")]
        try:
            servers.append(start_hiitrack(self.work, store, "beside-1"))
            create_user(servers[0].port, USER)
            self.staleness("sqlite, a hit answered 200 by the journaling process", servers[0].port, servers[1].port)
        finally:
            for server in servers:
                server.stop()

    def staleness(self, what: str, writer: int, reader: int, user: str = USER) -> None:
        """The row of how long `writer`'s hits take to reach `reader`'s reports (it folds once a second)."""
        hits = self.args.seen_hits
        delays = seen_elsewhere(writer, reader, user, "seen", hits, FOLD_SECONDS)
        cuts = statistics.quantiles(delays, n=100)
        self.report.row(
            f"{what} is in the other's reports after ({hits} hits): p50 / p99",
            f"{cuts[49] * 1000:.0f} / {cuts[98] * 1000:.0f} ms",
        )

    def load(self, port: int, user: str, bucket: str, events: int, visitors: int) -> Load:
        """Record `events` events (rounded up to whole messages) through /batch.

        Loading is not a measured figure: it uses larger messages and more
        connections (larger group commits) to get to 10^6 events sooner.
        """
        quota = -(-events // LOAD_EVENTS)
        return run_wrk(
            self.work,
            port,
            mode="batch",
            prefix=f"/{user}/{bucket}",
            visitors=visitors,
            quota=quota,
            connections=LOAD_CONNECTIONS,
            seed=self.next_seed(),
            cap=self.args.load_cap,
            events_per_message=LOAD_EVENTS,
        )

    def read_report(self, port: int, user: str, path: str, connections: int = CONNECTIONS) -> Load:
        """wrk asking for the report at `path` over and over for --report-seconds."""
        return run_wrk(
            self.work,
            port,
            mode="report",
            report=path,
            auth=basic(user),
            connections=connections,
            seconds=self.args.report_seconds,
            seed=self.next_seed(),
        )

    def funnel(self, kind: str) -> None:
        """The pairwise funnel's report on a store of --events ÷ 10 events and on one of --events,
        each its own server, read in turn (`SPEED_ORDER`), then the larger server's memory."""
        sizes = self.args.funnel_events
        visitors = self.args.funnel_visitors
        first, second = sizes
        print(f"funnel on {kind}: {first:,} and {second:,} events, each from {visitors:,} visitors", flush=True)
        servers: dict[int, Server] = {}
        try:
            for events in sizes:
                servers[events] = self.funnel_server(kind, events, visitors)
            busy = [server.process.pid for server in servers.values()]
            self.quiet(busy + ([int(NODE_PID.read_text())] if kind == "cassandra" else []))
            path = funnel_path(USER, "funnel")
            reads: dict[tuple[int, int], list[Load]] = defaultdict(list)
            in_turn = []
            for connections in (1, CONNECTIONS):
                for events in (sizes[which] for which in SPEED_ORDER):
                    load = self.read_report(servers[events].port, USER, path, connections=connections)
                    reads[events, connections].append(load)
                    in_turn.append(f"{events:,}: {load.report_rate:,.0f}/s")
            rates = {key: statistics.fmean(load.report_rate for load in loads) for key, loads in reads.items()}
            for events in sizes:
                alone = reads[events, 1]
                p50 = statistics.fmean(load.p50_us for load in alone) / 1000
                p99 = statistics.fmean(load.p99_us for load in alone) / 1000
                self.report.row(
                    f"{kind} funnel at {events:,} events: p50 / p99 (1 connection)",
                    f"{p50:.1f} / {p99:.1f} ms",
                    f"p50 ≤ {TARGETS['funnel_p50_ms']:.0f} ms",
                    p50 <= TARGETS["funnel_p50_ms"],
                )
                self.report.row(
                    f"{kind} funnel at {events:,} events: requests/s ({CONNECTIONS} connections)",
                    f"{rates[events, CONNECTIONS]:,.0f} (1 connection: {rates[events, 1]:,.0f})",
                )
            speed = {n: rates[second, n] / rates[first, n] if rates[first, n] else 0.0 for n in (CONNECTIONS, 1)}
            self.report.row(
                f"{kind} funnel speed at {second:,} ÷ at {first:,}, in turn ({CONNECTIONS} connections; 1 connection)",
                f"{speed[CONNECTIONS]:.2f}; {speed[1]:.2f}; reads in turn: {', '.join(in_turn)}",
                f"≥ {TARGETS['funnel_ratio']}",
                speed[CONNECTIONS] >= TARGETS["funnel_ratio"],
            )
            rss = servers[second].rss_mb()
            self.report.row(
                f"{kind} server RSS after {second:,} events from {visitors:,} visitors",
                f"{rss:,.0f} MB",
                f"≤ {TARGETS['rss_mb']:.0f} MB",
                rss <= TARGETS["rss_mb"],
            )
        finally:
            for server in servers.values():
                server.stop()

    def funnel_server(self, kind: str, events: int, visitors: int) -> Server:
        """A server on a store of its own, loaded with `events` events from `visitors` visitors
        (checked exact), whose funnel report answers with a split by plan."""
        server = start_hiitrack(self.work, self.store_uri(kind, f"funnel-{events}"), f"funnel-{kind}-{events}")
        try:
            create_user(server.port, USER)
            started = time.monotonic()
            load = self.load(server.port, USER, "funnel", events, visitors)
            took = time.monotonic() - started
            total = recorded(server.port, USER, "funnel")
            self.report.check(f"{kind} funnel load to {events:,}", load, LOAD_EVENTS, total)
            self.report.row(
                f"{kind} loaded {total:,} events", f"in {took:.0f}s ({load.rate * LOAD_EVENTS:,.0f} events/s)"
            )
            status, body = http(server.port, "GET", funnel_path(USER, "funnel"), auth=basic(USER))
            # Every plan shows up once enough visitors came (not yet in --quick).
            if status != 200 or not 0 < len(body.get("funnels", {})) <= PLANS:
                self.report.failures.append(
                    f"funnel report at {total:,}: {status}, {len(body.get('funnels', {}))} values"
                )
        except BaseException:
            server.stop()
            raise
        return server
