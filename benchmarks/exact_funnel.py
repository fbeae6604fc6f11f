"""The exact funnel at scale: HiiTrack's report read next to ClickHouse's ``windowFunnel``, and backfill.

One run (``scripts/bench --exact``), per store:

1. a fresh server makes the user, an empty bucket and the saved funnel
   step1 → step2 → step3 → step4 (sequential, 1-hour window, split by the
   50-value `plan`), so the funnel is counted as the hits arrive;
2. the server stops and the operator's import (benchmarks/importer.py) applies
   the cached NDJSON chunks (benchmarks/dataset.py) up to each measured
   point (10^6 events, then more); chdb loads the same files
   (benchmarks/clickhouse.py);
3. at each point a server reads ``GET /{u}/{b}/funnel/{name}`` (and the
   exact report alone, ``…/conversion``) with wrk from one connection
   (p50/p99), chdb runs its query several times (p50), and
   HiiTrack's `conversion.visitors` and `by_value` must equal ClickHouse's
   counts: any difference fails the run;
4. after the last point a second funnel of the same definition is saved,
   which the server backfills from the histories: the time until its
   `conversion.backfill.state` is ``done`` gives visitors/s and events/s,
   and its report must then equal the live funnel's.

Tests: tests/test_bench_smoke.py.
"""

import os
import time
from pathlib import Path

from benchmarks.clickhouse import VERSION, ClickHouseFunnel, Levels
from benchmarks.client import basic, create_user, http
from benchmarks.dataset import STEPS, chunk_path
from benchmarks.history_cost import sqlite_history_sizes
from benchmarks.importer import import_file
from benchmarks.phases import Bench
from benchmarks.servers import Server, start_hiitrack
from hiitrack.ids import encode_id, property_id, value_id

__all__ = ["TARGETS", "ExactFunnel"]

USER, BUCKET = "bench", "exact"
LIVE, BACKFILLED = "signup", "signup-backfilled"
WINDOW_SECONDS = 3600
CLICKHOUSE_RUNS = 7
BACKFILL_POLL_SECONDS = 0.5
TARGETS = {"clickhouse_ratio": 20.0, "scale_ratio": 0.9}


def _funnel_form() -> dict[str, str]:
    # Repeated `event` keys cannot go in a dict: the steps go in the path's query.
    return {"window": str(WINDOW_SECONDS), "property": "plan"}


def _funnel_route(name: str) -> str:
    return f"/{USER}/{BUCKET}/funnel/{name}"


def _save(port: int, name: str) -> None:
    steps = "&".join(f"event={step}" for step in STEPS)
    status, body = http(port, "POST", f"{_funnel_route(name)}?{steps}", _funnel_form(), auth=basic(USER))
    if status != 201:
        raise RuntimeError(f"could not save funnel {name}: {status} {body}")


def _conversion(port: int, name: str) -> dict:
    status, body = http(port, "GET", _funnel_route(name), auth=basic(USER))
    if status != 200 or "conversion" not in body:
        raise RuntimeError(f"reading funnel {name}: {status} {body}")
    return body["conversion"]


def mismatches(conversion: dict, levels: Levels) -> list[str]:
    """Where HiiTrack's exact report differs from ClickHouse's levels (empty: they agree)."""
    found = []
    if conversion["visitors"] != levels.visitors:
        found.append(f"visitors: HiiTrack {conversion['visitors']}, ClickHouse {levels.visitors}")
    for plan, counts in sorted(levels.by_plan.items()):
        ours = conversion.get("by_value", {}).get(encode_id(value_id(property_id("plan"), plan)))
        if ours != counts:
            found.append(f"plan {plan}: HiiTrack {ours}, ClickHouse {counts}")
    return found


class ExactFunnel:
    """The exact-funnel runs of one benchmark, writing into the bench's report."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.args = bench.args
        self.report = bench.report

    def run(self, kind: str) -> None:
        chunk, points = self.args.exact_chunk, self.args.exact_events
        print(f"exact funnel on {kind}: {', '.join(f'{point:,}' for point in points)} events", flush=True)
        uri = self.bench.store_uri(kind, f"exact-{kind}")
        server = start_hiitrack(self.bench.work, uri, f"exact-{kind}")
        try:
            create_user(server.port, USER)
            status, body = http(server.port, "POST", f"/{USER}/{BUCKET}", {}, auth=basic(USER))
            if status != 201:
                raise RuntimeError(f"could not create bucket {BUCKET}: {status} {body}")
            _save(server.port, LIVE)
        finally:
            server.stop()
        clickhouse = ClickHouseFunnel(self.bench.work / f"chdb-{kind}", STEPS, WINDOW_SECONDS)
        try:
            p50s: dict[int, float] = {}
            clickhouse_p50s: dict[int, float] = {}
            imported = 0
            for point in points:
                imported = self._import(kind, uri, clickhouse, imported, point // chunk, chunk)
                if kind == "sqlite":
                    self._history_bytes(Path(uri.removeprefix("sqlite:")), point)
                p50s[point], clickhouse_p50s[point] = self._measure(kind, uri, clickhouse, point)
            self._ratios(kind, points, p50s, clickhouse_p50s)
            self._backfill(kind, uri, points[-1])
        finally:
            clickhouse.close()

    def _import(self, kind: str, uri: str, clickhouse: ClickHouseFunnel, done: int, wanted: int, chunk: int) -> int:
        """Import chunks `done` … `wanted` - 1 into the store and chdb; the chunks imported now."""
        seconds = events = 0.0
        for index in range(done, wanted):
            path = chunk_path(index, chunk)
            result = import_file(uri, USER, BUCKET, path)
            seconds, events = seconds + result.seconds, events + result.events
            clickhouse.load(path)
            print(f"  chunk {index}: {result.summary} in {result.seconds:.0f}s", flush=True)
        if events != (wanted - done) * chunk:
            self.report.failures.append(f"{kind} import: {events:.0f} events applied, {(wanted - done) * chunk} sent")
        self.report.row(
            f"{kind} import of events {done * chunk:,} to {wanted * chunk:,} (1 saved exact funnel)",
            f"{events / seconds:,.0f} events/s ({seconds:.0f}s, start-up included)",
        )
        return wanted

    def _history_bytes(self, database: Path, events: int) -> None:
        sizes = sqlite_history_sizes(database)
        history = sizes["table bytes"] + sizes["index bytes"]
        self.report.row(
            f"sqlite history bytes per stored event at {events:,} events",
            f"{history / events:.1f} (hits table and its index; whole file {sizes['file bytes'] / events:,.0f})",
        )

    def _measure(self, kind: str, uri: str, clickhouse: ClickHouseFunnel, point: int) -> tuple[float, float]:
        """HiiTrack's p50 and ClickHouse's p50 (ms) at `point` events, after checking they agree."""
        if clickhouse.events() != point:
            self.report.failures.append(f"chdb holds {clickhouse.events()} events, not {point}")
        server = start_hiitrack(self.bench.work, uri, f"exact-{kind}-read")
        try:
            conversion = _conversion(server.port, LIVE)
            if conversion["backfill"]["state"] != "done":
                self.report.failures.append(
                    f"{kind} funnel saved before the data is not done: {conversion['backfill']}"
                )
            levels = clickhouse.levels()
            for problem in mismatches(conversion, levels):
                self.report.failures.append(f"{kind} at {point:,} events, exact funnel ≠ windowFunnel: {problem}")
            load = self.bench.read_report(server.port, USER, _funnel_route(LIVE), connections=1)
            alone = self.bench.read_report(server.port, USER, f"{_funnel_route(LIVE)}/conversion", connections=1)
        finally:
            server.stop()
        for reads in (load, alone):
            if reads.bad or not reads.requests:
                self.report.failures.append(
                    f"{kind} funnel reads at {point:,}: {reads.bad} errors, {reads.requests} answers"
                )
        ours = load.p50_us / 1000
        theirs = clickhouse.p50_ms(CLICKHOUSE_RUNS)
        self.report.row(
            f"{kind} exact funnel at {point:,} events ({levels.visitors} visitors by step): p50 / p99",
            f"{ours:.1f} / {load.p99_us / 1000:.1f} ms (wrk, 1 connection, {load.requests} reads;"
            f" load average {os.getloadavg()[0]:.1f})",
        )
        self.report.row(
            f"ClickHouse windowFunnel at {point:,} events: p50 of {CLICKHOUSE_RUNS}",
            f"{theirs:.0f} ms (chdb {VERSION}, the same counts)",
        )
        self.report.row(
            f"{kind} the exact report alone (…/conversion) at {point:,} events: p50 / p99",
            f"{alone.p50_us / 1000:.1f} / {alone.p99_us / 1000:.1f} ms;"
            f" ClickHouse p50 ÷ its p50 = {theirs / max(alone.p50_us / 1000, 0.001):.0f}",
        )
        return ours, theirs

    def _ratios(self, kind: str, points: list[int], p50s: dict[int, float], clickhouse_p50s: dict[int, float]) -> None:
        """ClickHouse's p50 ÷ HiiTrack's at the last point; HiiTrack's speed at the last ÷ at the first (if two)."""
        first, last = points[0], points[-1]
        self.report.ratio(
            f"ClickHouse p50 ÷ {kind} exact funnel p50 at {last:,} events (ms)",
            clickhouse_p50s[last],
            p50s[last],
            TARGETS["clickhouse_ratio"],
        )
        if first != last:
            self.report.ratio(
                f"{kind} exact funnel speed at {last:,} ÷ at {first:,} events (p50 at {first:,} ÷ p50 at {last:,}, ms)",
                p50s[first],
                p50s[last],
                TARGETS["scale_ratio"],
            )

    def _backfill(self, kind: str, uri: str, events: int) -> None:
        """Save the same funnel again after the data, and time its backfill until it is done."""
        server = start_hiitrack(self.bench.work, uri, f"exact-{kind}-backfill")
        try:
            _save(server.port, BACKFILLED)
            started = time.monotonic()
            state = self._wait_for_backfill(server, started + self.args.backfill_timeout)
            took = time.monotonic() - started
            if state["state"] != "done":
                self.report.row(
                    f"{kind} backfill of {events:,} events",
                    f"not done after {took:.0f}s: {state} (is the backfill on this branch?)",
                )
                return
            visitors = state["visitors"]
            self.report.row(
                f"{kind} backfill of {events:,} events, {visitors:,} visitors",
                f"{took:.1f}s: {visitors / took:,.0f} visitors/s, {events / took:,.0f} events/s",
            )
            live, backfilled = _conversion(server.port, LIVE), _conversion(server.port, BACKFILLED)
            for key in ("visitors", "by_value", "time_to_convert"):
                if live[key] != backfilled[key]:
                    self.report.failures.append(f"{kind} backfilled funnel's {key} differs from the live one's")
        finally:
            server.stop()

    def _wait_for_backfill(self, server: Server, deadline: float) -> dict:
        while True:
            state = _conversion(server.port, BACKFILLED)["backfill"]
            if state["state"] == "done" or time.monotonic() >= deadline:
                return state
            time.sleep(BACKFILL_POLL_SECONDS)
