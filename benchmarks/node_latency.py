"""The node's own latency, without HiiTrack: ``python -m benchmarks.node_latency [--requests N]``.

Sends statements one at a time, with the driver alone, to the node of
``scripts/cassandra`` and prints the p50 / p90 / p99 of each shape a hit's
path uses: a one-row insert, a logged batch over three partitions (a
commit's records and journal entry are one) and a one-row read (a visitor's
state).  A hit cannot answer faster than its logged batch, so this is the
floor under the light load's latency on the Cassandra store; a node minutes
old is slower than one that has run for a while (its JIT), so the node's age
is printed too.  Works in a keyspace of its own (replication factor 1),
dropped at the end.  Loopback only.  Tests: tests/test_bench_smoke.py.
"""

import argparse
import secrets
import statistics
import sys
import time
from collections.abc import Callable

from cassandra.cluster import Cluster
from cassandra.query import BatchStatement, BatchType

from benchmarks.servers import NODE_PID, seconds_since_start

__all__ = ["main"]

WARM_UP = 200
"""Requests of each shape sent, and not timed, before the timed ones."""
VALUE = b"v" * 200


def node_minutes() -> float | None:
    """Minutes since the node of scripts/cassandra started, if it runs here."""
    try:
        return seconds_since_start(int(NODE_PID.read_text().strip())) / 60
    except (OSError, ValueError):
        return None


def timed(send: Callable[[int], object], requests: int) -> list[float]:
    """Seconds each of `requests` calls of `send` took, after `WARM_UP` untimed ones."""
    for n in range(WARM_UP):
        send(n)
    took = []
    for n in range(requests):
        started = time.perf_counter()
        send(n)
        took.append(time.perf_counter() - started)
    return took


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.node_latency", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="timed requests of each shape (default 2000)")
    parser.add_argument("--port", type=int, default=9042)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    keyspace = f"node_latency_{secrets.token_hex(4)}"
    cluster = Cluster(["127.0.0.1"], port=args.port, protocol_version=5)
    session = cluster.connect()
    try:
        session.execute(
            f"CREATE KEYSPACE {keyspace} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"
        )
        session.execute(f"CREATE TABLE {keyspace}.rows (k text, c int, v blob, PRIMARY KEY (k, c))")
        insert = session.prepare(f"INSERT INTO {keyspace}.rows (k, c, v) VALUES (?, ?, ?)")
        read = session.prepare(f"SELECT v FROM {keyspace}.rows WHERE k = ? AND c = ?")

        def logged_batch(n: int) -> object:
            batch = BatchStatement(batch_type=BatchType.LOGGED)
            for partition in range(3):
                batch.add(insert, (f"p{(n + partition * 37) % 100}", n, VALUE))
            return session.execute(batch)

        shapes: dict[str, Callable[[int], object]] = {
            "one-row insert": lambda n: session.execute(insert, (f"p{n % 100}", n, VALUE)),
            "logged batch over 3 partitions": logged_batch,
            "one-row read": lambda n: session.execute(read, (f"p{n % 100}", n)),
        }
        age = node_minutes()
        print("node of scripts/cassandra: " + ("age unknown" if age is None else f"up {age:.0f} minutes"))
        for name, send in shapes.items():
            cuts = statistics.quantiles(timed(send, args.requests), n=100)
            print(
                f"{name}: p50 / p90 / p99 {cuts[49] * 1000:.2f} / {cuts[89] * 1000:.2f} / {cuts[98] * 1000:.2f} ms"
                f" ({args.requests} one at a time)"
            )
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
