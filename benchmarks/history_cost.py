"""What the visitor history costs: import speed and bytes on disk per stored event.

Not part of the installed package.  ``python -m benchmarks.history_cost
--store sqlite|cassandra --events N`` writes N events as generated NDJSON hits
(1 to 5 events a hit, 3 on average, from 30 names; a `plan` value on a third
of the hits; 10,000 visitors; times increasing over the last 30 days), makes a
user, applies the file with the operator command ``python -m hiitrack.admin
import`` (a subprocess, timed whole) and then measures the `hits` table:

- SQLite: the pages of `hits` and of its primary-key index, from `dbstat`;
- Cassandra (keyspace `hiitrack_cost` on 127.0.0.1:9042, dropped at the end):
  without nodetool, the table is made to flush its memtable by setting
  `memtable_flush_period_in_ms`, and the SSTable files under the node's data
  folder are summed once their sizes stop changing.

The load average is printed next to the speed, because the machine may be
shared.  Tests: tests/test_history_cost.py.
"""

import argparse
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from twisted.internet import defer, task

from benchmarks.importer import import_file
from hiitrack.app import HiiTrack
from hiitrack.store import open_store

__all__ = ["generate_hits", "main", "sqlite_history_sizes"]

USER = "costbench"
BUCKET = "site"
KEYSPACE = "hiitrack_cost"
CASSANDRA_URI = f"cassandra://127.0.0.1/{KEYSPACE}"
CASSANDRA_DATA = Path.home() / ".cache/hiitrack/cassandra/data/data"
VISITORS = 10_000
EVENT_NAMES = [f"Step {number:02d}" for number in range(30)]
PLANS = ["free", "starter", "pro", "team", "enterprise"]
SECONDS_COVERED = 30 * 86_400
FLUSH_TIMEOUT = 180.0


def generate_hits(events: int, seed: int = 11) -> list[str]:
    """NDJSON lines holding exactly `events` events, in increasing time order."""
    rng = random.Random(seed)
    lines: list[str] = []
    written = 0
    end = time.time()
    clock = end - SECONDS_COVERED
    step = SECONDS_COVERED / max(events / 3, 1)
    while written < events:
        names = rng.choices(EVENT_NAMES, k=min(rng.randint(1, 5), events - written))
        clock = min(clock + rng.uniform(0, 2 * step), end)
        hit: dict = {"visitor_id": f"v{rng.randrange(VISITORS)}", "time": round(clock, 3), "events": names}
        if rng.random() < 1 / 3:
            hit["properties"] = {"plan": rng.choice(PLANS)}
        lines.append(json.dumps(hit, separators=(",", ":")) + "\n")
        written += len(names)
    return lines


async def _create_user(uri: str) -> None:
    app = HiiTrack(open_store(uri))
    await app.start()
    try:
        if await app.accounts.user(USER) is None:
            await app.accounts.create_user(USER, "cost-benchmark-password")
    finally:
        await app.stop()


def sqlite_history_sizes(path: Path) -> dict[str, int]:
    """Rows, and bytes in pages, of the `hits` table and its index (dbstat)."""
    with sqlite3.connect(path) as connection:
        pages = dict(
            connection.execute(
                "SELECT name, SUM(pgsize) FROM dbstat WHERE name IN ('hits', 'sqlite_autoindex_hits_1') GROUP BY name"
            ).fetchall()
        )
        rows = connection.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
    return {
        "rows": rows,
        "table bytes": pages.get("hits", 0),
        "index bytes": pages.get("sqlite_autoindex_hits_1", 0),
        "file bytes": path.stat().st_size,
    }


def _sstable_bytes(table_folder: Path) -> tuple[int, int]:
    """Bytes of all SSTable components, and of the Data.db files alone."""
    files = [entry for entry in table_folder.glob("*") if entry.is_file()]
    return sum(entry.stat().st_size for entry in files), sum(
        entry.stat().st_size for entry in files if entry.name.endswith("-Data.db")
    )


def _cassandra_sizes(data_folder: Path) -> dict[str, int]:
    """Rows of `hits`, and its SSTable bytes after a flush forced through the schema.

    The folder is named by the table's id: a dropped keyspace's old folders stay.
    """
    from cassandra.cluster import Cluster

    cluster = Cluster(["127.0.0.1"])
    session = cluster.connect(KEYSPACE)
    try:
        rows = session.execute("SELECT COUNT(*) FROM hits", timeout=120).one()[0]
        session.execute("ALTER TABLE hits WITH memtable_flush_period_in_ms = 2000")
        table_id = session.execute(
            "SELECT id FROM system_schema.tables WHERE keyspace_name = %s AND table_name = 'hits'", [KEYSPACE]
        ).one()[0]
        folder = data_folder / KEYSPACE / f"hits-{table_id.hex}"
        deadline = time.monotonic() + FLUSH_TIMEOUT
        sizes = _sstable_bytes(folder)
        while time.monotonic() < deadline:
            time.sleep(5)
            latest = _sstable_bytes(folder)
            if latest == sizes and latest[1] > 0:
                break
            sizes = latest
        else:
            raise SystemExit("the hits table did not flush in time")
        return {"rows": rows, "sstable bytes": sizes[0], "data.db bytes": sizes[1]}
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
        cluster.shutdown()


def _drop_keyspace() -> None:
    from cassandra.cluster import Cluster

    cluster = Cluster(["127.0.0.1"])
    try:
        cluster.connect().execute(f"DROP KEYSPACE IF EXISTS {KEYSPACE}", timeout=120)
    finally:
        cluster.shutdown()


async def _measure(reactor: object, arguments: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="hiitrack-cost-") as folder:
        hits_file = Path(folder) / "hits.ndjson"
        hits_file.write_text("".join(generate_hits(arguments.events)), encoding="utf-8")
        database = Path(folder) / "hiitrack.db"
        if arguments.store == "sqlite":
            uri = f"sqlite:{database}"
        else:
            _drop_keyspace()
            uri = CASSANDRA_URI
        await _create_user(uri)
        load_before = os.getloadavg()
        imported = import_file(uri, USER, BUCKET, hits_file)
        load_after = os.getloadavg()
        seconds, summary, events = imported.seconds, imported.summary, imported.events
        if arguments.store == "sqlite":
            sizes = sqlite_history_sizes(database)
        else:
            sizes = _cassandra_sizes(arguments.cassandra_data)
    print(f"store {arguments.store}: {summary}")
    print(
        f"import: {events} events in {seconds:.1f} s = {events / seconds:.0f} events/s"
        f" (whole command, start-up included); load average before {load_before[0]:.2f}, after {load_after[0]:.2f}"
    )
    history = sizes["table bytes"] + sizes["index bytes"] if arguments.store == "sqlite" else sizes["sstable bytes"]
    print("history: " + ", ".join(f"{name} {value}" for name, value in sizes.items()))
    per_hit = history / max(sizes["rows"], 1)
    print(f"history bytes per stored event: {history / max(events, 1):.1f} ({per_hit:.1f} a stored hit)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.history_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], required=True)
    parser.add_argument("--events", type=int, default=100_000, help="events to import (default 100,000)")
    parser.add_argument("--cassandra-data", type=Path, default=CASSANDRA_DATA, help="the node's data folder")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)
    task.react(lambda reactor: defer.ensureDeferred(_measure(reactor, arguments)))


if __name__ == "__main__":
    main()
