"""The Cassandra store: records.py and counters.py over one session.

Opening connects (connect.py), brings the keyspace to the current schema
version (schema/), prepares every statement, and folds what the journal
holds past this writer's last fold; the driver does the first three
blocking, so they run in a thread, the rest through bridge.py.  Writes go
through the shared `GroupCommitter`, which cuts a commit into units of a few
hits: a commit writes each unit's records, its journal entry (journal.py)
and the scope index entries of partitions new to this process
(partitions.py) as one logged batch, which Cassandra applies whole or not
at all, and is answered.  Every `FOLD_SECONDS`
(hiitrack.store.write_behind) the increments journaled since the last fold
go to the counter cells (counters.py) in one pass: a cell shared by many
hits is written once.  A node that is down, overloaded or slow turns into
`StoreUnavailable` (HTTP 503) within `REQUEST_TIMEOUT`, except a write in
doubt, which is sent again until it lands (`_sent`); the driver
reconnects by itself, and a fold that failed is tried again at the next
tick.  Tests: tests/test_store_contract.py,
tests/test_cassandra.py, tests/test_migrations.py,
tests/test_cassandra_outage.py, tests/test_write_behind.py.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cassandra.cluster import Cluster
from cassandra.query import BatchType
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from hiitrack.metrics import CacheStats
from hiitrack.store.cassandra import schema
from hiitrack.store.cassandra.bridge import (
    ROW_BYTES,
    Cql,
    Write,
    batch_logged,
    in_doubt,
    logged,
    packed,
    translated,
)
from hiitrack.store.cassandra.connect import Settings, batch_warn_bytes, cluster
from hiitrack.store.cassandra.counters import STATEMENTS as COUNTER_STATEMENTS
from hiitrack.store.cassandra.counters import TALLIES, Counters
from hiitrack.store.cassandra.journal import STATEMENTS as JOURNAL_STATEMENTS
from hiitrack.store.cassandra.journal import Journal
from hiitrack.store.cassandra.partitions import STATEMENTS as INDEX_STATEMENTS
from hiitrack.store.cassandra.partitions import Entry, PartitionIndex
from hiitrack.store.cassandra.records import PER_VISITOR, Records
from hiitrack.store.cassandra.wire import ReactorConnection
from hiitrack.store.grouping import GroupCommitter, MergedWrite, Rows
from hiitrack.store.interface import StoreUnavailable, WriteBatch, check_batch
from hiitrack.store.kinds import KINDS, Kind, Kinds
from hiitrack.store.write_behind import Unfolded, WriteBehind

__all__ = ["CassandraStore"]

_log = Logger()

OPEN_TIMEOUT = 180.0
"""A backstop for the whole open, should the driver itself hang."""
WRITE_ATTEMPTS = 2
"""Attempts at each of a commit's writes before its requests are answered 503, unless one is in
doubt (`in_doubt`)."""
DOUBT_SECONDS = 60.0
"""How long a commit's failed writes are sent again, past `WRITE_ATTEMPTS`, while one of them is
in doubt (it may have been applied, or be applied later): until they land, its requests wait."""
DOUBT_PAUSE = 0.5
"""The pause between rounds of a commit's writes in doubt: a cluster that fails fast is not
asked again at once."""
UNIT_BYTES = 24 * 1024
"""Estimated bytes of the hits one logged batch carries: fewer, larger batches cost Cassandra
less per hit, and Cassandra logs a warning for each batch over ``batch_size_warn_threshold``
(5 KiB by default; docs/cassandra.md says to raise it)."""
LOGGED_BATCH_BYTES = 40 * 1024
"""Bytes of a commit's unit past which it is not one logged batch: Cassandra refuses batches over
``batch_size_fail_threshold`` (50 KiB by default).  Only a single request this large (an
import's) is such a unit."""
COMMIT_FILL = 4
COMMIT_FILL_WAIT = 0.0005
"""Under load, a commit ending with fewer than `COMMIT_FILL` hits waiting lets the next start half
a millisecond later, with those that came meanwhile: with 1,000 visitors a commit then carried 8
event hits instead of 5.3, and the server's CPU a hit fell by about a sixth; with 100,000 it moved
within the machine's noise (docs/performance.md, "Session 46")."""
CELL_BYTES = 24
"""What an increment adds to a journal entry, beyond its row and column (an overestimate)."""


def _weight(batch: WriteBatch) -> int:
    """A batch's bytes in a logged batch, estimated high: its records and its journal entry."""
    records = sum(ROW_BYTES + len(key) + len(value) for (_, key), value in batch.records.items())
    return records + sum(
        (len(row) + CELL_BYTES) * len(columns) + sum(map(len, columns)) for row, columns in batch.increments.items()
    )


class CassandraStore:
    def __init__(self, settings: Settings, reactor: Any = None, kinds: Kinds = KINDS) -> None:
        self.settings = settings
        self._reactor: Any = reactor or default_reactor
        self._kinds = kinds
        self._cluster: Cluster | None = None
        self._cql = Cql(self._reactor)
        self._index = PartitionIndex(self._cql, PER_VISITOR)
        self._records = Records(self._cql, self._index, kinds, self._reactor)
        self._counters = Counters(self._cql, self._index, self._reactor, settings.writer)
        self._journal = Journal(self._cql, settings.writer)
        self._behind = WriteBehind(self._reactor, self._fold_layer, "cassandra")
        self._group = GroupCommitter(
            lambda units: Deferred.fromCoroutine(self._commit(units)),
            weigh=_weight,
            unit_weight=UNIT_BYTES,
            reactor=self._reactor,
            fill=COMMIT_FILL,
            fill_wait=COMMIT_FILL_WAIT,
        )

    @classmethod
    def from_uri(cls, uri: str, kinds: Kinds = KINDS, reactor: Any = None, **options: Any) -> "CassandraStore":
        """A store for ``cassandra://HOST[,HOST...][:PORT]/KEYSPACE``; `options` as `Settings.of` takes them."""
        return cls(Settings.from_uri(uri, **options), reactor, kinds)

    def __repr__(self) -> str:
        return str(self.settings)

    def _in_thread(self, work: Any, *args: Any) -> Deferred:
        return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), work, *args)

    # Opening and closing.

    async def open(self) -> None:
        opening = self._in_thread(self._connect)
        opening.addTimeout(OPEN_TIMEOUT, self._reactor)
        try:
            await opening
        except StoreUnavailable:
            raise
        except Exception as error:
            raise StoreUnavailable(f"cassandra: could not open {self!r}: {error!r}") from error
        await self._replay()
        self._behind.start()

    async def _replay(self) -> None:
        """Fold what this writer journaled and had not folded when it last stopped."""
        folded, folding, entries = await self._journal.open()
        # A fold that was under way may have set some cells already: those
        # entries are one layer, ending where that fold ended.
        interrupted, later = Unfolded(folded), Unfolded(folding)
        for seq, rows in entries:
            (interrupted if seq <= folding else later).add(seq, rows)
        interrupted.upto = folding
        self._behind.layers = [interrupted, later]
        await self.fold()

    def _connect(self) -> None:
        connecting = cluster(self.settings, ReactorConnection)
        try:
            session = connecting.connect()
            schema.migrate(session, self.settings.keyspace, self.settings.replication)
            warned_over = batch_warn_bytes(session)
            if warned_over is not None and warned_over < UNIT_BYTES:
                _log.warn(
                    "cassandra: batch_size_warn_threshold is {bytes} bytes; HiiTrack writes logged batches"
                    " of up to {unit} bytes, so the nodes log a warning for many: raise it to 64KiB"
                    " (docs/cassandra.md)",
                    bytes=warned_over,
                    unit=UNIT_BYTES,
                )
            statements = {**self._records.statements(), **COUNTER_STATEMENTS, **JOURNAL_STATEMENTS, **INDEX_STATEMENTS}
            self._cql.connected(session, statements)
        except BaseException as error:
            connecting.shutdown()
            unavailable = translated(error)
            if unavailable is error:
                raise
            raise unavailable from error
        self._cluster = connecting

    async def close(self) -> None:
        try:
            self._behind.stop()
            await self._group.drain()
            if self._cluster is not None:
                # What is not folded now stays in the journal for the next start.
                await self.fold()
        finally:
            closing, self._cluster = self._cluster, None
            self._cql.closed()
            if closing is not None:
                await self._in_thread(closing.shutdown)

    # Records.

    async def get(self, scope: str, kind: Kind, key: str) -> bytes | None:
        return await self._records.get(scope, kind, key)

    async def scan(self, scope: str, kind: Kind) -> dict[str, bytes]:
        return await self._records.scan(scope, kind)

    async def page(self, scope: str, kind: Kind, after: str = "", limit: int = 100) -> list[tuple[str, bytes]]:
        return await self._records.page(scope, kind, after, limit)

    async def sweep(
        self, scope: str, kind: Kind, cursor: str = "", limit: int = 100
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        return await self._records.sweep(scope, kind, cursor, limit)

    async def create(self, scope: str, kind: Kind, key: str, value: bytes) -> bool:
        return await self._records.create(scope, kind, key, value)

    async def replace(self, scope: str, kind: Kind, key: str, old: bytes, new: bytes) -> bool:
        return await self._records.replace(scope, kind, key, old, new)

    async def delete(self, scope: str, kind: Kind, key: str) -> None:
        await self._records.delete(scope, kind, key)

    # Counters and writes.

    async def read_rows(
        self, scope: str, rows: Sequence[bytes], start: bytes = b"", end: bytes | None = None
    ) -> list[dict[bytes, int]]:
        return await self._counters.read_rows(scope, rows, list(self._behind.layers), start, end)

    async def write(self, batch: WriteBatch) -> None:
        check_batch(self._kinds, batch)
        await self._group.write(batch)

    async def _commit(self, units: list[MergedWrite]) -> None:
        entries, atomic, split = [], [], []
        for unit in units:
            unit_entries, records = self._records.upserts(unit)
            new, listing = self._index.unlisted(unit_entries)
            journaled = self._journal.number(unit.rows)
            appends = self._journal.appends(journaled)
            writes = listing + records + appends
            if sum(write.size for write in writes) <= LOGGED_BATCH_BYTES:
                atomic.append((writes, journaled, new))
            else:
                entries += new
                split.append((records, appends, journaled))
        # A partition is never written without being findable by drop: a
        # unit's new index entries are in its logged batch, a larger unit's
        # are listed first.  (A new visitor's first hit waits for one round
        # trip fewer.)
        await self._index.add(entries)
        # Cleared parts before the records they may precede (a batch's contract).
        await self._sent([clear for unit in units for clear in self._records.clears(unit)])
        # A unit's records (visitor state, history, insert ids) and its
        # journal entry land together or not at all: a process killed
        # mid-commit leaves no hit seen as applied but not counted.  A unit
        # is counted once its batch is applied, or sure to be.
        replayed: list[Write] = []

        def landed(at: int, later: bool) -> None:
            if at >= len(atomic):
                return
            writes, journaled, new = atomic[at]
            self._index.listed(new)
            self._count(journaled)
            if later:
                # Cassandra replays the batch within seconds; a restart, or
                # the visitor's next hit, before that must find it all the same.
                _log.info("cassandra: a logged batch timed out once in a batchlog: its writes are sent again")
                replayed.extend(writes)

        whole = [logged(writes) for writes, _, _ in atomic]
        parts = [part for records, _, _ in split for part in packed(records, BatchType.UNLOGGED)]
        await self._sent(whole + parts, landed)
        # A unit too large for one batch (an import's): its records are
        # written, so a retry of its hits is answered as applied; it is
        # counted from now on, even if its journal entries fail.
        for _, _, journaled in split:
            self._count(journaled)
        journal = [(write.statement, write.parameters) for _, appends, _ in split for write in appends]
        await self._sent(journal + packed(replayed, BatchType.UNLOGGED))

    def _count(self, journaled: list[tuple[int, Rows]]) -> None:
        """Journal entries from now on in reads and in the next fold."""
        for seq, rows in journaled:
            self._behind.add(seq, rows)

    async def _sent(self, writes: list[tuple[Any, Any]], landed: Callable[[int, bool], None] | None = None) -> None:
        """Writes that can run twice, those that failed sent again until none is in doubt;
        `landed` is told each one's index once it is applied, and whether Cassandra applies it later.

        A node killed mid-write makes some of them time out; what did land
        is kept, and sending again, now to live replicas, finishes the
        commit where giving up would leave part of it written.  A logged
        batch that timed out after its batchlog was written is applied by
        Cassandra itself: it is not sent again.  A write in doubt (no node
        answered in time: a batchlog may hold it) is sent again until it
        lands, for up to `DOUBT_SECONDS`: answered 503, its hits would be
        retried while Cassandra may still apply it, and the retry would find
        its `insert_id` applied and its counts missing.
        """
        pending = list(range(len(writes)))
        doubted: set[int] = set()
        attempt, doubt_ends = 0, None
        while True:
            attempt += 1
            outcomes = await self._cql.outcomes(writes[at] for at in pending)
            failed, errors = [], []
            for at, outcome in zip(pending, outcomes, strict=True):
                if not isinstance(outcome, BaseException) or batch_logged(outcome):
                    if landed is not None:
                        landed(at, isinstance(outcome, BaseException))
                else:
                    failed.append(at)
                    errors.append(outcome)
                    if in_doubt(outcome):
                        doubted.add(at)
            if not failed:
                return
            # Every success is told before the first failure is raised.
            final = [error for error in errors if not isinstance(error, StoreUnavailable)]
            if final:
                raise final[0]
            if attempt >= WRITE_ATTEMPTS:
                # A write stays in doubt until it lands, whatever its later attempts meet.
                doubtful = len(doubted.intersection(failed))
                if not doubtful:
                    raise errors[0]
                now = self._reactor.seconds()
                doubt_ends = now + DOUBT_SECONDS if doubt_ends is None else doubt_ends
                if now >= doubt_ends:
                    _log.error(
                        "cassandra: {count} writes still in doubt after {seconds:.0f} s: their hits are"
                        " answered 503, and are not counted if Cassandra applies them later ({error})",
                        count=doubtful,
                        seconds=DOUBT_SECONDS,
                        error=errors[0],
                    )
                    raise errors[0]
                _log.info(
                    "cassandra: {count} writes in doubt are sent again ({error})",
                    count=doubtful,
                    error=errors[0],
                )
                await deferLater(self._reactor, DOUBT_PAUSE, lambda: None)
            pending = failed

    async def fold(self) -> None:
        """Fold everything journaled so far into the counter cells."""
        await self._behind.fold()

    async def _fold_layer(self, layer: Unfolded) -> int:
        await self._journal.folding(layer.upto)
        cells = await self._counters.fold(layer)
        await self._journal.folded(layer.after, layer.upto)
        return cells

    # Whole scopes.

    async def _partitions(self, scope: str) -> tuple[list[tuple[str, tuple]], list[Entry]]:
        """The scope's partitions as (table, partition key), and its index entries."""
        entries = await self._index.of(scope)
        unknown = {entry.tbl for entry in entries if entry.tbl != TALLIES and not self._records.holds(entry.tbl)}
        if unknown:
            # Written by a HiiTrack with more kinds: deleting without them would orphan their rows.
            raise RuntimeError(f"cassandra: scope {scope!r} has partitions in tables this HiiTrack lacks: {unknown}")
        return self._records.partitions(scope, entries) + self._counters.partitions(entries), entries

    async def drop(self, scope: str) -> None:
        # Writes already accepted land first, so their index entries are read
        # below, and nothing of the scope is left to fold into a new generation.
        await self._group.drain()
        await self.fold()
        # Ending the generation first: increments from now on go to new partitions.
        await self._counters.end_generation(scope)
        partitions, entries = await self._partitions(scope)
        await self._cql.each((self._cql.statement(f"{table} drop"), key) for table, key in partitions)
        await self._index.remove(entries)

    async def drop_counters(self, scope: str) -> None:
        await self._group.drain()
        await self.fold()
        await self._counters.end_generation(scope)
        # The counters' entries are never spread: no need to page through a listing per visitor.
        entries = [entry for entry in await self._index.of(scope, spread=False) if entry.tbl == TALLIES]
        drop = self._cql.statement(f"{TALLIES} drop")
        await self._cql.each((drop, key) for _, key in self._counters.partitions(entries))
        await self._index.remove(entries)

    def caches(self) -> Mapping[str, CacheStats]:
        return {}

    async def count(self, scope: str) -> int:
        await self.fold()
        partitions, _ = await self._partitions(scope)
        results = await self._cql.each((self._cql.statement(f"{table} count"), key) for table, key in partitions)
        return sum(result.one()[0] for result in results)
