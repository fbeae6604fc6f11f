"""The SQLite store's write-behind counters: journaled, folded, replayed, exact.

A store here folds only when told (its fold loop is stopped).  A store is
"killed" by stopping its threads and letting its journal lock go without
its closing fold: what it held in memory is gone, as after a SIGKILL, and
only the file remains.  (A real SIGKILL of a real twistd under load is
tests/test_durability.py.)
"""

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.threadpool import ThreadPool

from hiitrack.store import WriteBatch
from hiitrack.store.sqlite import SQLiteStore
from hiitrack.store.write_behind import FOLD_SECONDS
from tests.journaling import ROWS, added, hits, reads_in_column_order

SCOPE = "u/b"


async def opened(path: Path, folding: bool = False) -> SQLiteStore:
    store = SQLiteStore(str(path))
    await store.open()
    if store._behind.loop.running and not folding:
        store._behind.stop()
    return store


def killed(store: SQLiteStore) -> None:
    """Stop `store` as a SIGKILL would: no fold, and its lock released."""
    store._writer.stop()
    store._reader.stop()
    assert store._journal_lock is not None
    store._journal_lock.close()


def in_file(path: Path) -> tuple[int, int, int]:
    """(counter cells, journal entries, how far the journal is folded), read beside the store."""
    with sqlite3.connect(path) as connection:
        cells = connection.execute("SELECT count(*) FROM counters").fetchone()[0]
        entries = connection.execute("SELECT count(*) FROM journal").fetchone()[0]
        folded = connection.execute("SELECT upto FROM journal_folded").fetchone()[0]
    return cells, entries, folded


@pytest_twisted.ensureDeferred
async def test_a_commit_is_one_journal_entry_read_from_memory_until_the_fold(tmp_path):
    path = tmp_path / "s.db"
    store = await opened(path)
    try:
        totals = await hits(store, SCOPE, 30)
        assert in_file(path) == (0, 30, 0)
        assert await store.read_rows(SCOPE, ROWS) == added(totals)
        await store.fold()
        assert in_file(path) == (14, 0, 30)
        assert await store.read_rows(SCOPE, ROWS) == added(totals)
        assert await store.read_rows(SCOPE, ROWS, b"c2", b"c5") == [
            {column: n for column, n in cells.items() if b"c2" <= column < b"c5"} for cells in added(totals)
        ]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_row_reads_in_column_order_with_unfolded_columns_in_their_place(tmp_path):
    store = await opened(tmp_path / "s.db")
    try:
        await reads_in_column_order(store, SCOPE)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_killed_process_s_journal_is_folded_once_by_the_next_to_open(tmp_path):
    path = tmp_path / "s.db"
    first = await opened(path)
    totals = await hits(first, SCOPE, 10)
    await first.fold()
    totals = await hits(first, SCOPE, 12, totals)
    killed(first)
    assert in_file(path) == (14, 12, 10)

    second = await opened(path)
    try:
        assert in_file(path) == (14, 0, 22)
        assert await second.read_rows(SCOPE, ROWS) == added(totals)
        totals = await hits(second, SCOPE, 3, totals)
    finally:
        await second.close()
    third = await opened(path)
    try:
        assert await third.read_rows(SCOPE, ROWS) == added(totals)
    finally:
        await third.close()


class Held:
    """Makes the store's work on one of its threads (its reader or its writer) wait at a gate once
    done, before the reactor sees its result; counts the pieces of work that reached it."""

    def __init__(self, store: SQLiteStore, thread: str) -> None:
        self.reached = 0
        self.first: Deferred = Deferred()
        self.gate: Deferred = Deferred()
        pool, run = getattr(store, thread), store._run

        async def held(on: ThreadPool, work: Callable) -> object:
            result = await run(on, work)
            if on is pool:
                self.reached += 1
                if not self.first.called:
                    self.first.callback(None)
                await self.gate
            return result

        store._run = held  # type: ignore[method-assign,assignment]


@pytest_twisted.ensureDeferred
async def test_a_read_of_a_fold_committed_but_not_finished_counts_it_once(tmp_path):
    store = await opened(tmp_path / "s.db")
    try:
        await store.write(WriteBatch(SCOPE, increments={b"row": {b"col": 1}}))
        held = Held(store, "_writer")
        folding = Deferred.fromCoroutine(store.fold())
        await held.first  # the fold is in the file; its layer is still in memory
        assert await store.read_rows(SCOPE, [b"row"]) == [{b"col": 1}]
        held.gate.callback(None)
        await folding
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_read_older_than_the_last_fold_is_read_again(tmp_path):
    store = await opened(tmp_path / "s.db")
    try:
        await store.write(WriteBatch(SCOPE, increments={b"row": {b"col": 1}}))
        held = Held(store, "_reader")
        # A column range: read on the reader thread, where a fold can end meanwhile.
        read = Deferred.fromCoroutine(store.read_rows(SCOPE, [b"row"], b"c", b"d"))
        await held.first  # its snapshot is read: folded up to 0, no cell
        await store.fold()
        await store.write(WriteBatch(SCOPE, increments={b"row": {b"col": 2}}))
        held.gate.callback(None)
        assert await read == [{b"col": 3}]
        assert held.reached == 2
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_second_process_on_the_file_adds_to_the_cells_and_reads_the_first_once_folded(tmp_path):
    path = tmp_path / "s.db"
    journaling = await opened(path)
    beside = await opened(path)
    try:
        await journaling.write(WriteBatch(SCOPE, increments={b"row": {b"col": 1}}))
        assert await beside.read_rows(SCOPE, [b"row"]) == [{}]
        await journaling.fold()
        assert await beside.read_rows(SCOPE, [b"row"]) == [{b"col": 1}]
        await beside.write(WriteBatch(SCOPE, increments={b"row": {b"col": 2}}))
        assert in_file(path)[1] == 0  # not journaled: in the cell at once
        assert await journaling.read_rows(SCOPE, [b"row"]) == [{b"col": 3}]
    finally:
        await beside.close()
        await journaling.close()


@pytest_twisted.ensureDeferred
async def test_when_the_journaling_process_dies_another_takes_its_journal_over(tmp_path):
    path = tmp_path / "s.db"
    first = await opened(path)
    beside = SQLiteStore(str(path))
    clock = beside._taking_over.clock = Clock()
    await beside.open()
    try:
        totals = await hits(first, SCOPE, 6)
        killed(first)
        assert await beside.read_rows(SCOPE, ROWS) == [{}, {}]
        clock.advance(FOLD_SECONDS)
        # The takeover's replay is a transaction on the writer thread: done once the next one is.
        await beside._transaction(lambda connection: None)
        assert in_file(path) == (12, 0, 6)
        assert await beside.read_rows(SCOPE, ROWS) == added(totals)
        totals = await hits(beside, SCOPE, 2, totals)
        assert in_file(path)[1] == 2  # journaled now
        assert await beside.read_rows(SCOPE, ROWS) == added(totals)
    finally:
        await beside.close()
    assert in_file(path)[1] == 0


@pytest_twisted.ensureDeferred
async def test_a_dropped_scope_keeps_nothing_unfolded(tmp_path):
    path = tmp_path / "s.db"
    store = await opened(path)
    try:
        await hits(store, SCOPE, 5)
        await store.drop(SCOPE)
        assert await store.read_rows(SCOPE, ROWS) == [{}, {}]
        await store.fold()
        assert await store.read_rows(SCOPE, ROWS) == [{}, {}]
        assert in_file(path)[:2] == (0, 0)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_fold_loop_folds_once_a_tick(tmp_path):
    path = tmp_path / "s.db"
    store = SQLiteStore(str(path))
    clock = store._behind.loop.clock = Clock()
    await store.open()
    try:
        totals = await hits(store, SCOPE, 3)
        clock.advance(FOLD_SECONDS)
        # The tick's fold holds the lock until it is done.
        await store._behind._one_fold.run(lambda: None)
        assert in_file(path) == (6, 0, 3)  # 3 columns of 2 rows
        assert await store.read_rows(SCOPE, ROWS) == added(totals)
    finally:
        await store.close()
