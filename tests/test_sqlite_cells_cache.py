"""The SQLite store's kept counter rows (hiitrack.store.sqlite.cells_cache): never stale.

The cache itself first, then the store reading through it against a brute-force
model of every write, with a second process writing to the same file, folds, a
drop, and reads of column ranges in between.
"""

import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest_twisted

from hiitrack.store import WriteBatch
from hiitrack.store.sqlite import SQLiteStore
from hiitrack.store.sqlite.cells_cache import CellsCache

SCOPE = "u/b"
ROWS = [b"r0", b"r1", b"r2"]
COLUMNS = [b"c0", b"c1", b"c2", b"c3", b"c4"]


def test_a_row_is_given_only_to_a_snapshot_with_its_number():
    cache = CellsCache()
    cache.put((SCOPE, b"r"), 3, {b"c": 1})
    assert cache.get((SCOPE, b"r"), 3) == {b"c": 1}
    assert cache.get((SCOPE, b"r"), 4) is None
    assert cache.get((SCOPE, b"other"), 3) is None
    # A read that ended late does not replace a newer row.
    cache.put((SCOPE, b"r"), 2, {b"c": 0})
    assert cache.get((SCOPE, b"r"), 3) == {b"c": 1}
    cache.put((SCOPE, b"r"), 5, {b"c": 2})
    assert (cache.get((SCOPE, b"r"), 3), cache.get((SCOPE, b"r"), 5)) == (None, {b"c": 2})
    assert len(cache) == 1


def test_the_cells_kept_are_bounded_least_recently_used_first_out():
    cache = CellsCache(size=7)
    three = {b"a": 1, b"b": 1, b"c": 1}
    cache.put((SCOPE, b"first"), 1, three)
    cache.put((SCOPE, b"second"), 1, three)
    cache.put((SCOPE, b"first"), 1, three)  # read again: used last
    cache.put((SCOPE, b"third"), 1, three)
    assert [cache.get((SCOPE, row), 1) is not None for row in (b"first", b"second", b"third")] == [True, False, True]
    assert len(cache) == 6
    cache.put((SCOPE, b"huge"), 1, {bytes([n]): 1 for n in range(8)})
    assert cache.get((SCOPE, b"huge"), 1) is None
    assert len(cache) == 6


def test_a_fold_moves_every_row_kept_at_the_number_before_it_with_its_amounts():
    cache = CellsCache()
    cache.put((SCOPE, b"touched"), 4, {b"c1": 1, b"c3": 3})
    cache.put((SCOPE, b"untouched"), 4, {b"c1": 1})
    added = {(SCOPE, b"touched"): {b"c2": 2, b"c3": -3}, (SCOPE, b"never read"): {b"c1": 9}}
    cache.advance(4, 5, added)
    # In column order, the new column in its place, the cell that adds up to 0 gone.
    assert list(cache.get((SCOPE, b"touched"), 5).items()) == [(b"c1", 1), (b"c2", 2)]
    assert cache.get((SCOPE, b"untouched"), 5) == {b"c1": 1}
    assert cache.get((SCOPE, b"touched"), 4) is None and cache.get((SCOPE, b"never read"), 5) is None
    assert len(cache) == 3
    # And again at the next fold: the rows moved stay together.
    cache.advance(5, 6, {(SCOPE, b"untouched"): {b"c1": 1}})
    assert cache.get((SCOPE, b"touched"), 6) == {b"c1": 1, b"c2": 2}
    assert cache.get((SCOPE, b"untouched"), 6) == {b"c1": 2}


def test_a_lookup_during_a_fold_s_move_never_sees_a_row_at_a_number_it_does_not_hold():
    """A store thread may look rows up while the reactor moves them: between each step of the
    move, every row reads as it is at 4 or at 5, or not at all."""
    cache = CellsCache()
    at_4 = {(SCOPE, row): {b"c": n} for n, row in enumerate((b"a", b"b", b"c"), 1)}
    amounts = {(SCOPE, b"a"): {b"c": 10}, (SCOPE, b"c"): {b"c": 10}}
    at_5 = {key: {b"c": cells[b"c"] + amounts.get(key, {}).get(b"c", 0)} for key, cells in at_4.items()}
    for key, cells in at_4.items():
        cache.put(key, 4, cells)
    looked = []

    def look() -> None:
        for key in at_4:
            assert cache.get(key, 4) in (None, at_4[key])
            assert cache.get(key, 5) in (None, at_5[key])
        looked.append(True)

    class Watched(dict):
        def items(self):  # type: ignore[override]
            for pair in super().items():
                look()
                yield pair
                look()

    cache.advance(4, 5, Watched(amounts))
    assert len(looked) == 4
    assert {key: cache.get(key, 5) for key in at_4} == at_5


def test_a_fold_moves_nothing_read_at_another_number():
    cache = CellsCache()
    cache.put((SCOPE, b"older"), 4, {b"c1": 1})
    cache.put((SCOPE, b"newer"), 6, {b"c1": 1})
    # A row read before another change is not the fold's to move.
    cache.advance(6, 7, {(SCOPE, b"older"): {b"c1": 9}})
    assert cache.get((SCOPE, b"older"), 7) is None
    assert cache.get((SCOPE, b"newer"), 7) == {b"c1": 1}
    # A row read after the fold committed has its amounts already: added twice, it would count twice.
    cache.put((SCOPE, b"read after"), 8, {b"c1": 5})
    cache.advance(7, 8, {(SCOPE, b"read after"): {b"c1": 5}})
    assert cache.get((SCOPE, b"read after"), 8) == {b"c1": 5}


async def opened(path: Path) -> SQLiteStore:
    """A store that folds only when told."""
    store = SQLiteStore(str(path))
    await store.open()
    store._behind.stop()
    return store


def add(totals: dict[bytes, dict[bytes, int]], increments: dict[bytes, dict[bytes, int]]) -> None:
    for row, columns in increments.items():
        for column, amount in columns.items():
            totals[row][column] = totals[row].get(column, 0) + amount


def expected(*parts: dict[bytes, dict[bytes, int]], start: bytes = b"", end: bytes = b"\xff") -> list[dict]:
    """Each row as `read_rows` gives it: the sum of `parts`, in column order, without cells at 0."""
    rows = []
    for row in ROWS:
        summed = {column: sum(part[row].get(column, 0) for part in parts) for column in COLUMNS}
        rows.append({column: n for column, n in summed.items() if n and start <= column < end})
    return rows


@pytest_twisted.ensureDeferred
async def test_reads_through_kept_rows_equal_the_model_with_another_process_writing(tmp_path):
    path = tmp_path / "s.db"
    journaling = await opened(path)
    beside = await opened(path)  # does not journal: adds to the cells at each commit
    assert journaling._journal_lock is not None and beside._journal_lock is None
    # What reaches the cells (the folded journal, the other process's commits), and what the
    # journaling process holds unfolded: it reads both, the other process the first alone.
    folded: dict[bytes, dict[bytes, int]] = {row: {} for row in ROWS}
    unfolded: dict[bytes, dict[bytes, int]] = {row: {} for row in ROWS}
    rng = random.Random(14)
    try:
        for step in range(400):
            action = rng.random()
            increments = {
                row: {rng.choice(COLUMNS): rng.choice((-2, -1, 1, 2, 3)) for _ in range(rng.randint(1, 3))}
                for row in rng.sample(ROWS, rng.randint(1, len(ROWS)))
            }
            if action < 0.3:
                await journaling.write(WriteBatch(SCOPE, increments=increments))
                add(unfolded, increments)
            elif action < 0.4:
                await beside.write(WriteBatch(SCOPE, increments=increments))
                add(folded, increments)
            elif action < 0.5:
                await journaling.fold()
                add(folded, unfolded)
                unfolded = {row: {} for row in ROWS}
            elif action < 0.52:
                await journaling.drop_counters(SCOPE)
                folded = {row: {} for row in ROWS}
                unfolded = {row: {} for row in ROWS}
            elif action < 0.85:
                assert await journaling.read_rows(SCOPE, ROWS) == expected(folded, unfolded), step
            elif action < 0.92:
                assert await journaling.read_rows(SCOPE, ROWS, b"c1", b"c3") == expected(
                    folded, unfolded, start=b"c1", end=b"c3"
                ), step
            else:
                assert await beside.read_rows(SCOPE, ROWS) == expected(folded), step
        # Many whole-row reads found their rows kept, folds or not (the store counts them for /metrics).
        kept = journaling.caches()["counter_rows"]
        assert kept.hits > 100 and kept.misses > 0
    finally:
        await beside.close()
        await journaling.close()


@pytest_twisted.ensureDeferred
async def test_a_fold_keeps_the_rows_read_before_it_and_another_process_s_write_does_not(tmp_path):
    path = tmp_path / "s.db"
    journaling = await opened(path)
    beside = await opened(path)
    key = (SCOPE, b"r0")
    try:
        await journaling.write(WriteBatch(SCOPE, increments={b"r0": {b"c1": 1}}))
        await journaling.fold()
        assert await journaling.read_rows(SCOPE, [b"r0"]) == [{b"c1": 1}]
        with closing(sqlite3.connect(path)) as connection:
            (changes,) = connection.execute("SELECT changes FROM journal_folded").fetchone()
        await journaling.write(WriteBatch(SCOPE, increments={b"r0": {b"c0": 5}}))
        await journaling.fold()
        # Moved past the fold, with its amounts, in column order: no read of the file needed.
        assert list(journaling._cells.get(key, changes + 1).items()) == [(b"c0", 5), (b"c1", 1)]
        await beside.write(WriteBatch(SCOPE, increments={b"r0": {b"c1": 1}}))
        # The other process moved the number: the kept row is not used, the file is read.
        assert journaling._cells.get(key, changes + 2) is None
        assert await journaling.read_rows(SCOPE, [b"r0"]) == [{b"c0": 5, b"c1": 2}]
    finally:
        await beside.close()
        await journaling.close()
