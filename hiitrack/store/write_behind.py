"""Counters written behind a journal: the increments not in the cells yet, and the fold that moves them.

Both stores answer a commit once its increments are durable in a journal
and add them to the cells later, in one fold a second, so that a cell
shared by many hits is written once.  Until then the process that journaled
them holds them here, summed by row in layers, and adds them to what it
reads.  How a layer reaches the cells is each store's own (`fold_layer`);
the order of layers, one fold at a time and the loop are here.

Under a load whose folds take long, folds come less often: a fold's cost
grows with the distinct cells it writes, far slower than with the hits it
sums, so fewer, larger folds cost the store less (docs/performance.md,
"Session 35").
Tests: tests/test_write_behind.py, tests/test_sqlite_write_behind.py,
tests/test_fold_pacing.py.
"""

import math
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from hiitrack.metrics import METRICS
from hiitrack.store.grouping import Rows
from hiitrack.store.interface import add_cells

__all__ = ["FOLD_SECONDS", "FOLD_SECONDS_MAX", "FOLD_SHARE", "Unfolded", "WriteBehind", "fold_gap", "with_amounts"]

FOLD_SECONDS = 1.0
"""How often journaled increments are folded into the counter cells, under a light load."""
FOLD_SHARE = 0.1
"""At most this share of the time is spent folding, as long as folds come at least every
FOLD_SECONDS_MAX: a fold that took longer than a tenth of FOLD_SECONDS is followed by ticks
of the loop without a fold."""
FOLD_SECONDS_MAX = 5.0
"""The longest time between two folds: how far another process's reports can fall behind."""

_log = Logger()


class Unfolded:
    """The increments of journal entries ``after < seq <= upto``, summed by row for reads and folds."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.upto = after
        self.rows: Rows = {}

    def __bool__(self) -> bool:
        return self.upto > self.after

    def add(self, seq: int, entry: Rows) -> None:
        for key, columns in entry.items():
            add_cells(self.rows, key, columns)
        self.upto = max(self.upto, seq)

    def amounts(self, scope: str, row: bytes, start: bytes, end: bytes | None) -> Iterator[tuple[bytes, int]]:
        """The row's unfolded (column, amount) pairs in ``start <= column < end`` (no `end`: to the last)."""
        for column, amount in self.rows.get((scope, row), {}).items():
            if start <= column and (end is None or column < end):
                yield column, amount


def with_amounts(cells: dict[bytes, int], amounts: Iterable[tuple[bytes, int]]) -> dict[bytes, int]:
    """A row's `cells`, in column order, with unfolded `amounts` added, as a read gives them: still in
    column order (a column only `amounts` holds goes in its place; only then are they sorted), and
    without the cells that add up to 0 (an erased visitor's increments taken back)."""
    new_column = False
    for column, amount in amounts:
        new_column = new_column or column not in cells
        cells[column] = cells.get(column, 0) + amount
    ordered = sorted(cells.items()) if new_column else cells.items()
    return {column: n for column, n in ordered if n}


class WriteBehind:
    """A store's unfolded layers, oldest first, and its fold loop.

    The last layer takes new commits; a fold seals it and folds the layers
    before it, one after another, each through `fold_layer` (which returns
    how many cells it set).  A layer whose fold failed stays, and is tried
    again first at the next fold.  The loop ticks every FOLD_SECONDS and
    skips the ticks that would make folds more than FOLD_SHARE of the time.
    """

    def __init__(self, reactor: Any, fold_layer: Callable[[Unfolded], Awaitable[int]], store: str) -> None:
        self.layers = [Unfolded(0)]
        self._fold_layer = fold_layer
        self._store = store
        self._one_fold = DeferredLock()
        self._rested_until = 0.0
        self.loop = LoopingCall(lambda: Deferred.fromCoroutine(self._tick()))
        self.loop.clock = reactor

    def add(self, seq: int, rows: Rows) -> None:
        """A journal entry, durable from now on: in reads and in the next fold."""
        self.layers[-1].add(seq, rows)

    def start(self) -> None:
        self.loop.start(FOLD_SECONDS, now=False)

    def stop(self) -> None:
        if self.loop.running:
            self.loop.stop()

    async def fold(self) -> None:
        """Fold everything journaled so far, oldest layer first (commits journaled meanwhile
        wait for the next fold)."""
        await self._one_fold.run(lambda: Deferred.fromCoroutine(self._fold()))

    async def _fold(self) -> None:
        through = self.layers[-1].upto
        while self.layers[0].after < through:
            # Commits from now on go to a new layer, unless an older one is
            # still waiting (its fold failed): then they keep merging into
            # the last, so memory is bounded by the cells they touch, not by
            # how long the store fails.
            if len(self.layers) == 1:
                self.layers.append(Unfolded(self.layers[-1].upto))
            layer = self.layers[0]
            if layer:
                started = time.monotonic()
                METRICS.fold_cells.observe(await self._fold_layer(layer))
                METRICS.fold_seconds.observe(time.monotonic() - started)
            self.layers.pop(0)

    async def _tick(self) -> None:
        started = self.loop.clock.seconds()
        if started < self._rested_until:
            return
        try:
            await self.fold()
        except Exception:
            # Kept, and tried again at the next tick.
            METRICS.fold_failures.inc()
            _log.failure("{store}: a fold of journaled increments failed", store=self._store)
        # Half a tick early: the tick the gap ends on may come a little before it.
        self._rested_until = started + fold_gap(self.loop.clock.seconds() - started) - FOLD_SECONDS / 2


def fold_gap(took: float) -> float:
    """Seconds from the start of a fold that took `took` seconds to the next one's, in whole ticks
    of the loop: enough that folding is at most FOLD_SHARE of the time, and at most FOLD_SECONDS_MAX."""
    ticks = math.ceil(took / FOLD_SHARE / FOLD_SECONDS - 1e-9)
    return min(FOLD_SECONDS_MAX, max(1, ticks) * FOLD_SECONDS)
