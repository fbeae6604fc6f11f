"""The counter rows a process read last, kept until the file's counters change.

A report reads the same rows again and again (a dashboard, analysts on the
same funnel), and reading them is most of a report's cost: CPython's
`sqlite3` makes a tuple, a bytes and an int of every cell, about 1.2 µs a
cell on the 2-core machine, 4 to 5 ms for the benchmark's 3,600-cell funnel.
Each row is kept with the `changes` number (schema v005) of the snapshot it
was read in, and is used only by a read whose own snapshot has the same
number: any process's write to `counters` moves the number, so a kept row is
never stale.  A fold of this process moves it by exactly one, and adds
amounts it knows: rows kept at the number before it take those amounts and
stay kept (`advance`), so a steady ingest does not empty the cache once a
second.  Rows are kept at the highest number read so far only, all sharing
one number object, so that a fold moves them all by one assignment and
costs the rows it touched, not the rows kept.  Bounded by cells, least
recently used first out.

Rows are shared by every read that gets them: callers never change them.
`get` may run on a store thread while the reactor thread puts or advances:
each step of those is one operation on a dict or an attribute, atomic under
the GIL, in an order that never shows a row at a number it does not hold.
Tests: tests/test_sqlite_cells_cache.py.
"""

from collections import OrderedDict

from hiitrack.store.grouping import Rows
from hiitrack.store.write_behind import with_amounts

__all__ = ["CACHED_CELLS", "CellsCache"]

CACHED_CELLS = 100_000
"""Cells kept at most: 12.8 MB when full of 49-byte columns, 128 bytes a cell (a column, its count
and its slot in the row's dict), by `tracemalloc` over 111 rows of 900 random cells."""

Key = tuple[str, bytes]
"""(scope, row)"""


class _Number:
    """A `changes` number shared by every row kept at it, so that a fold moves them all at once."""

    __slots__ = ("changes",)

    def __init__(self, changes: int) -> None:
        self.changes = changes


class CellsCache:
    """Its size and length count cells; its hits and misses, rows (counted by the store, on the
    reactor thread: /metrics shows them as the cache `counter_rows`)."""

    def __init__(self, size: int = CACHED_CELLS) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._cells = 0
        self._rows: OrderedDict[Key, tuple[_Number, dict[bytes, int]]] = OrderedDict()
        # The highest number read so far: rows are kept at it alone.
        self._latest = _Number(-1)

    def __len__(self) -> int:
        return self._cells

    def get(self, key: Key, changes: int) -> dict[bytes, int] | None:
        """The row's cells as a snapshot numbered `changes` has them, if kept."""
        entry = self._rows.get(key)
        return entry[1] if entry is not None and entry[0].changes == changes else None

    def put(self, key: Key, changes: int, cells: dict[bytes, int]) -> None:
        """Keep a row as read in a snapshot numbered `changes` (or mark it used, if kept so
        already).  A read older than the highest number read so far (it ended late) keeps
        nothing; a newer one leaves the rows kept before it to be read again."""
        if changes < self._latest.changes:
            return
        if changes > self._latest.changes:
            self._latest = _Number(changes)
        if key in self._rows:
            self._forget(key)
        if len(cells) > self.size:
            return
        self._rows[key] = (self._latest, cells)
        self._cells += len(cells)
        self._keep_within_size()

    def advance(self, before: int, after: int, added: Rows) -> None:
        """A fold took the counters from `before` to `after` by adding `added`: the rows kept at
        `before` are the rows at `after` with its amounts.  Costs the rows of the fold, not the
        rows kept: those it did not touch move with their shared number."""
        latest = self._latest
        if latest.changes != before:
            # Kept before another change, or read after this fold already: nothing moves.
            return
        # A store thread may look a row up meanwhile: each row the fold touched is first kept at
        # a number of its own, `after`, then every row at once moves to `after`, and only then
        # do the touched ones join them; no lookup sees a row at a number it does not hold.
        moved = _Number(after)
        touched = []
        for key, amounts in added.items():
            entry = self._rows.get(key)
            if entry is not None and entry[0] is latest:
                cells = with_amounts(dict(entry[1]), amounts.items())
                self._cells += len(cells) - len(entry[1])
                # In place: a fold is no use of the row, and keeps its place in the order.
                self._rows[key] = (moved, cells)
                touched.append(key)
        latest.changes = after
        for key in touched:
            self._rows[key] = (latest, self._rows[key][1])
        self._keep_within_size()

    def _keep_within_size(self) -> None:
        while self._cells > self.size:
            self._forget(next(iter(self._rows)))

    def _forget(self, key: Key) -> None:
        self._cells -= len(self._rows.pop(key)[1])
