"""One saturated ingest run, for looking into the write path: rate, CPU per hit, and a profile.

``python -m benchmarks.profile --store sqlite|cassandra [--mode event|batch]
[--seconds N] [--visitors N] [--py-spy FILE]`` starts ``twistd hiitrack`` on a
fresh store, warms it for 3 seconds, then runs wrk (16 connections, 1,000
visitors unless told) and
prints requests/s and the CPU time per answered request of the server and,
for Cassandra, of the node of ``scripts/cassandra`` (from /proc).  With
``--py-spy`` it records the server's threads meanwhile (py-spy's raw
format, for flame graphs).  Loopback only; docs/performance.md, "Issue 14:
the write path", says what it found.
"""

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.client import create_user
from benchmarks.servers import cpu_seconds, drop_keyspaces, start_hiitrack
from benchmarks.wrk import run_wrk

NODE_PID = Path.home() / ".cache/hiitrack/cassandra/cassandra.pid"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--mode", choices=["event", "batch"], default="event")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--py-spy", dest="spy", help="write py-spy's raw samples of the server here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hiitrack-profile-"))
    keyspace = f"profile_{time.time_ns()}"
    store = f"sqlite:{work}/profile.db" if args.store == "sqlite" else f"cassandra://127.0.0.1/{keyspace}"
    node = int(NODE_PID.read_text()) if args.store == "cassandra" else None
    server = start_hiitrack(work, store, "profile")
    try:
        create_user(server.port, "bench")
        run_wrk(work, server.port, mode=args.mode, prefix="/bench/warm", visitors=args.visitors, seconds=3, seed=1)
        spy = None
        if args.spy:
            command = ["py-spy", "record", "-p", str(server.process.pid), "-d", str(max(1, int(args.seconds) - 2))]
            command += ["--threads", "-f", "raw", "-o", args.spy, "-r", "200"]
            spy = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        server_before, node_before = cpu_seconds(server.process.pid), cpu_seconds(node) if node else 0.0
        load = run_wrk(
            work, server.port, mode=args.mode, prefix="/bench/run", visitors=args.visitors, seconds=args.seconds, seed=2
        )
        server_cpu = cpu_seconds(server.process.pid) - server_before
        node_cpu = cpu_seconds(node) - node_before if node else 0.0
        if spy is not None:
            spy.wait()
    finally:
        server.stop()
        if args.store == "cassandra":
            drop_keyspaces([keyspace])
    line = f"{args.store} {args.mode}: {load.rate:,.0f} requests/s ({load.ok:,} answered 200, {load.bad} others)"
    line += f"; server {1000 * server_cpu / max(1, load.ok):.2f} ms CPU per request"
    if node:
        line += f", node {1000 * node_cpu / max(1, load.ok):.2f} ms"
    print(line)


if __name__ == "__main__":
    main()
