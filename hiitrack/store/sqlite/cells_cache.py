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
second.  Bounded by cells, least recently used first out.

Rows are shared by every read that gets them: callers never change them.
`get` may run on a store thread while the reactor thread puts or advances;
each of them is one or a few operations on a dict, atomic under the GIL.
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


class CellsCache:
    """Its size and length count cells; its hits and misses, rows (counted by the store, on the
    reactor thread: /metrics shows them as the cache `counter_rows`)."""

    def __init__(self, size: int = CACHED_CELLS) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._cells = 0
        self._rows: OrderedDict[Key, tuple[int, dict[bytes, int]]] = OrderedDict()

    def __len__(self) -> int:
        return self._cells

    def get(self, key: Key, changes: int) -> dict[bytes, int] | None:
        """The row's cells as a snapshot numbered `changes` has them, if kept."""
        entry = self._rows.get(key)
        return entry[1] if entry is not None and entry[0] == changes else None

    def put(self, key: Key, changes: int, cells: dict[bytes, int]) -> None:
        """Keep a row as read in a snapshot numbered `changes` (or mark it used, if kept so
        already); a read that ended late, older than what is kept, keeps nothing."""
        kept = self._rows.get(key)
        if kept is not None:
            if kept[0] > changes:
                return
            self._forget(key)
        if len(cells) > self.size:
            return
        self._rows[key] = (changes, cells)
        self._cells += len(cells)
        while self._cells > self.size:
            self._forget(next(iter(self._rows)))

    def advance(self, before: int, after: int, added: Rows) -> None:
        """A fold took the counters from `before` to `after` by adding `added`: the rows kept
        at `before` are the rows at `after` with its amounts."""
        for key, (changes, cells) in list(self._rows.items()):
            if changes != before:
                continue
            amounts = added.get(key)
            if amounts:
                cells = with_amounts(dict(cells), amounts.items())
                self._cells += len(cells) - len(self._rows[key][1])
            # In place: a fold is no use of the row, and keeps its place in the order.
            self._rows[key] = (after, cells)
        while self._cells > self.size:
            self._forget(next(iter(self._rows)))

    def _forget(self, key: Key) -> None:
        self._cells -= len(self._rows.pop(key)[1])
