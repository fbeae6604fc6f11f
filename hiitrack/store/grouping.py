"""Group commit: many requests' writes become one store write.

While one commit is in flight, new batches wait; when it ends they all go
out together, merged.  Under load a commit carries many requests and the
store's per-commit cost (an fsync, a round trip) is shared; with no load a
batch goes out at once.  A store that can make only so much one atomic
write (Cassandra's logged batches) has a commit cut into *units* of whole
batches, each merged on its own.  Both backends use this.  Tests:
tests/test_store_contract.py, tests/test_write_behind.py.
"""

import time
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.python.failure import Failure

from hiitrack.metrics import METRICS
from hiitrack.store.interface import WriteBatch, add_cells
from hiitrack.store.kinds import Kind

__all__ = ["GroupCommitter", "MergedWrite", "Rows", "merge"]

Rows = dict[tuple[str, bytes], dict[bytes, int]]
"""Amounts by (scope, row), then column: each row's key once, as the stores write and journal them."""


class MergedWrite:
    """The sum of several batches: records and deletions last-wins, increments added.

    A record is in `records` or in `deletions`, never both.  A `cleared`
    part (every record of a kind bound to a part) is removed by the store
    before `records` are put: records of it put by earlier batches are
    dropped here, so each batch's order holds.
    """

    def __init__(self) -> None:
        self.records: dict[tuple[str, Kind, str], bytes] = {}
        self.deletions: set[tuple[str, Kind, str]] = set()
        self.cleared: set[tuple[str, Kind]] = set()
        # Increments by row, as merged: stores journal and write them so, without grouping again.
        self.rows: Rows = {}

    @property
    def cells(self) -> int:
        """How many counter cells the increments touch."""
        return sum(len(columns) for columns in self.rows.values())

    def __len__(self) -> int:
        return len(self.records) + len(self.deletions) + len(self.cleared) + self.cells

    def add(self, batch: WriteBatch) -> None:
        """Merge one more batch in, after those already merged."""
        for kind in batch.cleared:
            self.cleared.add((batch.scope, kind))
            for address in [address for address in self.records if address[:2] == (batch.scope, kind)]:
                del self.records[address]
        for kind, key in batch.deletions:
            self.records.pop((batch.scope, kind, key), None)
            self.deletions.add((batch.scope, kind, key))
        for (kind, key), value in batch.records.items():
            self.deletions.discard((batch.scope, kind, key))
            self.records[batch.scope, kind, key] = value
        for row, columns in batch.increments.items():
            add_cells(self.rows, (batch.scope, row), columns)

    def batches(self) -> list[WriteBatch]:
        """The merged write again as batches, one per scope."""
        batches: dict[str, WriteBatch] = {}
        increments: dict[str, dict[bytes, dict[bytes, int]]] = {}

        def of(scope: str) -> WriteBatch:
            if scope not in batches:
                batches[scope] = WriteBatch(scope, increments=increments.setdefault(scope, {}))
            return batches[scope]

        for scope, kind in self.cleared:
            of(scope).cleared.add(kind)
        for scope, kind, key in self.deletions:
            of(scope).deletions.add((kind, key))
        for (scope, kind, key), value in self.records.items():
            of(scope).records[kind, key] = value
        for (scope, row), columns in self.rows.items():
            of(scope)
            increments[scope][row] = dict(columns)
        return list(batches.values())


def merge(batches: Iterable[WriteBatch]) -> MergedWrite:
    merged = MergedWrite()
    for batch in batches:
        merged.add(batch)
    return merged


class GroupCommitter:
    """Feeds `commit` the units of one commit at a time; answers each batch after it.

    `max_batches` bounds how many requests one commit carries, so that a
    burst does not become one huge transaction.  With `weigh`, consecutive
    batches are merged into one unit while their weights stay within
    `unit_weight` (a heavier batch is a unit alone); without it a commit is
    one unit.  With `reactor`, a commit that would start at once waits for
    the end of the reactor's turn, so that the batches of one turn go
    together: a commit that ends before `write` returns (SQLite's, made on
    the reactor thread) would otherwise carry one batch.  With `fill` (and
    `reactor`), a commit ending while fewer than `fill` batches wait lets
    the next one start `fill_wait` seconds later, with those that came
    meanwhile: under load each commit's own cost (a statement built, sent
    and answered) is shared by more requests; with one request at a time
    nothing waits, since none is waiting when a commit ends.
    """

    def __init__(
        self,
        commit: Callable[[list[MergedWrite]], Deferred],
        max_batches: int = 2000,
        weigh: Callable[[WriteBatch], int] | None = None,
        unit_weight: int = 0,
        reactor: Any = None,
        fill: int = 0,
        fill_wait: float = 0.0,
    ) -> None:
        if fill and reactor is None:
            raise ValueError("waiting for a commit to fill needs a reactor")
        self._commit = commit
        self._max_batches = max_batches
        self._weigh = weigh
        self._unit_weight = unit_weight
        self._waiting: list[tuple[WriteBatch, Deferred]] = []
        self._in_flight: Deferred | None = None
        self._reactor = reactor
        self._fill = fill
        self._fill_wait = fill_wait
        self._start_due = False
        self.commits = 0
        self.batches = 0

    def write(self, batch: WriteBatch) -> Deferred:
        done: Deferred = Deferred()
        self._waiting.append((batch, done))
        if self._in_flight is None and not self._start_due:
            if self._reactor is None:
                self._next()
            else:
                self._start_after(0)
        return done

    def _start_after(self, seconds: float) -> None:
        """The next commit in `seconds` (0: at the end of the reactor's turn), with every batch
        waiting by then."""
        self._start_due = True
        self._reactor.callLater(seconds, self._due)

    def _due(self) -> None:
        self._start_due = False
        if self._in_flight is None and self._waiting:
            self._next()

    def drain(self) -> Deferred:
        """Fires once every batch written so far is committed."""
        if self._in_flight is None and not self._waiting:
            return succeed(None)
        return self.write(WriteBatch(scope=""))

    def _next(self) -> None:
        group = self._waiting[: self._max_batches]
        del self._waiting[: self._max_batches]
        self.commits += 1
        self.batches += len(group)
        units = self._units([batch for batch, _ in group])
        METRICS.commit_batches.observe(len(group))
        METRICS.commit_cells.observe(sum(len(unit) for unit in units))
        started = time.monotonic()
        self._in_flight = self._commit(units)
        self._in_flight.addBoth(self._finished, group, started)

    def _units(self, batches: list[WriteBatch]) -> list[MergedWrite]:
        if self._weigh is None:
            return [merge(batches)]
        units: list[MergedWrite] = []
        unit, weight = MergedWrite(), 0
        for batch in batches:
            batch_weight = self._weigh(batch)
            if unit and weight + batch_weight > self._unit_weight:
                units.append(unit)
                unit, weight = MergedWrite(), 0
            unit.add(batch)
            weight += batch_weight
        return [*units, unit]

    def _finished(self, result: object, group: list[tuple[WriteBatch, Deferred]], started: float) -> None:
        METRICS.commit_seconds.observe(time.monotonic() - started)
        if isinstance(result, Failure):
            METRICS.commit_failures.inc()
        self._in_flight = None
        if len(self._waiting) >= max(1, self._fill):
            self._next()
        elif self._waiting:
            self._start_after(self._fill_wait)
        for _, done in group:
            if isinstance(result, Failure):
                done.errback(result)
            else:
                done.callback(None)
