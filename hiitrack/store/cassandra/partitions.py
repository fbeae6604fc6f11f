"""Which partitions each scope has written: what deleting a scope must delete.

Cassandra cannot delete by a prefix of a partition key, so every partition
whose key is more than the scope (counter rows, a property's values, shards
of visitors and insert ids, visitors' histories) is listed in
``scope_partitions`` before it is first written, or in the logged batch of
that first write, which Cassandra applies whole or not at all.  Each process
remembers the entries it wrote, in a bounded cache, so an entry costs one
write per partition per process.  Also how a scope is written in a
partition key.  Tests: tests/test_cassandra.py.
"""

from collections.abc import Iterable
from typing import NamedTuple

from cassandra.query import BatchType

from hiitrack.caching import LRU
from hiitrack.store.cassandra.bridge import ROW_BYTES, Cql, Write, packed

__all__ = ["STATEMENTS", "Entry", "PartitionIndex", "stored"]

INSTALLATION = "."
"""How the installation scope "" is stored: Cassandra rejects empty partition keys."""
INDEX_CACHE = 200_000
"""Partitions remembered as already written to scope_partitions."""

STATEMENTS = {
    "index add": "INSERT INTO scope_partitions (scope, tbl, part) VALUES (?, ?, ?)",
    "index list": "SELECT tbl, part FROM scope_partitions WHERE scope = ?",
    "index remove": "DELETE FROM scope_partitions WHERE scope = ? AND tbl = ? AND part = ?",
}


def stored(scope: str) -> str:
    return scope or INSTALLATION


class Entry(NamedTuple):
    """A partition: its stored scope, its table, and the rest of its key, encoded."""

    scope: str
    tbl: str
    part: bytes


class PartitionIndex:
    def __init__(self, cql: Cql) -> None:
        self._cql = cql
        self._written: LRU[Entry, bool] = LRU(INDEX_CACHE)

    def _writes(self, name: str, entries: Iterable[Entry]) -> list[Write]:
        """Statement `name` for each entry."""
        statement = self._cql.statement(name)
        return [Write(entry.scope, statement, entry, ROW_BYTES + len(entry.tbl) + len(entry.part)) for entry in entries]

    def unlisted(self, entries: Iterable[Entry]) -> tuple[list[Entry], list[Write]]:
        """Those of `entries` this process has not listed yet, and the writes that list them: to
        send before, or in the logged batch of, the partitions' first writes (then `listed`)."""
        new = [entry for entry in set(entries) if self._written.get(entry) is None]
        return new, self._writes("index add", new)

    def listed(self, entries: Iterable[Entry]) -> None:
        """Entries whose writes were applied: not written again by this process."""
        for entry in entries:
            self._written.put(entry, True)

    async def add(self, entries: Iterable[Entry]) -> None:
        """List partitions before they are written, unless this process already did."""
        new, writes = self.unlisted(entries)
        if new:
            await self._cql.each(packed(writes, BatchType.UNLOGGED))
            self.listed(new)

    async def of(self, scope: str) -> list[Entry]:
        stored_scope = stored(scope)
        return [Entry(stored_scope, row.tbl, row.part) for row in await self._cql.rows("index list", (stored_scope,))]

    async def remove(self, entries: list[Entry]) -> None:
        """Unlist partitions of one scope that were deleted."""
        await self._cql.each(packed(self._writes("index remove", entries), BatchType.UNLOGGED))
        for entry in entries:
            self._written.pop(entry)
