"""What the write-behind tests of both stores write and expect (tests/test_write_behind.py,
tests/test_sqlite_write_behind.py)."""

from hiitrack.store import Store, WriteBatch

__all__ = ["ROWS", "Totals", "added", "hits"]

ROWS = [b"first", b"second"]

Totals = dict[bytes, dict[bytes, int]]
"""Amounts by row, then column."""


async def hits(store: Store, scope: str, count: int, totals: Totals | None = None) -> Totals:
    """Write `count` batches (one commit each) of increments to both rows; `totals` with them
    added (new totals if none)."""
    totals = totals if totals is not None else {row: {} for row in ROWS}
    for n in range(count):
        column, amount = b"c%d" % (n % 7), 1 + n % 3
        await store.write(WriteBatch(scope, increments={row: {column: amount} for row in ROWS}))
        for row in ROWS:
            totals[row][column] = totals[row].get(column, 0) + amount
    return totals


def added(*all_totals: Totals) -> list[dict[bytes, int]]:
    """The rows as `read_rows` gives them, with every one of `all_totals` added."""
    return [
        {column: sum(totals[row].get(column, 0) for totals in all_totals) for column in sorted(all_totals[0][row])}
        for row in ROWS
    ]
