"""The CPU of the benchmark's funnel report, in-process: ``python -m benchmarks.report_cpu``.

The full run's funnel report (4 steps split by the 50-value ``plan``;
benchmarks/client.py, `funnel_path`) read over HTTP moves with the
machine's hour by more than most changes to the read path.  This script
loads a bucket as the funnel phase does (a server and `wrk`'s batch load,
the server then stopped), opens the same store in-process and times the
report itself: `Reports.funnel` and its JSON, in rounds, by the process's
CPU (the store's reader thread included) and by the time from asking for
a report to its JSON: the median of all of them, and of those at each of
the machine's two speeds, probed before each report
(benchmarks/machine_speed.py).  Another version's read path runs from its
own checkout (``cd <checkout> && python -m benchmarks.report_cpu``: the
current folder comes first on the module path), so two versions compare
in alternating runs.  It exits 1 if the load was not counted exactly.
Tests: tests/test_bench_smoke.py.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import ujson
from twisted.internet import defer, task

from benchmarks.client import basic, create_user, http, recorded
from benchmarks.machine_speed import by_speed, probe
from benchmarks.servers import scratch_store, start_hiitrack
from benchmarks.workload import FUNNEL_STEPS
from benchmarks.wrk import run_wrk
from hiitrack.accounts import bucket_scope
from hiitrack.app import HiiTrack
from hiitrack.ids import event_id
from hiitrack.store import open_store

__all__ = ["main"]

USER, BUCKET = "bench", "funnel"
EVENTS_PER_MESSAGE = 10
CONNECTIONS = 64


def load(work: Path, store: str, events: int) -> None:
    """`events` events from events / 10 visitors into the bucket, through a server stopped after."""
    server = start_hiitrack(work, store, "report-cpu")
    try:
        create_user(server.port, USER)
        done = run_wrk(
            work,
            server.port,
            mode="batch",
            prefix=f"/{USER}/{BUCKET}",
            visitors=max(1, events // EVENTS_PER_MESSAGE),
            quota=-(-events // EVENTS_PER_MESSAGE),
            connections=CONNECTIONS,
            events_per_message=EVENTS_PER_MESSAGE,
            cap=600.0,
        )
        counted = recorded(server.port, USER, BUCKET)
        if counted != done.ok * EVENTS_PER_MESSAGE:
            raise SystemExit(f"{done.ok * EVENTS_PER_MESSAGE:,} events answered 200, {counted:,} counted")
        status, _ = http(server.port, "GET", f"/{USER}/{BUCKET}", auth=basic(USER))
        if status != 200:
            raise SystemExit(f"the loaded bucket answered {status}")
    finally:
        server.stop()


async def measure(store: str, reports: int, rounds: int) -> tuple[list[float], list[tuple[float, float]], int]:
    """Milliseconds of CPU per report (and its JSON) in each round; each report's milliseconds
    from asked to encoded (its store's threads and hand-offs included), after the machine's speed
    probed just before it; and the answer's bytes."""
    app = HiiTrack(open_store(store))
    await app.start(backfills=False)
    try:
        scope, steps = bucket_scope(USER, BUCKET), [event_id(step) for step in FUNNEL_STEPS]
        size = len(ujson.dumps(await app.reports.funnel(scope, steps, "plan")))
        per_round, walls = [], []
        for _ in range(rounds):
            spent = 0.0
            for _ in range(reports):
                speed = probe()
                started, asked = time.process_time(), time.perf_counter()
                ujson.dumps(await app.reports.funnel(scope, steps, "plan"))
                walls.append((speed, (time.perf_counter() - asked) * 1000))
                spent += time.process_time() - started
            per_round.append(spent / reports * 1000)
        return per_round, walls, size
    finally:
        await app.stop()


async def report(options: argparse.Namespace, store: str) -> None:
    rounds, walls, size = await measure(store, options.reports, options.rounds)
    fast, slow = by_speed(walls)
    at_slow = f"{statistics.median(slow):.2f} ms" if slow else "none"
    print(
        f"funnel report, {options.store}, {options.events:,} events: CPU per report, min / median of "
        f"{options.rounds} rounds of {options.reports}: {min(rounds):.2f} / {statistics.median(rounds):.2f} ms; "
        f"asked to encoded, p50 {statistics.median(wall for _, wall in walls):.2f} ms ({size:,} bytes of JSON); "
        f"at the machine's fast speed {statistics.median(fast):.2f} ms ({len(fast)} of {len(walls)}), "
        f"at its slow speed {at_slow}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=30, help="reports a round")
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args(argv)
    with scratch_store(options.store, "report-cpu-") as (work, store):
        load(work, store, options.events)
        # Exits the process: 0 once the report is printed, 1 if measuring failed.
        task.react(lambda _: defer.Deferred.fromCoroutine(report(options, store)))


if __name__ == "__main__":
    main(sys.argv[1:])
