"""The funnel report while events arrive: ``python -m benchmarks.funnel_ingest``.

The full run reads the funnel with nothing else running.  A dashboard is
read while the site sends hits, and the fold of those hits, once a second,
changes the very counter rows the report reads.  This loads a bucket as the
funnel phase does (`wrk`'s batch load, 10 events a message, through a
server of its own, as benchmarks/report_cpu.py loads), then reads the
benchmark's funnel (benchmarks/client.py, `funnel_path`) over 1 connection
for ``--seconds`` while `wrk` sends event hits to the same bucket from the
same visitors over ``--connections``, then reads it as long again alone.
It checks that every event answered 200 was counted, and exits 1 if not.
Another version runs from its own checkout (the server runs the code of the
checkout this module is in), so two versions compare in alternating runs.
Tests: tests/test_bench_smoke.py.
"""

import argparse
import sys
import tempfile
import threading
from functools import partial
from pathlib import Path

from benchmarks.client import basic, funnel_path, http, recorded
from benchmarks.report_cpu import BUCKET, EVENTS_PER_MESSAGE, USER, load
from benchmarks.servers import start_hiitrack
from benchmarks.wrk import Load, run_wrk

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.funnel_ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events loaded first, from events / 10 visitors")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each read of the funnel")
    parser.add_argument("--connections", type=int, default=2, help="wrk's connections sending event hits")
    options = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="funnel-ingest-"))
    store = f"sqlite:{work / 'funnel.db'}"
    # Loaded and counted exactly by a server of its own, as report_cpu loads.
    load(work, store, options.events)
    visitors = max(1, options.events // EVENTS_PER_MESSAGE)
    server = start_hiitrack(work, store, "funnel-ingest")
    try:
        loaded = recorded(server.port, USER, BUCKET)
        arriving: list[Load] = []

        def send_events() -> None:
            arriving.append(
                run_wrk(
                    work,
                    server.port,
                    mode="event",
                    prefix=f"/{USER}/{BUCKET}",
                    visitors=visitors,
                    seconds=options.seconds + 1,
                    connections=options.connections,
                    seed=2,
                )
            )

        path = funnel_path(USER, BUCKET)
        auth = basic(USER)
        status, _ = http(server.port, "GET", path, auth=auth)
        if status != 200:
            raise SystemExit(f"the funnel report answered {status}")
        sender = threading.Thread(target=send_events)
        sender.start()
        read = partial(run_wrk, work, server.port, mode="report", report=path, auth=auth, connections=1)
        during = read(seconds=options.seconds)
        sender.join()
        alone = read(seconds=options.seconds)
        (events,) = arriving
        answered = loaded + events.ok
        counted = recorded(server.port, USER, BUCKET)
    finally:
        server.stop()
    problems = [f"{events.bad} answers were not 200"] if events.bad else []
    if events.answered != events.sent:
        problems.append(f"{events.sent - events.answered} unanswered")
    if counted != answered:
        problems.append(f"{answered:,} events answered 200, {counted:,} counted")
    if problems:
        raise SystemExit("; ".join(problems))
    print(
        f"funnel report, sqlite, {answered:,} events: while {events.rate:,.0f} events/s arrive, p50 / p99 "
        f"{during.p50_us / 1000:.1f} / {during.p99_us / 1000:.1f} ms ({during.requests:,} reports); alone after, "
        f"{alone.p50_us / 1000:.1f} / {alone.p99_us / 1000:.1f} ms ({alone.requests:,} reports)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
