"""The embedded store: one SQLite file, the default for a single machine.

SQLite calls block, so they run on threads of their own: one writer thread
that owns the only write connection (so writes never contend for the lock and
group commits go out one after another), and one reader thread whose
connection reads the last committed state through WAL while a write is in
progress.  Tests: tests/test_store_contract.py.
"""

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import ujson
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.grouping import GroupCommitter, MergedWrite

__all__ = ["SQLiteStore"]

SCHEMA = (Path(__file__).parent / "schema.sql").read_text()

UPSERT_RECORD = "INSERT OR REPLACE INTO records (scope, kind, key, value) VALUES (?, ?, ?, ?)"
# All the increments of a commit in one statement: ?2 is a JSON list of
# [row offset, row length, column offset, column length, amount] into the
# blob ?3 of every key laid end to end.  The statement runs whole inside
# SQLite, which releases the GIL meanwhile, where executemany took it back
# for every row; under load the reactor thread keeps working in parallel.
ADD_COUNTERS = (
    "INSERT INTO counters (scope, row, col, n)"
    " SELECT ?1, substr(?3, value ->> 0, value ->> 1), substr(?3, value ->> 2, value ->> 3), value ->> 4"
    " FROM json_each(?2) WHERE true"
    " ON CONFLICT (scope, row, col) DO UPDATE SET n = n + excluded.n"
)
CREATE_RECORD = (
    "INSERT INTO records (scope, kind, key, value) VALUES (?, ?, ?, ?) ON CONFLICT (scope, kind, key) DO NOTHING"
)
REPLACE_RECORD = "UPDATE records SET value = ? WHERE scope = ? AND kind = ? AND key = ? AND value = ?"
GET_RECORD = "SELECT value FROM records WHERE scope = ? AND kind = ? AND key = ?"
SCAN_RECORDS = "SELECT key, value FROM records WHERE scope = ? AND kind = ?"
DELETE_RECORD = "DELETE FROM records WHERE scope = ? AND kind = ? AND key = ?"
READ_ROW = "SELECT col, n FROM counters WHERE scope = ? AND row = ? AND col >= ?"
DROP_RECORDS = "DELETE FROM records WHERE scope = ?"
DROP_COUNTERS = "DELETE FROM counters WHERE scope = ?"

T = TypeVar("T")


class _Connection(threading.local):
    """Each worker thread's own connection to the file."""

    connection: sqlite3.Connection | None = None


def _packed(merged: MergedWrite) -> dict[str, tuple[list[tuple[int, ...]], list[bytes]]]:
    """Per scope, the increments as ADD_COUNTERS takes them (offsets count from 1)."""
    packed: dict[str, tuple[list[tuple[int, ...]], list[bytes]]] = {}
    offsets: dict[str, int] = {}
    for (scope, row, column), amount in merged.increments.items():
        if scope not in packed:
            packed[scope] = ([], [])
            offsets[scope] = 1
        index, keys = packed[scope]
        offset = offsets[scope]
        index.append((offset, len(row), offset + len(row), len(column), amount))
        keys += (row, column)
        offsets[scope] = offset + len(row) + len(column)
    return packed


class SQLiteStore:
    def __init__(self, path: str, reactor: object = None) -> None:
        self.path = path
        self._reactor = reactor or default_reactor
        self._local = _Connection()
        self._writer = ThreadPool(1, 1, "hiitrack-sqlite-writer")
        self._reader = ThreadPool(1, 1, "hiitrack-sqlite-reader")
        self._group = GroupCommitter(self._commit)

    def __repr__(self) -> str:
        return f"sqlite:{self.path}"

    def _connect(self) -> sqlite3.Connection:
        if self._local.connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
            # WAL lets the reader thread read while the writer commits;
            # synchronous=FULL makes a commit durable before it is answered.
            connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = FULL")
            self._local.connection = connection
        return self._local.connection

    def _run(self, pool: ThreadPool, work: Callable[[sqlite3.Connection], T]) -> Deferred:
        def in_thread() -> T:
            try:
                return work(self._connect())
            except sqlite3.Error as error:
                raise StoreUnavailable(f"sqlite: {error}") from error

        return deferToThreadPool(self._reactor, pool, in_thread)

    def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> Deferred:
        def in_transaction(connection: sqlite3.Connection) -> T:
            connection.execute("BEGIN IMMEDIATE")
            try:
                result = work(connection)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
            return result

        return self._run(self._writer, in_transaction)

    def open(self) -> Deferred:
        self._writer.start()
        self._reader.start()
        return self._run(self._writer, lambda connection: connection.executescript(SCHEMA) and None)

    def close(self) -> Deferred:
        def stop_threads(_: object = None) -> None:
            self._writer.stop()
            self._reader.stop()

        return self._group.drain().addBoth(stop_threads)

    def get(self, scope: str, kind: str, key: str) -> Deferred:
        def get(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute(GET_RECORD, (scope, kind, key)).fetchone()
            return None if row is None else bytes(row[0])

        return self._run(self._reader, get)

    def scan(self, scope: str, kind: str) -> Deferred:
        def scan(connection: sqlite3.Connection) -> dict[str, bytes]:
            return {key: bytes(value) for key, value in connection.execute(SCAN_RECORDS, (scope, kind))}

        return self._run(self._reader, scan)

    def create(self, scope: str, kind: str, key: str, value: bytes) -> Deferred:
        return self._transaction(
            lambda connection: connection.execute(CREATE_RECORD, (scope, kind, key, value)).rowcount == 1
        )

    def replace(self, scope: str, kind: str, key: str, old: bytes, new: bytes) -> Deferred:
        return self._transaction(
            lambda connection: connection.execute(REPLACE_RECORD, (new, scope, kind, key, old)).rowcount == 1
        )

    def delete(self, scope: str, kind: str, key: str) -> Deferred:
        return self._transaction(lambda connection: connection.execute(DELETE_RECORD, (scope, kind, key)) and None)

    def write(self, batch: WriteBatch) -> Deferred:
        return self._group.write(batch)

    def _commit(self, merged: MergedWrite) -> Deferred:
        def commit(connection: sqlite3.Connection) -> None:
            connection.executemany(UPSERT_RECORD, [(*address, value) for address, value in merged.records.items()])
            for scope, (index, keys) in _packed(merged).items():
                connection.execute(ADD_COUNTERS, (scope, ujson.dumps(index), b"".join(keys)))

        return self._transaction(commit)

    def read_rows(self, scope: str, rows: list[bytes], start: bytes = b"", end: bytes | None = None) -> Deferred:
        query = (READ_ROW if end is None else READ_ROW + " AND col < ?") + " ORDER BY col"
        bounds = (start,) if end is None else (start, end)

        def read(connection: sqlite3.Connection) -> list[dict[bytes, int]]:
            return [
                {bytes(column): n for column, n in connection.execute(query, (scope, row, *bounds))} for row in rows
            ]

        return self._run(self._reader, read)

    def drop(self, scope: str) -> Deferred:
        def drop(connection: sqlite3.Connection) -> None:
            connection.execute(DROP_RECORDS, (scope,))
            connection.execute(DROP_COUNTERS, (scope,))

        return self._transaction(drop)

    def count(self, scope: str) -> Deferred:
        def count(connection: sqlite3.Connection) -> int:
            return sum(
                connection.execute(f"SELECT count(*) FROM {table} WHERE scope = ?", (scope,)).fetchone()[0]
                for table in ("records", "counters")
            )

        return self._run(self._reader, count)
