"""The light load alone, its tail taken apart: ``python -m benchmarks.light_load [--store sqlite|cassandra]
[--hits N] [--fold-off] [--trace] [--insert-ids] [--new-visitors] [--after-load SECONDS]``.

The full benchmark's light load (benchmarks/phases.py: one hit at a time on
one kept-alive connection, a tenth of them from a visitor of
`LARGE_STATE_EVENTS` distinct events whose state is over 10 KB) in about
half a minute, with what the full run leaves out: the p50 / p90 / p99 of
each kind of hit (a visitor's first, which reads its state from the store;
the large visitor's; the others) and the kinds among the slowest 1 %.  With
``--fold-off`` the write-behind fold does not run during the load
(benchmarks/fold_off.py; the hits are still counted, from the journal's
unfolded layers): the difference is the fold's share of the tail.  With
``--trace`` the server traces its folds, commits, requests and long reactor
steps (benchmarks/tracing.py), and each of the slowest 1 % is taken apart
(benchmarks/tail.py).  ``--insert-ids`` gives each hit an insert_id of its
own, as hiitrack.js does, so that each asks the store whether it was
applied; ``--new-visitors`` makes every timed hit a new visitor's first.
``--after-load SECONDS`` first gives the same server that long of `wrk`'s
saturated batch load from `AFTER_LOAD_VISITORS` visitors, as the full run's
light load follows its ingest runs on the server that took them.
A fresh server and store each run, the node of
``scripts/cassandra`` for Cassandra.  Loopback only.  Tests: tests/test_bench_smoke.py.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.client import create_user, http, recorded, timed_hits
from benchmarks.servers import drop_keyspaces, start_hiitrack
from benchmarks.tail import TRACE_FILE, read_trace, taken_apart
from benchmarks.wrk import run_wrk

__all__ = ["LARGE_STATE_EVENTS", "KINDS", "light_load", "main"]

LARGE_STATE_EVENTS = 60
"""Distinct events of the light load's large visitor: its state holds a path count per pair of
events, over 10 KB (tests/test_cassandra.py measures it; 30 events made it so before the compact
state layout of session 26)."""
AFTER_LOAD_VISITORS = 100_000
"""The visitors of `--after-load`'s batch load, as the full run's last ingest run before its light load."""
KINDS = ("first", "large", "other")
"""A hit is its visitor's first (its state read from the store), the large visitor's, or another."""


def light_load(
    port: int,
    prefix: str,
    hits: int,
    starts: list[float] | None = None,
    insert_ids: bool = False,
    new_visitors: bool = False,
) -> tuple[list[float], list[str]]:
    """Give the large visitor its events, then time `hits` hits one at a time under `prefix`
    (/{user}/{bucket}); each hit's seconds and kind (when each was sent to `starts`, if given;
    `insert_ids`: each hit with one of its own; `new_visitors`: each hit a new visitor's)."""
    for n in range(LARGE_STATE_EVENTS):
        status, body = http(port, "POST", f"{prefix}/event/large{n}", {"visitor_id": "large"})
        if status != 200:
            raise RuntimeError(f"could not record the large visitor's event {n}: {status} {body}")
    if new_visitors:
        visitors = [f"new{n}" for n in range(hits)]
    else:
        visitors = ["large" if n % 10 == 0 else f"v{n % 100}" for n in range(hits)]
    kinds, seen = [], set()
    for visitor in visitors:
        kinds.append("large" if visitor == "large" else "other" if visitor in seen else "first")
        seen.add(visitor)
    return timed_hits(port, prefix, hits, visitors.__getitem__, starts, insert_ids), kinds


def _cuts(seconds: list[float]) -> str:
    cuts = statistics.quantiles(seconds, n=100)
    return " / ".join(f"{cuts[at] * 1000:.1f}" for at in (49, 89, 98))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.light_load", description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--hits", type=int, default=3000, help="timed hits (default 3000, as the full run)")
    parser.add_argument("--fold-off", action="store_true", help="no fold of the journal during the load")
    parser.add_argument("--trace", action="store_true", help="where the slowest hits' time went")
    parser.add_argument(
        "--insert-ids", action="store_true", help="each hit with an insert_id of its own, as the tracker sends"
    )
    parser.add_argument("--new-visitors", action="store_true", help="each hit a new visitor's first")
    parser.add_argument(
        "--after-load", type=float, default=0.0, metavar="SECONDS", help="first this long of saturated batch load"
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hiitrack-light-"))
    keyspace = f"light_{time.time_ns()}"
    store = f"sqlite:{work}/light.db" if args.store == "sqlite" else f"cassandra://127.0.0.1/{keyspace}"
    preload = ["benchmarks.fold_off"] if args.fold_off else []
    trace = work / "trace.txt"
    if args.trace:
        preload.append("benchmarks.tracing")
        os.environ[TRACE_FILE] = str(trace)
    starts: list[float] = []
    server = start_hiitrack(work, store, "light", preload=preload)
    try:
        create_user(server.port, "bench")
        if args.after_load:
            loaded = run_wrk(
                work,
                server.port,
                mode="batch",
                prefix="/bench/load",
                visitors=AFTER_LOAD_VISITORS,
                seconds=args.after_load,
            )
            if loaded.bad or not loaded.ok:
                raise SystemExit(f"the load before the light load: {loaded.ok} answered 200, {loaded.bad} others")
        latencies, kinds = light_load(
            server.port, "/bench/light", args.hits, starts, args.insert_ids, args.new_visitors
        )
        counted = recorded(server.port, "bench", "light")
    finally:
        server.stop()
        if args.store == "cassandra":
            drop_keyspaces([keyspace])
    chosen = (("fold off", args.fold_off), ("insert_ids", args.insert_ids), ("new visitors", args.new_visitors))
    options = [name for name, on in chosen if on]
    options += [f"after {args.after_load:g} s of batch load"] if args.after_load else []
    shown = f" ({', '.join(options)})" if options else ""
    print(f"{args.store} light load{shown}, {args.hits:,} hits one at a time")
    print(f"all: p50 / p90 / p99 {_cuts(latencies)} ms")
    for kind in KINDS:
        mine = [took for took, its in zip(latencies, kinds, strict=True) if its == kind]
        if len(mine) >= 2:
            print(f"{kind} ({len(mine):,} hits): p50 / p90 / p99 {_cuts(mine)} ms")
    slowest = sorted(range(len(latencies)), key=latencies.__getitem__, reverse=True)[: max(1, len(latencies) // 100)]
    among = {kind: sum(kinds[at] == kind for at in slowest) for kind in KINDS}
    print(f"slowest {len(slowest)}: " + ", ".join(f"{among[kind]} {kind}" for kind in KINDS))
    if args.trace:
        print("\n".join(taken_apart(read_trace(trace), starts, latencies, kinds, slowest)))
    print(f"counted {counted:,} of {args.hits:,} answered 200")
    return 0 if counted == args.hits else 1


if __name__ == "__main__":
    sys.exit(main())
