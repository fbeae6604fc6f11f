"""The SQLite store: records and counters in one file.

Writes go out one after another, so they never contend with each other for
the file's lock.  They run on a writer thread: group commits (the batches
written in one turn of the reactor, and those written while the commit
before was made), folds, checkpoints, account writes and migrations.  A
commit's `fsync` releases the GIL, so under load the reactor parses and
counts the next hits while the disk makes the last ones durable: event
ingest ran 6 to 16 % faster than with commits on the reactor thread, which
waited for each one with every connection in it (docs/performance.md,
"Session 47").  Small, bounded reads run on the reactor thread itself: a
point read (`get`: a visitor's state, an `insert_id`) and a plain report's
counter rows (`AT_ONCE_READ_ROWS`).  Handed to a thread, the benchmark's
funnel report read its rows in 1.7 to 3.1 ms, where `sqlite3` alone reads
them in 1.5 ms on any one thread.  Scans and time-bounded counter reads,
whose size grows with the data, run on a reader thread whose connection
reads the last committed state through WAL while a write is in progress.
The reactor never waits for another process: when one holds the file's
write lock, the read goes to the reader thread and waits there.
Records of kinds with an expiry carry their time of expiry: reads skip
them once it has passed, and commits delete them in bounded rounds.

A commit's records go to SQLite as one statement: an insert into a
temporary view (`WRITE_COMMIT`) whose trigger upserts the visitor states,
the history and the journal entry.  SQLite runs it whole, and on its own it
is a transaction, durable when it returns; row by row, every record was a
round trip between Python and SQLite.

Counters are written behind a journal.  A commit writes its records and its
increments as one journal row, in one transaction (durable before it is
answered); about once a second (less often under a load whose folds take
long: hiitrack.store.write_behind) a fold adds the journaled sums to the counter
cells and deletes the rows, again in one transaction, so a cell shared by
many hits (a bucket's totals, its hourly series) is written once a second
instead of once a commit, and a fold is never half done.  Until its fold, a
commit's increments are also held in memory (hiitrack.store.write_behind) and
added to every read: a read takes `journal_folded` in the same snapshot as
the cells, so it adds exactly the entries those cells lack.  A process that
opens the file folds what the journal holds first: a process killed before
its fold loses nothing.

Whole counter rows are read through the rows this process read last
(hiitrack.store.sqlite.cells_cache): every transaction that changes
`counters` moves a number in `journal_folded`, which a read takes in its
snapshot too, and a kept row serves only a snapshot with the number it was
read at.  This process's fold moves the rows it keeps with it.

One process per file journals: the one holding the file's journal lock
(``PATH.journal-lock``, released by the kernel when the process ends).
Another process on the same file (an import beside the server, a second
``twistd``) adds its increments to the cells at each commit, as before,
reads the journaling process's hits once they are folded, and tries the
lock every `FOLD_SECONDS`: when the journaling process stops or dies, the
first to take the lock folds what it left and journals from then on.
Tests: tests/test_store_contract.py, tests/test_migrations.py,
tests/test_sqlite_write_behind.py, tests/test_sqlite_cells_cache.py,
tests/test_durability.py.
"""

import fcntl
import pickle
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import IO, Any, TypeVar

import ujson
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.threadpool import ThreadPool

from hiitrack.metrics import CacheStats
from hiitrack.store.grouping import GroupCommitter, MergedWrite, Rows
from hiitrack.store.interface import StoreUnavailable, WriteBatch, check_batch
from hiitrack.store.kinds import KINDS, Kind, Kinds
from hiitrack.store.sqlite.cells_cache import CellsCache
from hiitrack.store.sqlite.schema import migrate
from hiitrack.store.write_behind import FOLD_SECONDS, Unfolded, WriteBehind, with_amounts

__all__ = ["SQLiteStore"]

PURGE_SECONDS = 60.0
"""How often a commit also deletes expired records."""
PURGE_ROWS = 1000
"""At most this many expired records per commit, so a purge never stalls writes."""
AT_ONCE_READ_ROWS = 16
"""A counter read of at most this many rows and no column range (an event's or property's report,
a funnel's steps, a saved funnel's conversion and its days) is made on the reactor thread.  Its
cells are about as many as the answer the reactor thread builds from them next (values and steps,
bounded by the caps; days, by the range asked), so reading them there stops the reactor about
half as long again as building that answer does.  Read on the reader thread, the benchmark's
funnel report (3,600 cells) took 5.6 ms in-process against 3.9 ms here: the read itself slower
across the two cores, and two hand-offs.  A series' read, whose rows grow with its range, and a
read of more rows stay on the reader thread."""
CHECKPOINT_SECONDS = 1.0
"""How often the writer thread copies the WAL's pages into the file (SQLite's checkpoint).  No
connection checkpoints at the end of a commit, as SQLite's do by default once the WAL holds
1,000 pages: that copy, thousands of pages after a fold, and its two `fsync`s would hold the
commits behind it at unforeseeable times.  The checkpoints tick half a period after the
folds, so that a commit waits for one of them at a time."""
JOURNAL_LOCK = ".journal-lock"
"""Appended to the file's path: the lock the journaling process holds."""

_log = Logger()


LIVE = "(expires IS NULL OR expires > :now)"
# All the increments of a commit in one statement: ?2 is a JSON list of
# [row offset, row length, column offset, column length, amount] into the
# blob ?3 of every key laid end to end.  The statement runs whole inside
# SQLite, where executemany came back to Python for every row.
ADD_COUNTERS = (
    "INSERT INTO counters (scope, row, col, n)"
    " SELECT ?1, substr(?3, value ->> 0, value ->> 1), substr(?3, value ->> 2, value ->> 3), value ->> 4"
    " FROM json_each(?2) WHERE true"
    " ON CONFLICT (scope, row, col) DO UPDATE SET n = n + excluded.n"
)


def _statements(table: str) -> dict[str, str]:
    """The statements on one records table (each has the columns of ``records``)."""
    scan = f"SELECT key, value FROM {table} WHERE scope = :scope AND kind = :kind AND {LIVE}"
    return {
        # A record that expired but is not purged yet counts as absent: replace it.
        "create": (
            f"INSERT INTO {table} (scope, kind, key, value, expires) VALUES (:scope, :kind, :key, :value, :expires)"
            " ON CONFLICT (scope, kind, key) DO UPDATE SET value = excluded.value, expires = excluded.expires"
            f" WHERE {table}.expires <= :now"
        ),
        "get": f"SELECT value FROM {table} WHERE scope = :scope AND kind = :kind AND key = :key AND {LIVE}",
        "scan": scan,
        "page": scan + " AND key > :after ORDER BY key LIMIT :limit",
        "replace": (
            f"UPDATE {table} SET value = :new, expires = :expires"
            f" WHERE scope = :scope AND kind = :kind AND key = :key AND value = :old AND {LIVE}"
        ),
        "delete": f"DELETE FROM {table} WHERE scope = ? AND kind = ? AND key = ?",
        "clear": f"DELETE FROM {table} WHERE scope = ? AND kind = ?",
        "drop": f"DELETE FROM {table} WHERE scope = ?",
        "count": f"SELECT count(*) FROM {table} WHERE scope = :scope AND {LIVE}",
    }


HITS = "hits"
"""Visitor histories (schema v003) have a table of their own; every other kind is in ``records``."""
TABLES = {table: _statements(table) for table in ("records", HITS)}


def _table(kind: Kind) -> str:
    return HITS if kind.table == HITS else "records"


def _sql(kind: Kind) -> dict[str, str]:
    return TABLES[_table(kind)]


def _upsert_from_json(table: str, items: str) -> str:
    """Upsert every record that the JSON list `items` gives as nine values into NEW.data: offset
    and length (counted from 1) of the scope, the kind, the key and the value, then the expiry
    (or null).  Texts are cut from the blob too, so they keep every byte as bound."""

    def cut(at: int, text: bool = True) -> str:
        part = f"substr(NEW.data, value ->> {at}, value ->> {at + 1})"
        return f"CAST({part} AS TEXT)" if text else part

    return (
        f"INSERT OR REPLACE INTO {table} (scope, kind, key, value, expires)"
        f" SELECT {cut(0)}, {cut(2)}, {cut(4)}, {cut(6, text=False)}, value ->> 8 FROM json_each(NEW.{items});"
    )


# Made on each connection (temporary objects): inserting one row into the
# view writes a commit's records, history and journal entry (none when seq
# is null), in one statement.  A trigger's body names its tables unqualified.
COMMIT_VIEW = (
    "CREATE TEMP VIEW IF NOT EXISTS commit_writes (records, hits, data, seq, entry)"
    " AS SELECT NULL, NULL, NULL, NULL, NULL"
)
COMMIT_TRIGGER = (
    "CREATE TEMP TRIGGER IF NOT EXISTS commit_writes_apply INSTEAD OF INSERT ON commit_writes BEGIN "
    + _upsert_from_json("records", "records")
    + _upsert_from_json(HITS, "hits")
    + " INSERT INTO journal (seq, entry) SELECT NEW.seq, NEW.entry WHERE NEW.seq IS NOT NULL; END"
)
WRITE_COMMIT = "INSERT INTO commit_writes (records, hits, data, seq, entry) VALUES (?, ?, ?, ?, ?)"


PURGE_RECORDS = (
    "DELETE FROM records WHERE (scope, kind, key) IN (SELECT scope, kind, key FROM records WHERE expires <= ? LIMIT ?)"
)
# A cell at 0 (an erased visitor's increments taken back) reads as absent.
READ_ROW = "SELECT col, n FROM counters WHERE scope = ? AND row = ? AND n != 0 AND col >= ?"
DROP_COUNTERS = "DELETE FROM counters WHERE scope = ?"
READ_JOURNAL = "SELECT seq, entry FROM journal ORDER BY seq"
TRIM_JOURNAL = "DELETE FROM journal WHERE seq <= ?"
FOLDED_UPTO = "SELECT upto FROM journal_folded"
# How far the journal is folded and how often `counters` changed, in a read's snapshot (schema v005).
READ_VERSIONS = "SELECT upto, changes FROM journal_folded"
SET_FOLDED = "UPDATE journal_folded SET upto = ?"
# In the transaction of every change to `counters`: a reader's kept rows are then out of date.
COUNTERS_CHANGED = "UPDATE journal_folded SET changes = changes + 1 RETURNING changes"
CHECKPOINT = "PRAGMA wal_checkpoint(PASSIVE)"
COUNT_COUNTERS = "SELECT count(*) FROM counters WHERE scope = :scope"

T = TypeVar("T")


def _in_transaction(connection: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = work(connection)
        connection.execute("COMMIT")
    except BaseException:
        # A COMMIT refused (a busy file) leaves the transaction open: nothing of it may stay.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    return result


class _CommitRecords:
    """A commit's records as `WRITE_COMMIT` takes them: per table a JSON list of offsets (see
    `_upsert_from_json`) into one blob.  A text the commit repeats (its scope, a kind) is in the
    blob once."""

    def __init__(self) -> None:
        self._items: dict[str, list[list[int | None]]] = {"records": [], HITS: []}
        self._data: list[bytes] = []
        self._at = 1
        self._texts: dict[str, tuple[int, int]] = {}

    def _place(self, part: bytes) -> tuple[int, int]:
        placed = (self._at, len(part))
        self._data.append(part)
        self._at += len(part)
        return placed

    def _text(self, text: str) -> tuple[int, int]:
        placed = self._texts.get(text)
        if placed is None:
            placed = self._texts[text] = self._place(text.encode())
        return placed

    def add(self, table: str, scope: str, kind: str, key: str, value: bytes, expires: int | None) -> None:
        self._items[table].append(
            [*self._text(scope), *self._text(kind), *self._place(key.encode()), *self._place(value), expires]
        )

    def parameters(self, seq: int | None, entry: bytes | None) -> tuple[str, str, bytes, int | None, bytes | None]:
        records, hits = (ujson.dumps(self._items[table]) for table in ("records", HITS))
        return records, hits, b"".join(self._data), seq, entry


class _Connection(threading.local):
    """Each worker thread's own connection to the file."""

    connection: sqlite3.Connection | None = None


def _stored_kind(kind: Kind) -> str:
    """The `kind` column: the name, then the part of a kind partitioned by part."""
    return kind.name if kind.part is None else f"{kind.name} {kind.part}"


def _packed(rows: Rows) -> dict[str, tuple[list[tuple[int, ...]], list[bytes]]]:
    """Per scope, the increments as ADD_COUNTERS takes them (offsets count from 1, each row's key once)."""
    packed: dict[str, tuple[list[tuple[int, ...]], list[bytes]]] = {}
    offsets: dict[str, int] = {}
    for (scope, row), columns in rows.items():
        if scope not in packed:
            packed[scope] = ([], [])
            offsets[scope] = 1
        index, keys = packed[scope]
        row_at = offsets[scope]
        offset = row_at + len(row)
        keys.append(row)
        for column, amount in columns.items():
            index.append((row_at, len(row), offset, len(column), amount))
            keys.append(column)
            offset += len(column)
        offsets[scope] = offset
    return packed


def _add_counters(connection: sqlite3.Connection, rows: Rows) -> int:
    """Add `rows` to the cells (inside a transaction); the counters' new `changes` number."""
    for scope, (index, keys) in _packed(rows).items():
        connection.execute(ADD_COUNTERS, (scope, ujson.dumps(index), b"".join(keys)))
    return _counters_changed(connection)


def _counters_changed(connection: sqlite3.Connection) -> int:
    (changes,) = connection.execute(COUNTERS_CHANGED).fetchone()
    return changes


def _drop_counters(connection: sqlite3.Connection, scope: str) -> None:
    connection.execute(DROP_COUNTERS, (scope,))
    _counters_changed(connection)


def _fold_into_cells(connection: sqlite3.Connection, layer: Unfolded) -> int:
    """Add a layer's increments to the cells and drop its journal entries (inside a transaction);
    the counters' new `changes` number."""
    changes = _add_counters(connection, layer.rows)
    connection.execute(TRIM_JOURNAL, (layer.upto,))
    connection.execute(SET_FOLDED, (layer.upto,))
    return changes


def _replay(connection: sqlite3.Connection) -> int:
    """Fold every entry the journal holds (inside a transaction); the last entry number."""
    (folded,) = connection.execute(FOLDED_UPTO).fetchone()
    layer = Unfolded(folded)
    for seq, entry in connection.execute(READ_JOURNAL).fetchall():
        layer.add(seq, pickle.loads(entry))
    _fold_into_cells(connection, layer)
    return layer.upto


class SQLiteStore:
    def __init__(
        self,
        path: str,
        reactor: Any = None,
        kinds: Kinds = KINDS,
        clock: Callable[[], float] = time.time,
        purge_seconds: float = PURGE_SECONDS,
    ) -> None:
        self.path = path
        self._reactor: Any = reactor or default_reactor
        self._kinds = kinds
        self._clock = clock
        self._purge_seconds = purge_seconds
        self._next_purge = 0.0
        self._local = _Connection()
        # Every write runs on this one thread: one at a time, in the order they were asked for.
        self._writer = ThreadPool(1, 1, "hiitrack-sqlite-writer")
        self._reader = ThreadPool(1, 1, "hiitrack-sqlite-reader")
        # The reactor thread's connection, for point reads and small counter reads; it never waits for the file.
        self._at_once: sqlite3.Connection | None = None
        self._group = GroupCommitter(lambda units: Deferred.fromCoroutine(self._commit(units)), reactor=self._reactor)
        # Whether this process journals (it holds the lock), and the lock's file.
        self._journal_lock: IO[str] | None = None
        self._journaled = 0
        """The last journal entry number given out."""
        self._behind = WriteBehind(self._reactor, self._fold_layer, "sqlite")
        self._cells = CellsCache()
        self._taking_over = LoopingCall(lambda: Deferred.fromCoroutine(self._try_taking_over()))
        self._taking_over.clock = self._reactor
        self._checkpointing = LoopingCall(lambda: Deferred.fromCoroutine(self._checkpoint_tick()))
        self._checkpointing.clock = self._reactor
        self._checkpoints_from: IDelayedCall | None = None

    def __repr__(self) -> str:
        return f"sqlite:{self.path}"

    def _open(self, timeout: float) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=timeout)
        # WAL lets the reader thread read while a write commits;
        # synchronous=FULL makes a commit durable before it is answered;
        # checkpoints are the writer thread's alone (CHECKPOINT_SECONDS).
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA wal_autocheckpoint = 0")
        connection.execute(COMMIT_VIEW)
        connection.execute(COMMIT_TRIGGER)
        return connection

    def _connect(self) -> sqlite3.Connection:
        if self._local.connection is None:
            self._local.connection = self._open(timeout=30)
        return self._local.connection

    async def _run(self, pool: ThreadPool, work: Callable[[sqlite3.Connection], T]) -> T:
        def in_thread() -> T:
            try:
                return work(self._connect())
            except sqlite3.Error as error:
                raise StoreUnavailable(f"sqlite: {error}") from error

        return await deferToThreadPool(self._reactor, pool, in_thread)

    async def _write(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """`work` on the writer thread, after the writes asked for before it."""
        return await self._run(self._writer, work)

    async def _here_or_on(self, pool: ThreadPool, work: Callable[[sqlite3.Connection], T]) -> T:
        """The read `work` here on the reactor thread; on `pool`'s thread, which waits for the
        file, when the file is busy (under WAL, a read is refused only in rare moments: while
        another connection recovers the WAL, or closes the file's last connection)."""
        try:
            if self._at_once is None:
                self._at_once = self._open(timeout=0)
            return work(self._at_once)
        except sqlite3.Error as error:
            # A busy file refused the read whole: read again where waiting is allowed.
            # (Errors of the module's own, a closed connection's, carry no SQLite code.)
            if getattr(error, "sqlite_errorcode", 0) & 0xFF != sqlite3.SQLITE_BUSY:
                raise StoreUnavailable(f"sqlite: {error}") from error
        return await self._run(pool, work)

    async def _transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self._write(partial(_in_transaction, work=work))

    def _expires(self, kind: Kind, now: int) -> int | None:
        return None if kind.expiry is None else now + kind.expiry

    async def open(self) -> None:
        self._writer.start()
        self._reader.start()
        await self._write(migrate)
        await self._take_journal()
        if self._journal_lock is None:
            # The process that journals may stop or die: take its journal over then.
            self._taking_over.start(FOLD_SECONDS, now=False)
        # A journaling process started its folds' loop just now (_take_journal): the checkpoints
        # tick half a period after it (CHECKPOINT_SECONDS).
        self._checkpoints_from = self._reactor.callLater(
            CHECKPOINT_SECONDS / 2, self._checkpointing.start, CHECKPOINT_SECONDS
        )

    async def _take_journal(self) -> None:
        """Journal from now on if no other process does (the lock is free): first fold what
        the journal holds, which a process that stopped or died left there."""
        handle = open(self.path + JOURNAL_LOCK, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return
        try:
            # Commits meanwhile add to the cells, as in a process that does not journal.
            self._journaled = await self._transaction(_replay)
        except BaseException:
            handle.close()
            raise
        self._behind.layers = [Unfolded(self._journaled)]
        self._journal_lock = handle
        self._behind.start()
        if self._taking_over.running:
            self._taking_over.stop()

    async def _try_taking_over(self) -> None:
        try:
            await self._take_journal()
        except Exception:
            # Tried again at the next tick.
            _log.failure("sqlite: could not take over the journal")

    async def checkpoint(self) -> None:
        """Copy the pages the WAL holds into the file, on the writer thread, between writes."""
        await self._write(lambda connection: connection.execute(CHECKPOINT).fetchall() and None)

    async def _checkpoint_tick(self) -> None:
        try:
            await self.checkpoint()
        except Exception:
            # Tried again at the next tick; the WAL grows meanwhile.
            _log.failure("sqlite: a checkpoint failed")

    async def close(self) -> None:
        try:
            if self._checkpoints_from is not None and self._checkpoints_from.active():
                self._checkpoints_from.cancel()
            for loop in (self._taking_over, self._checkpointing):
                if loop.running:
                    loop.stop()
            self._behind.stop()
            await self._group.drain()
            # What a failed fold leaves stays in the journal for the next start.
            await self.fold()
        finally:
            self._writer.stop()
            self._reader.stop()
            if self._at_once is not None:
                self._at_once.close()
                self._at_once = None
            if self._journal_lock is not None:
                self._journal_lock.close()
                self._journal_lock = None

    async def get(self, scope: str, kind: Kind, key: str) -> bytes | None:
        where = {"scope": scope, "kind": _stored_kind(self._kinds.check(kind)), "key": key, "now": self._clock()}

        def get(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute(_sql(kind)["get"], where).fetchone()
            return None if row is None else bytes(row[0])

        return await self._here_or_on(self._reader, get)

    async def scan(self, scope: str, kind: Kind) -> dict[str, bytes]:
        where = {"scope": scope, "kind": _stored_kind(self._kinds.check(kind)), "now": self._clock()}

        def scan(connection: sqlite3.Connection) -> dict[str, bytes]:
            return {key: bytes(value) for key, value in connection.execute(_sql(kind)["scan"], where)}

        return await self._run(self._reader, scan)

    async def page(self, scope: str, kind: Kind, after: str = "", limit: int = 100) -> list[tuple[str, bytes]]:
        where = {
            "scope": scope,
            "kind": _stored_kind(self._kinds.check_part(kind)),
            "after": after,
            "limit": limit,
            "now": self._clock(),
        }

        def page(connection: sqlite3.Connection) -> list[tuple[str, bytes]]:
            return [(key, bytes(value)) for key, value in connection.execute(_sql(kind)["page"], where)]

        return await self._run(self._reader, page)

    async def sweep(
        self, scope: str, kind: Kind, cursor: str = "", limit: int = 100
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        # One table holds every shard: key order, the cursor the last key given.
        self._kinds.check_sharded(kind)
        where = {"scope": scope, "kind": _stored_kind(kind), "after": cursor, "limit": limit, "now": self._clock()}

        def page(connection: sqlite3.Connection) -> list[tuple[str, bytes]]:
            return [(key, bytes(value)) for key, value in connection.execute(_sql(kind)["page"], where)]

        found = await self._run(self._reader, page)
        return found, found[-1][0] if len(found) == limit else None

    async def create(self, scope: str, kind: Kind, key: str, value: bytes) -> bool:
        return await self._write_if(kind, "create", scope=scope, key=key, value=value)

    async def replace(self, scope: str, kind: Kind, key: str, old: bytes, new: bytes) -> bool:
        return await self._write_if(kind, "replace", scope=scope, key=key, old=old, new=new)

    async def _write_if(self, kind: Kind, operation: str, **values: object) -> bool:
        """Run a conditional write of one record (create, replace); whether it wrote."""
        now = int(self._clock())
        record = {
            **values,
            "kind": _stored_kind(self._kinds.check(kind)),
            "expires": self._expires(kind, now),
            "now": now,
        }
        statement = _sql(kind)[operation]
        return await self._transaction(lambda connection: connection.execute(statement, record).rowcount == 1)

    async def delete(self, scope: str, kind: Kind, key: str) -> None:
        address = (scope, _stored_kind(self._kinds.check(kind)), key)
        await self._transaction(lambda connection: connection.execute(_sql(kind)["delete"], address) and None)

    async def write(self, batch: WriteBatch) -> None:
        check_batch(self._kinds, batch)
        await self._group.write(batch)

    async def _commit(self, units: list[MergedWrite]) -> None:
        # One unit (no weigh given to the GroupCommitter): a transaction holds any amount.
        (merged,) = units
        now = int(self._clock())
        # Removals before the records, in the order a batch promises.
        removals: list[tuple[str, tuple[str, ...]]] = [
            (_sql(kind)["delete"], (scope, _stored_kind(kind), key)) for scope, kind, key in merged.deletions
        ]
        removals += [(_sql(kind)["clear"], (scope, _stored_kind(kind))) for scope, kind in merged.cleared]
        records = _CommitRecords()
        for (scope, kind, key), value in merged.records.items():
            records.add(_table(kind), scope, _stored_kind(kind), key, value, self._expires(kind, now))
        rows = merged.rows
        journaled = self._journal_lock is not None and bool(rows)
        seq, entry = None, None
        if journaled:
            self._journaled += 1
            seq, entry = self._journaled, pickle.dumps(rows, protocol=pickle.HIGHEST_PROTOCOL)
        write = records.parameters(seq, entry)

        def write_all(connection: sqlite3.Connection, purge: bool) -> None:
            for statement, parameters in removals:
                connection.execute(statement, parameters)
            connection.execute(WRITE_COMMIT, write)
            if not journaled:
                _add_counters(connection, rows)
            if purge:
                purged = connection.execute(PURGE_RECORDS, (now, PURGE_ROWS)).rowcount
                # A full round means more are waiting: purge again next commit.
                self._next_purge = now if purged == PURGE_ROWS else now + self._purge_seconds

        def commit(connection: sqlite3.Connection) -> None:
            # One write at a time (the writer thread): _next_purge needs no lock of its own.
            purge = now >= self._next_purge
            if removals or purge or (rows and not journaled):
                _in_transaction(connection, partial(write_all, purge=purge))
            else:
                # The one statement is a transaction of its own.
                connection.execute(WRITE_COMMIT, write)

        await self._write(commit)
        if seq is not None:
            # Before the GroupCommitter answers the commit's requests.
            self._behind.add(seq, rows)

    async def read_rows(
        self, scope: str, rows: Sequence[bytes], start: bytes = b"", end: bytes | None = None
    ) -> list[dict[bytes, int]]:
        query = (READ_ROW if end is None else READ_ROW + " AND col < ?") + " ORDER BY col"
        bounds = (start,) if end is None else (start, end)
        # Whole rows are kept (CellsCache); a range of columns is read each time.
        whole = start == b"" and end is None
        kept = self._cells

        def read(connection: sqlite3.Connection) -> tuple[int, int, list[dict[bytes, int]], int]:
            # One snapshot for how far the journal is folded, how often the cells changed, and the
            # cells; and how many of the rows were kept ones.
            connection.execute("BEGIN")
            try:
                folded, changes = connection.execute(READ_VERSIONS).fetchone()
                found, hits = [], 0
                for row in rows:
                    cells = kept.get((scope, row), changes) if whole else None
                    hits += cells is not None
                    # A BLOB comes back as bytes: the cursor's (col, n) pairs are the row's cells as they are.
                    found.append(dict(connection.execute(query, (scope, row, *bounds))) if cells is None else cells)
                return folded, changes, found, hits
            finally:
                connection.execute("COMMIT")

        run = self._here_or_on if end is None and len(rows) <= AT_ONCE_READ_ROWS else self._run
        layers = None
        while layers is None:
            folded, changes, found, hits = await run(self._reader, read)
            layers = self._lacking(folded)
        if whole:
            kept.hits += hits
            kept.misses += len(rows) - hits
        merged = []
        for row, cells in zip(rows, found, strict=True):
            if whole:
                kept.put((scope, row), changes, cells)
            amounts = [pair for layer in layers for pair in layer.amounts(scope, row, start, end)]
            # Read, a row's cells are in column order and none is 0: as they are unless a layer adds
            # to them (to a copy: the cells read may be kept).
            merged.append(with_amounts(dict(cells), amounts) if amounts else cells)
        return merged

    def _lacking(self, folded: int) -> list[Unfolded] | None:
        """The layers a snapshot folded up to `folded` lacks; None if it is older than the last
        fold, whose layer is gone from memory (read again)."""
        layers = self._behind.layers
        if folded < layers[0].after:
            return None
        return [layer for layer in layers if layer.after >= folded and layer]

    async def fold(self) -> None:
        """Fold everything journaled so far into the counter cells; nothing to do in a process
        that does not journal."""
        if self._journal_lock is not None:
            await self._behind.fold()

    async def _fold_layer(self, layer: Unfolded) -> int:
        changes = await self._transaction(partial(_fold_into_cells, layer=layer))
        self._cells.advance(changes - 1, changes, layer.rows)
        return sum(len(columns) for columns in layer.rows.values())

    async def _settled(self) -> None:
        """Every write accepted so far committed and folded: nothing of a scope is left to fold
        into its cells after they are dropped."""
        await self._group.drain()
        await self.fold()

    async def drop(self, scope: str) -> None:
        await self._settled()

        def drop(connection: sqlite3.Connection) -> None:
            for table in TABLES.values():
                connection.execute(table["drop"], (scope,))
            _drop_counters(connection, scope)

        await self._transaction(drop)

    async def drop_counters(self, scope: str) -> None:
        await self._settled()
        await self._transaction(partial(_drop_counters, scope=scope))

    def caches(self) -> Mapping[str, CacheStats]:
        return {"counter_rows": self._cells}

    async def count(self, scope: str) -> int:
        await self.fold()
        where = {"scope": scope, "now": self._clock()}

        def count(connection: sqlite3.Connection) -> int:
            queries = [table["count"] for table in TABLES.values()] + [COUNT_COUNTERS]
            return sum(connection.execute(query, where).fetchone()[0] for query in queries)

        return await self._run(self._reader, count)
