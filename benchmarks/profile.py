"""One saturated ingest run, for looking into the write path: rate, CPU per hit, and a profile.

``python -m benchmarks.profile --store sqlite|cassandra [--mode event|batch]
[--seconds N] [--visitors N] [--py-spy FILE] [--discard-commits] [--unlogged]
[--floor] [--insert-ids] [--report-reads]``
starts ``twistd hiitrack`` on a fresh store, warms it for 3 seconds, then runs wrk
(16 connections, 1,000 visitors unless told) and prints requests/s, the CPU
time per answered request of the server and, for Cassandra, of the node of
``scripts/cassandra`` (from /proc), and the group commits (requests in each,
and how long each took until durable, from the server's /metrics).  With
``--py-spy`` it records the server's threads meanwhile (py-spy's raw format,
for flame graphs) and prints how busy each thread was and the functions that
hold most of the reactor thread's samples, each counted once per sample it
is on the stack of, then each sample given to the innermost HiiTrack
function on its stack (what HiiTrack's own code, with the Twisted and
library calls under it, costs; "-" for the event loop and Twisted alone).
With ``--discard-commits`` the store writes nothing
(benchmarks/discarding.py): the rate the rest of the server allows.  With
``--unlogged`` (Cassandra) each commit's unit is an unlogged batch
(benchmarks/unlogged.py): what the batchlog costs.  With ``--floor`` the
same load first runs against the bare floor of ``python -m benchmarks``,
and the rate is given as a ratio to it.  With ``--report-reads`` a 17th
client reads an event's report every `READ_GAP` seconds through the run and
the p50 / p90 / p99 / longest of those reads are printed: what an analyst
waits for during the load.
Loopback only; docs/performance.md, "Issue 14: the write path", says what
it found.
"""

import argparse
import re
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from functools import partial
from pathlib import Path

from benchmarks.client import EVENT_NAMES, basic, commits, create_user, http
from benchmarks.servers import NODE_PID, cpu_seconds, drop_keyspaces, start_floor, start_hiitrack
from benchmarks.wrk import run_wrk

SPY_RATE = 200
"""py-spy's samples per second."""
TOP_FUNCTIONS = 80
READ_GAP = 0.05
"""Seconds between the end of one report read of ``--report-reads`` and the next."""


class ReportReads:
    """A report of the warm-up's bucket read over and over, one at a time, until `stop`: each read's seconds."""

    def __init__(self, port: int, deadline: float) -> None:
        self.took: list[float] = []
        self.refused = ""
        self._port = port
        self._deadline = deadline
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        path = f"/bench/warm/event/{EVENT_NAMES[0]}"
        while not self._done.is_set() and time.monotonic() < self._deadline:
            started = time.perf_counter()
            status, body = http(self._port, "GET", path, auth=basic("bench"))
            if status != 200:
                self.refused = f"a report read during the load was answered {status}: {body}"
                return
            self.took.append(time.perf_counter() - started)
            self._done.wait(READ_GAP)

    def stop(self) -> str:
        self._done.set()
        self._thread.join()
        if self.refused:
            raise RuntimeError(self.refused)
        if len(self.took) < 2:
            return "report reads meanwhile: too few to tell"
        cuts = statistics.quantiles(self.took, n=100, method="inclusive")
        shown = " / ".join(f"{1000 * took:.1f}" for took in (cuts[49], cuts[89], cuts[98], max(self.took)))
        return f"report reads meanwhile ({len(self.took):,}, one at a time): p50 / p90 / p99 / longest {shown} ms"


def spy_summary(raw: Path, seconds: float) -> str:
    """Each thread's share of `seconds` busy, then the reactor (main) thread's functions by share
    of its busy samples, from py-spy's raw output (one stack per line, thread first, then a count)."""
    busy: Counter[str] = Counter()
    main: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        busy[thread] += int(count)
        if "MainThread" in thread:
            # "name (path/file.py:line)" -> "name (file.py)", each function once per stack.
            names = {re.sub(r" \((?:.*/)?([^/:]+)(?::\d+)?\)$", r" (\1)", frame) for frame in frames}
            main.update(dict.fromkeys(names, int(count)))
    lines = [f"{thread}: busy {n / (SPY_RATE * seconds):.0%}" for thread, n in busy.most_common()]
    total = sum(n for thread, n in busy.items() if "MainThread" in thread) or 1
    lines += [f"  {n / total:6.1%} {name}" for name, n in main.most_common(TOP_FUNCTIONS)]
    return "\n".join(lines)


def innermost_summary(raw: Path) -> str:
    """The reactor thread's samples given each to the innermost HiiTrack function on its stack
    ("-": none, the event loop and Twisted alone), by share, from py-spy's raw output."""
    owner: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        thread, *frames = stack.split(";")
        if "MainThread" in thread:
            ours = [frame for frame in frames if "hiitrack/" in frame]
            # "name (path/hiitrack/module.py:line)" -> "name (hiitrack/module.py)"
            owner[re.sub(r" \(.*?(hiitrack/[^:)]+)(?::\d+)?\)$", r" (\1)", ours[-1]) if ours else "-"] += int(count)
    total = sum(owner.values()) or 1
    lines = ["reactor thread, by the innermost HiiTrack function on the stack:"]
    return "\n".join(lines + [f"  {n / total:6.1%} {name}" for name, n in owner.most_common(TOP_FUNCTIONS)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--mode", choices=["event", "batch"], default="event")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--py-spy", dest="spy", help="write py-spy's raw samples of the server here")
    parser.add_argument(
        "--discard-commits",
        action="store_true",
        help="the store commits nothing and answers at once (benchmarks/discarding.py): the write path's ceiling",
    )
    parser.add_argument(
        "--unlogged",
        action="store_true",
        help="Cassandra's commits as unlogged batches (benchmarks/unlogged.py): what the batchlog costs",
    )
    parser.add_argument("--floor", action="store_true", help="first the same load on the bare floor, for a ratio")
    parser.add_argument(
        "--insert-ids", action="store_true", help="each request with an insert_id of its own, as hiitrack.js sends"
    )
    parser.add_argument(
        "--report-reads", action="store_true", help="an event's report read every 50 ms through the run, timed"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hiitrack-profile-"))
    keyspace = f"profile_{time.time_ns()}"
    store = f"sqlite:{work}/profile.db" if args.store == "sqlite" else f"cassandra://127.0.0.1/{keyspace}"
    node = int(NODE_PID.read_text()) if args.store == "cassandra" else None
    # Every run of the same load: the floor's, the warm-up and the measured one.
    load_of = partial(run_wrk, work, mode=args.mode, visitors=args.visitors, insert_ids=args.insert_ids)
    floor = None
    if args.floor:
        bare = start_floor(work)
        try:
            floor = load_of(bare.port, prefix="/floor/b", seconds=args.seconds, seed=2)
        finally:
            bare.stop()
    preload = ["benchmarks.discarding"] if args.discard_commits else []
    preload += ["benchmarks.unlogged"] if args.unlogged else []
    server = start_hiitrack(work, store, "profile", preload=preload)
    try:
        create_user(server.port, "bench")
        load_of(server.port, prefix="/bench/warm", seconds=3, seed=1)
        spy = None
        spy_seconds = max(1, int(args.seconds) - 2)
        if args.spy:
            command = ["py-spy", "record", "-p", str(server.process.pid), "-d", str(spy_seconds)]
            command += ["--threads", "-f", "raw", "-o", args.spy, "-r", str(SPY_RATE)]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        server_before, node_before = cpu_seconds(server.process.pid), cpu_seconds(node) if node else 0.0
        commits_before = commits(server.port)
        reads = ReportReads(server.port, time.monotonic() + args.seconds + 60) if args.report_reads else None
        load = load_of(server.port, prefix="/bench/run", seconds=args.seconds, seed=2)
        read_times = reads.stop() if reads is not None else None
        server_cpu = cpu_seconds(server.process.pid) - server_before
        node_cpu = cpu_seconds(node) - node_before if node else 0.0
        commits_after = commits(server.port)
        made, batches, took = (after - before for after, before in zip(commits_after, commits_before, strict=True))
        rss = server.rss_mb()
        if spy is not None:
            spy.wait()
    finally:
        server.stop()
        if args.store == "cassandra":
            drop_keyspaces([keyspace])
    variant = " (commits discarded)" if args.discard_commits else ""
    variant += " (unlogged batches)" if args.unlogged else ""
    variant += " (insert_ids)" if args.insert_ids else ""
    line = f"{args.store} {args.mode}{variant}: {load.rate:,.0f} requests/s"
    line += f" ({load.ok:,} answered 200, {load.bad} others)"
    if floor is not None:
        line += f" = {load.rate / floor.rate:.2f} × the floor's {floor.rate:,.0f}"
    line += f"; server {1000 * server_cpu / max(1, load.ok):.2f} ms CPU per request"
    if node:
        line += f", node {1000 * node_cpu / max(1, load.ok):.2f} ms"
    line += f"; {batches / max(1, made):.1f} requests a commit, {1000 * took / max(1, made):.2f} ms each"
    line += f"; server RSS {rss:.0f} MB"
    print(line)
    if read_times is not None:
        print(read_times)
    if args.spy:
        print(spy_summary(Path(args.spy), spy_seconds))
        print(innermost_summary(Path(args.spy)))


if __name__ == "__main__":
    main()
