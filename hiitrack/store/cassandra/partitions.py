"""Which partitions each scope has written: what deleting a scope must delete.

Cassandra cannot delete by a prefix of a partition key, so every partition
whose key is more than the scope (counter rows, a property's values, shards
of visitors and insert ids, visitors' histories) is listed in
``scope_partitions`` before it is first written, or in the logged batch of
that first write, which Cassandra applies whole or not at all.  Each process
remembers the entries it wrote, in a bounded cache, so an entry costs one
write per partition per process.  Also how a scope is written in a
partition key.

A bucket's entries are bounded by its catalog and its age, except those of
tables with a partition per visitor (the history): listed under the scope,
a bucket of 10 million visitors would hold one index partition of 10
million rows, far past the size Cassandra handles well.  Their entries are
spread over `SPREAD_SHARDS` index partitions of their own, keyed by the
scope, `SPREAD_MARK`, the table and a shard of the entry; entries listed
under the scope itself before (by a HiiTrack before this spread) are still
read and removed where they are.  Tests: tests/test_cassandra.py.
"""

import zlib
from collections.abc import Iterable
from typing import NamedTuple

from cassandra.query import BatchType

from hiitrack.caching import LRU
from hiitrack.store.cassandra.bridge import ROW_BYTES, Cql, Write, packed

__all__ = ["SPREAD_SHARDS", "STATEMENTS", "Entry", "PartitionIndex", "stored"]

INSTALLATION = "."
"""How the installation scope "" is stored: Cassandra rejects empty partition keys."""
INDEX_CACHE = 200_000
"""Partitions remembered as already written to scope_partitions."""
SPREAD_SHARDS = 64
"""Index partitions per scope for the entries of each table with a partition per visitor."""
SPREAD_MARK = "#"
"""Between the scope and the rest of a spread index partition's key: never in a scope (user and
bucket names are letters, digits, ``_``, ``.`` and ``-``, joined by ``/``)."""

STATEMENTS = {
    "index add": "INSERT INTO scope_partitions (scope, tbl, part) VALUES (?, ?, ?)",
    "index list": "SELECT tbl, part FROM scope_partitions WHERE scope = ?",
    "index remove": "DELETE FROM scope_partitions WHERE scope = ? AND tbl = ? AND part = ?",
}


def stored(scope: str) -> str:
    return scope or INSTALLATION


def _spread_partition(stored_scope: str, tbl: str, shard: int) -> str:
    return f"{stored_scope}{SPREAD_MARK}{tbl}/{shard}"


class Entry(NamedTuple):
    """A partition: its stored scope, its table, and the rest of its key, encoded.

    `listed_in` is the index partition an entry was read from (`PartitionIndex.of`); empty for an
    entry to list, which goes where `PartitionIndex` puts its table's entries.
    """

    scope: str
    tbl: str
    part: bytes
    listed_in: str = ""


class PartitionIndex:
    """The index; `spread` names the tables with a partition per visitor."""

    def __init__(self, cql: Cql, spread: Iterable[str]) -> None:
        self._cql = cql
        self._spread = frozenset(spread)
        self._written: LRU[Entry, bool] = LRU(INDEX_CACHE)

    def _listed_in(self, entry: Entry) -> str:
        """The index partition that holds `entry`."""
        if entry.listed_in:
            return entry.listed_in
        if entry.tbl not in self._spread:
            return entry.scope
        return _spread_partition(entry.scope, entry.tbl, zlib.crc32(entry.part) % SPREAD_SHARDS)

    def _writes(self, name: str, entries: Iterable[Entry]) -> list[Write]:
        """Statement `name` for each entry."""
        statement = self._cql.statement(name)
        return [
            Write(
                listed_in := self._listed_in(entry),
                statement,
                (listed_in, entry.tbl, entry.part),
                ROW_BYTES + len(entry.tbl) + len(entry.part),
            )
            for entry in entries
        ]

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

    async def of(self, scope: str, spread: bool = True) -> list[Entry]:
        """The scope's entries, from its own index partition and, with `spread`, the spread ones
        (which hold only the entries of tables with a partition per visitor: one per visitor)."""
        stored_scope = stored(scope)
        listings = [stored_scope]
        if spread:
            listings += [
                _spread_partition(stored_scope, tbl, shard) for tbl in self._spread for shard in range(SPREAD_SHARDS)
            ]
        pages = await self._cql.each_rows((self._cql.statement("index list"), (listed_in,)) for listed_in in listings)
        return [
            Entry(stored_scope, row.tbl, row.part, listed_in)
            for listed_in, rows in zip(listings, pages, strict=True)
            for row in rows
        ]

    async def remove(self, entries: list[Entry]) -> None:
        """Unlist partitions of one scope that were deleted."""
        await self._cql.each(packed(self._writes("index remove", entries), BatchType.UNLOGGED))
        for entry in entries:
            self._written.pop(entry._replace(listed_in=""))
