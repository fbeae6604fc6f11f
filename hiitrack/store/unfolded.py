"""Journaled increments that are not in the counter cells yet: what a write-behind store reads and folds.

Both stores answer a commit once its increments are durable in a journal
and add them to the cells later, in one fold a second, so that a cell
shared by many hits is written once.  Until then the process that journaled
them holds them here, summed by row, and adds them to what it reads.
Tests: tests/test_write_behind.py.
"""

from collections.abc import Iterable, Mapping

__all__ = ["Increments", "Rows", "Unfolded", "by_row"]

Increments = Mapping[tuple[str, bytes, bytes], int]
"""Amounts by (scope, row, column), as a commit has them."""
Rows = dict[tuple[str, bytes], dict[bytes, int]]
"""Amounts by (scope, row), then column: a journal entry, each row's key once."""


def by_row(increments: Iterable[tuple[tuple[str, bytes, bytes], int]]) -> Rows:
    """Increments grouped by (scope, row)."""
    rows: Rows = {}
    for (scope, row, column), amount in increments:
        cells = rows.get((scope, row))
        if cells is None:
            cells = rows[scope, row] = {}
        cells[column] = amount
    return rows


class Unfolded:
    """The increments of journal entries ``after < seq <= upto``, summed by row for reads and folds."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.upto = after
        self.rows: Rows = {}

    def __bool__(self) -> bool:
        return self.upto > self.after

    def add(self, seq: int, entry: Rows) -> None:
        rows = self.rows
        for key, columns in entry.items():
            cells = rows.get(key)
            if cells is None:
                rows[key] = dict(columns)
                continue
            for column, amount in columns.items():
                cells[column] = cells.get(column, 0) + amount
        self.upto = max(self.upto, seq)

    def cells(self, scope: str, row: bytes) -> Mapping[bytes, int]:
        """The row's unfolded amounts by column (empty if none)."""
        return self.rows.get((scope, row), {})
