"""Which partitions each scope has written: what deleting a scope must delete.

Cassandra cannot delete by a prefix of a partition key, so every partition
whose key is more than the scope (counter rows, a property's values, shards
of visitors and insert ids) is listed in ``scope_partitions`` before it is
first written.  Each process remembers the entries it wrote, in a bounded
cache, so an entry costs one write per partition per process.  Also how a
scope is written in a partition key.  Tests: tests/test_cassandra.py.
"""

from collections.abc import Iterable
from typing import Any, NamedTuple

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

    def _writes(self, name: str, entries: Iterable[Entry]) -> list[tuple[Any, Any]]:
        """Statement `name` for each entry, in batches."""
        statement = self._cql.statement(name)
        return packed(
            (Write(entry.scope, statement, entry, ROW_BYTES + len(entry.tbl) + len(entry.part)) for entry in entries),
            BatchType.UNLOGGED,
        )

    async def add(self, entries: Iterable[Entry]) -> None:
        """List partitions before they are written, unless this process already did."""
        new = [entry for entry in set(entries) if self._written.get(entry) is None]
        if not new:
            return
        await self._cql.each(self._writes("index add", new))
        for entry in new:
            self._written.put(entry, True)

    async def of(self, scope: str) -> list[Entry]:
        stored_scope = stored(scope)
        return [Entry(stored_scope, row.tbl, row.part) for row in await self._cql.rows("index list", (stored_scope,))]

    async def remove(self, entries: list[Entry]) -> None:
        """Unlist partitions of one scope that were deleted."""
        await self._cql.each(self._writes("index remove", entries))
        for entry in entries:
            self._written.pop(entry)
