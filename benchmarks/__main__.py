"""Run the benchmark: ``python -m benchmarks [--quick] [--stores ...] [--duration S] [--events N] [--funnel-only]``.

Parses the options, runs the phases in order (or, with ``--costs`` and/or
``--exact``, those runs instead), prints the table and exits 1 when a check
failed.  Tests: tests/test_bench_smoke.py.
"""

import argparse
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.costs import COSTS, Costs
from benchmarks.exact_funnel import ExactFunnel
from benchmarks.phases import LOAD_EVENTS, Bench
from benchmarks.report import TARGETS, Report
from benchmarks.servers import drop_keyspaces
from benchmarks.wrk import CONNECTIONS
from hiitrack.native import build, stale_refusal

__all__ = ["main"]


def cassandra_ready() -> str | None:
    """Why the Cassandra store cannot be benchmarked, or None."""
    try:
        from hiitrack.store.cassandra import CassandraStore  # noqa: F401
    except ImportError as error:
        return f"hiitrack.store.cassandra is not importable ({error})"
    try:
        with socket.create_connection(("127.0.0.1", 9042), timeout=2):
            return None
    except OSError:
        return "no Cassandra node on 127.0.0.1:9042 (scripts/cassandra start)"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="HiiTrack's benchmark: ingest next to the bare HTTP floor, funnel reads, memory.",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds: small counts, sqlite only")
    parser.add_argument("--cassandra", action="store_true", help="with --quick, run the Cassandra store too")
    parser.add_argument("--stores", default=None, help="comma-separated: sqlite,cassandra (default: both)")
    parser.add_argument("--duration", type=float, default=None, help="seconds of each ingest run (default 10)")
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="events in the funnel's larger store; the smaller holds a tenth (default 1000000)",
    )
    parser.add_argument(
        "--funnel-only",
        action="store_true",
        help="only the pairwise funnel's reads (and memory), on the first of --stores: no floor, no ingest",
    )
    parser.add_argument(
        "--costs",
        nargs="?",
        const=",".join(COSTS),
        default=None,
        help="instead: what each of funnels (10 saved exact funnels), history (the visitor history) and"
        " access-log (twistd's log, and a file of its own) costs at ingest, against its absence;"
        " comma-separated (default: all three)",
    )
    parser.add_argument(
        "--exact",
        action="store_true",
        help="instead: the exact funnel after importing each of --exact-events, next to ClickHouse; then backfill",
    )
    parser.add_argument(
        "--exact-events",
        default=None,
        help="comma-separated event counts, each a multiple of the first (default 1000000,10000000)",
    )
    parser.add_argument(
        "--node-warmup",
        type=float,
        default=None,
        help="seconds of load on the Cassandra node before its runs are measured (default 600; 0 with --quick)",
    )
    parser.add_argument(
        "--backfill-timeout", type=float, default=None, help="seconds to wait for a backfill (default 1800)"
    )
    args = parser.parse_args(argv)
    if args.costs is not None:
        args.costs = [cost.strip() for cost in args.costs.split(",") if cost.strip()]
        if not args.costs or not set(args.costs) <= set(COSTS):
            parser.error(f"--costs takes some of {','.join(COSTS)}")
    if args.stores is None:
        alone = args.quick or args.exact or args.costs
        args.stores = "sqlite,cassandra" if not alone or args.cassandra else "sqlite"
    args.stores = [kind.strip() for kind in args.stores.split(",") if kind.strip()]
    for kind in args.stores:
        if kind not in ("sqlite", "cassandra"):
            parser.error(f"unknown store {kind!r}")
    if args.duration is None:
        args.duration = 1.0 if args.quick else 10.0
    if args.node_warmup is None:
        args.node_warmup = 0.0 if args.quick else 600.0
    if args.events is None:
        args.events = 10_000 if args.quick else 1_000_000
    args.funnel_events = (max(LOAD_EVENTS, args.events // 10), args.events)
    args.funnel_visitors = max(1, args.events // 10)
    args.visitor_counts = (1_000, 100_000)
    args.light_hits = 200 if args.quick else 3_000
    args.seen_hits = 20 if args.quick else 200
    args.report_seconds = 1.0 if args.quick else 5.0
    args.load_cap = 60.0 if args.quick else 1800.0
    default_points = "1000,3000" if args.quick else "1000000,10000000"
    try:
        args.exact_events = [int(text) for text in (args.exact_events or default_points).split(",")]
    except ValueError:
        parser.error("--exact-events takes comma-separated integers")
    args.exact_chunk = args.exact_events[0]
    if args.exact_chunk < 1 or any(point % args.exact_chunk or point < args.exact_chunk for point in args.exact_events):
        parser.error("--exact-events: each count must be a positive multiple of the first")
    if args.backfill_timeout is None:
        args.backfill_timeout = 10.0 if args.quick else 1800.0
    return args


def _unavailable(kind: str, report: Report) -> bool:
    """Whether `kind` cannot be measured (then the run fails, saying why)."""
    if kind == "cassandra" and (why := cassandra_ready()) is not None:
        report.failures.append(f"cassandra: not measured: {why}")
        report.row("cassandra", f"not measured: {why}", f"≥ {TARGETS['cassandra event']}", False)
        return True
    return False


def _phases(args: argparse.Namespace, bench: Bench) -> None:
    """The default run: for each store its ingest in turn with the floor, two processes on each store, the pairwise
    funnel and memory; with `--funnel-only`, the funnel and memory alone."""
    if args.funnel_only:
        if not _unavailable(args.stores[0], bench.report):
            bench.funnel(args.stores[0])
        return
    for kind in args.stores:
        if _unavailable(kind, bench.report):
            continue
        if kind == "cassandra":
            bench.warm_node()
        floor = bench.ingest(kind)
        if not args.quick:
            bench.restart(kind)
        if kind == "cassandra" and not args.quick:
            bench.scale_out(floor)
        if kind == "sqlite" and not args.quick:
            bench.sqlite_beside()
    bench.funnel(args.stores[0] if args.stores[0] == "sqlite" or cassandra_ready() is None else "sqlite")


def _costs_and_exact(args: argparse.Namespace, bench: Bench) -> None:
    """`--costs` and `--exact`: what funnels and the history cost at ingest; the exact funnel at scale."""
    for kind in args.stores:
        if _unavailable(kind, bench.report):
            continue
        for cost in args.costs or ():
            COSTS[cost](Costs(bench), kind)
        if args.exact:
            ExactFunnel(bench).run(kind)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if refusal := stale_refusal():
        print(refusal)
        return 2
    started = time.monotonic()
    report = Report()
    with tempfile.TemporaryDirectory(prefix="hiitrack-bench-") as tmp:
        bench = Bench(args, Path(tmp), report)
        try:
            if args.costs or args.exact:
                _costs_and_exact(args, bench)
            else:
                _phases(args, bench)
        finally:
            drop_keyspaces(bench.keyspaces)
    command = "python -m benchmarks " + " ".join(argv)
    print()
    print(
        f"HiiTrack benchmark ({command.strip()}), {CONNECTIONS} connections, "
        f"{os.cpu_count()} cores, {time.monotonic() - started:.0f}s, "
        f"the hot path {build()}"
    )
    print(report.table())
    if report.failures:
        print("\nFAILED:")
        for failure in report.failures:
            print(f"  {failure}")
        return 1
    print("\nall totals exact: every event answered 200 was counted")
    return 0


if __name__ == "__main__":
    sys.exit(main())
