"""The Cassandra store: records.py and counters.py over one session.

Opening connects (connect.py), brings the keyspace to the current schema
version (schema/) and prepares every statement; the driver does these
blocking, so they run in a thread, the rest through bridge.py.  Writes go
through the shared `GroupCommitter`: a commit lists new partitions in the
scope index (partitions.py), then writes records, then counters, each in as
few batches as Cassandra takes without a warning.  A node
that is down, overloaded or slow turns into `StoreUnavailable` (HTTP 503)
within `REQUEST_TIMEOUT`; the driver reconnects by itself.  Tests:
tests/test_store_contract.py, tests/test_cassandra.py,
tests/test_migrations.py, tests/test_cassandra_outage.py.
"""

from collections.abc import Sequence
from typing import Any

from cassandra.cluster import Cluster
from cassandra.query import BatchType
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool

from hiitrack.store.cassandra import schema
from hiitrack.store.cassandra.bridge import Cql, packed, translated
from hiitrack.store.cassandra.connect import Settings, cluster
from hiitrack.store.cassandra.counters import COUNTERS, Counters
from hiitrack.store.cassandra.counters import STATEMENTS as COUNTER_STATEMENTS
from hiitrack.store.cassandra.partitions import STATEMENTS as INDEX_STATEMENTS
from hiitrack.store.cassandra.partitions import Entry, PartitionIndex
from hiitrack.store.cassandra.records import Records
from hiitrack.store.grouping import GroupCommitter, MergedWrite
from hiitrack.store.interface import StoreUnavailable, WriteBatch, check_batch
from hiitrack.store.kinds import KINDS, Kind, Kinds

__all__ = ["CassandraStore"]

OPEN_TIMEOUT = 180.0
"""A backstop for the whole open, should the driver itself hang."""


class CassandraStore:
    def __init__(self, settings: Settings, reactor: Any = None, kinds: Kinds = KINDS) -> None:
        self.settings = settings
        self._reactor: Any = reactor or default_reactor
        self._kinds = kinds
        self._cluster: Cluster | None = None
        self._cql = Cql(self._reactor)
        self._index = PartitionIndex(self._cql)
        self._records = Records(self._cql, self._index, kinds)
        self._counters = Counters(self._cql, self._reactor)
        self._group = GroupCommitter(lambda merged: Deferred.fromCoroutine(self._commit(merged)))

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

    def _connect(self) -> None:
        connecting = cluster(self.settings)
        try:
            session = connecting.connect()
            schema.migrate(session, self.settings.keyspace, self.settings.replication)
            self._cql.connected(session, {**self._records.statements(), **COUNTER_STATEMENTS, **INDEX_STATEMENTS})
        except BaseException as error:
            connecting.shutdown()
            unavailable = translated(error)
            if unavailable is error:
                raise
            raise unavailable from error
        self._cluster = connecting

    async def close(self) -> None:
        try:
            await self._group.drain()
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
        return await self._counters.read_rows(scope, rows, start, end)

    async def write(self, batch: WriteBatch) -> None:
        check_batch(self._kinds, batch)
        await self._group.write(batch)

    async def _commit(self, merged: MergedWrite) -> None:
        record_entries, records = self._records.upserts(merged)
        counter_entries, increments = await self._counters.increments(merged)
        # The index first: a partition is never written without being findable by drop.
        await self._index.add(record_entries + counter_entries)
        # Cleared parts before the records they may precede (a batch's contract).
        await self._cql.each(self._records.clears(merged))
        # Records (visitor state, insert ids) before counters: Cassandra cannot
        # make both one atomic write, and if the process dies between them a
        # retried hit is then seen as applied (an undercount at worst), never
        # counted twice.
        await self._cql.each(packed(records, BatchType.UNLOGGED))
        await self._cql.each(packed(increments, BatchType.COUNTER))

    # Whole scopes.

    async def _partitions(self, scope: str) -> tuple[list[tuple[str, tuple]], list[Entry]]:
        """The scope's partitions as (table, partition key), and its index entries."""
        entries = await self._index.of(scope)
        unknown = {entry.tbl for entry in entries if entry.tbl != COUNTERS and not self._records.holds(entry.tbl)}
        if unknown:
            # Written by a HiiTrack with more kinds: deleting without them would orphan their rows.
            raise RuntimeError(f"cassandra: scope {scope!r} has partitions in tables this HiiTrack lacks: {unknown}")
        return self._records.partitions(scope, entries) + self._counters.partitions(entries), entries

    async def drop(self, scope: str) -> None:
        # Writes already accepted land first, so their index entries are read below.
        await self._group.drain()
        # Ending the generation first: increments from now on go to new partitions.
        await self._counters.end_generation(scope)
        partitions, entries = await self._partitions(scope)
        await self._cql.each((self._cql.statement(f"{table} drop"), key) for table, key in partitions)
        await self._index.remove(entries)

    async def drop_counters(self, scope: str) -> None:
        await self._group.drain()
        await self._counters.end_generation(scope)
        entries = [entry for entry in await self._index.of(scope) if entry.tbl == COUNTERS]
        drop = self._cql.statement(f"{COUNTERS} drop")
        await self._cql.each((drop, key) for _, key in self._counters.partitions(entries))
        await self._index.remove(entries)

    async def count(self, scope: str) -> int:
        partitions, _ = await self._partitions(scope)
        results = await self._cql.each((self._cql.statement(f"{table} count"), key) for table, key in partitions)
        return sum(result.one()[0] for result in results)
