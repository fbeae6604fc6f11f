"""What the write-behind tests of both stores write and expect (tests/test_write_behind.py,
tests/test_sqlite_write_behind.py)."""

from hiitrack.store import Store, WriteBatch
from hiitrack.store.cassandra import CassandraStore
from hiitrack.store.sqlite import SQLiteStore

__all__ = ["ROWS", "Totals", "added", "hits", "reads_in_column_order"]

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


async def reads_in_column_order(store: SQLiteStore | CassandraStore, scope: str) -> None:
    """Check that `store` (which folds only when told) reads a row's cells in column order, as
    reports need them (a series' points in time order): a column only the unfolded increments hold
    goes between the folded ones, not after them, and a cell that adds up to 0 (an erase) is left
    out."""
    await store.write(WriteBatch(scope, increments={b"r": {b"c1": 1, b"c3": 3, b"c5": 6, b"c7": 2}}))
    await store.fold()
    await store.write(WriteBatch(scope, increments={b"r": {b"c0": 7, b"c4": 4, b"c5": 1, b"c7": -2}}))
    await store.write(WriteBatch(scope, increments={b"r": {b"c9": 9}}))
    (row,) = await store.read_rows(scope, [b"r"])
    assert list(row.items()) == [(b"c0", 7), (b"c1", 1), (b"c3", 3), (b"c4", 4), (b"c5", 7), (b"c9", 9)]
    # The folded columns alone, one of them with an unfolded amount: in order too.
    await store.fold()
    await store.write(WriteBatch(scope, increments={b"r": {b"c3": 1}}))
    (row,) = await store.read_rows(scope, [b"r"], b"c1", b"c6")
    assert list(row.items()) == [(b"c1", 1), (b"c3", 4), (b"c4", 4), (b"c5", 7)]
