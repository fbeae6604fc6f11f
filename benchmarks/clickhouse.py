"""The exact funnel computed by ClickHouse's ``windowFunnel`` (chdb, in process) on the same NDJSON.

Each hit's events become rows ``(visitor, t, event, plan)`` of a MergeTree
table, t being the hit's millisecond × 256 plus the event's position in the
hit: so events of one hit keep their order, which HiiTrack's history has
and ClickHouse would otherwise pick its own way for equal times.  The window
is W ms × 256 + 127: a chain spans at most W ms exactly when its scaled
times differ by at most that (positions stay below 128).  The query groups
per visitor, then counts per level and per plan, as the bench's timed
figure.  Tests: tests/test_bench_smoke.py.
"""

import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import chdb
from chdb.session import Session

__all__ = ["VERSION", "ClickHouseFunnel", "Levels"]

VERSION = chdb.__version__
SCALE = 256
COLUMNS = "visitor_id String, time Decimal64(3), events Array(String), properties Map(String, String)"


@dataclass
class Levels:
    """Visitors by level ≥ j for j = 1…k, overall and by plan: the shape of HiiTrack's `conversion`."""

    visitors: list[int]
    by_plan: dict[str, list[int]]


def _at_least(counts: Counter, steps: int) -> list[int]:
    return [sum(n for level, n in counts.items() if level >= step) for step in range(1, steps + 1)]


class ClickHouseFunnel:
    """A chdb session in `folder` holding the events of the NDJSON files loaded so far."""

    def __init__(self, folder: Path, steps: list[str], window_seconds: int) -> None:
        self.steps = steps
        self.session = Session(str(folder))
        self.session.query("CREATE DATABASE IF NOT EXISTS bench")
        self.session.query(
            "CREATE TABLE bench.events (visitor String, t UInt64, event LowCardinality(String), "
            "plan LowCardinality(String)) ENGINE = MergeTree ORDER BY (visitor, t)"
        )
        conditions = ", ".join(f"event = '{step}'" for step in steps)
        window = window_seconds * 1000 * SCALE + SCALE // 2 - 1
        self.query = (
            "SELECT plan, level, count() FROM ("
            f"SELECT visitor, max(plan) AS plan, windowFunnel({window})(t, {conditions}) AS level "
            "FROM bench.events GROUP BY visitor) GROUP BY plan, level"
        )

    def load(self, path: Path) -> float:
        """Add the hits of one NDJSON file; the seconds it took."""
        started = time.monotonic()
        self.session.query(
            "INSERT INTO bench.events SELECT visitor_id, "
            f"toUInt64(time * 1000) * {SCALE} + position - 1, event, properties['plan'] "
            f"FROM file('{path}', 'JSONEachRow', '{COLUMNS}') "
            "ARRAY JOIN events AS event, arrayEnumerate(events) AS position"
        )
        return time.monotonic() - started

    def events(self) -> int:
        return int(str(self.session.query("SELECT count() FROM bench.events", "CSV")).strip())

    def levels(self) -> Levels:
        overall: Counter = Counter()
        by_plan: dict[str, Counter] = {}
        for line in str(self.session.query(self.query, "CSV")).splitlines():
            plan, level, count = line.split(",")
            plan = plan.strip('"')
            overall[int(level)] += int(count)
            by_plan.setdefault(plan, Counter())[int(level)] += int(count)
        steps = len(self.steps)
        return Levels(_at_least(overall, steps), {plan: _at_least(counts, steps) for plan, counts in by_plan.items()})

    def p50_ms(self, runs: int) -> float:
        """The query's median time over `runs` runs, after one run to warm up."""
        self.session.query(self.query, "CSV")
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            self.session.query(self.query, "CSV")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    def close(self) -> None:
        self.session.close()
