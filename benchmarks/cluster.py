"""Sizing on the 3-node cluster of `scripts/cassandra cluster`: events/s and the CPU it costs.

`python -m benchmarks.cluster [--processes 1|2] [--seconds S]` starts that
many HiiTrack processes on keyspace hiitrack_sizing (a fresh user each
run), replication factor 3, at
LOCAL_QUORUM (two behind nginx, routed like nginx.conf.example), sends event
hits with wrk, and prints the events/s answered 200 with the CPU cores each
HiiTrack process and each Cassandra node used meanwhile, read from /proc.
Events per CPU-second are what size a deployment; the rate alone depends on
what else the machine runs.  Tests: tests/test_cluster.py.
"""

import argparse
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.client import create_user, http, recorded_once_folded
from benchmarks.servers import CACHE_ROOT, Server, cpu_seconds, start_hiitrack, start_nginx
from benchmarks.wrk import run_wrk

__all__ = ["Sizing", "main", "measure"]

CLUSTER_HOME = CACHE_ROOT / "cluster"
NODES = (1, 2, 3)
STORE = "cassandra://127.0.0.1,127.0.0.2,127.0.0.3:9142/hiitrack_sizing"


@dataclass
class Sizing:
    """One run: events/s answered 200, and the cores each process and node used."""

    processes: int
    rate: float
    answered: int
    failed: int
    recorded: int
    hiitrack_cores: list[float]
    node_cores: list[float]

    def __str__(self) -> str:
        hiitrack, nodes = sum(self.hiitrack_cores), sum(self.node_cores)
        return (
            f"{self.processes} process(es): {self.rate:,.0f} events/s ({self.answered} answered 200,"
            f" {self.failed} not); cores used by HiiTrack {hiitrack:.2f}"
            f" ({self.rate / max(hiitrack, 0.01):,.0f} events per core-second),"
            f" by each node {' '.join(f'{cores:.2f}' for cores in self.node_cores)}"
            f" ({self.rate / max(nodes / len(self.node_cores), 0.01):,.0f} events per core-second of a node)"
        )


def _start(work: Path, number: int) -> Server:
    """A HiiTrack process on the cluster: every write on all three nodes, answered by two."""
    options = ["--cassandra-replication", "SimpleStrategy:3", "--cassandra-consistency", "LOCAL_QUORUM"]
    return start_hiitrack(work, STORE, f"hiitrack-{number}", options)


def measure(processes: int, seconds: float) -> Sizing:
    """One wrk run of event hits against `processes` HiiTrack processes on the cluster."""
    nodes = [int((CLUSTER_HOME / f"node{n}" / "cassandra.pid").read_text()) for n in NODES]
    user = f"bench{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="hiitrack-sizing-") as tmp:
        work = Path(tmp)
        servers = [_start(work, number) for number in range(processes)]
        front = start_nginx(shutil.which("nginx") or "/usr/sbin/nginx", work, servers) if processes == 2 else servers[0]
        try:
            create_user(servers[0].port, user)
            # The bucket exists before the load, so no two processes race to create it.
            http(servers[0].port, "POST", f"/{user}/sized/event/warm-up", {"visitor_id": "warm-up"})
            pids = [server.process.pid for server in servers] + nodes
            before, started = [cpu_seconds(pid) for pid in pids], time.monotonic()
            load = run_wrk(
                work, front.port, mode="event", prefix=f"/{user}/sized", visitors=100_000, seconds=seconds,
                visitor_in_query=True,
            )  # fmt: skip
            wall = time.monotonic() - started
            cores = [(cpu_seconds(pid) - spent) / wall for pid, spent in zip(pids, before, strict=True)]
            total = recorded_once_folded(front.port, user, "sized", load.ok)
        finally:
            if front is not servers[0]:
                front.stop()
            for server in servers:
                server.stop()
    return Sizing(processes, load.rate, load.ok, load.bad, total, cores[:processes], cores[processes:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    print(measure(args.processes, args.seconds), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
