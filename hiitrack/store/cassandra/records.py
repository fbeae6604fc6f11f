"""Records in Cassandra: each registered kind routed to its table.

A kind's table (named by the registry, hiitrack.store.kinds) has the columns
``scope``, then the part its partitioning adds to the partition key (the
property of `ByPart` kinds, the shard of `Sharded` ones), then ``kind`` if
the table holds several kinds, then ``key`` and ``value``.  Every record is
written with ``USING TTL`` its kind's expiry.  Tests:
tests/test_store_contract.py, tests/test_cassandra.py.
"""

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hiitrack.store.cassandra.bridge import ROW_BYTES, Cql, Write, applied
from hiitrack.store.cassandra.lookups import Lookups
from hiitrack.store.cassandra.partitions import Entry, PartitionIndex, stored
from hiitrack.store.grouping import MergedWrite
from hiitrack.store.kinds import ByPart, ByScope, Kind, Kinds, Sharded

__all__ = ["PER_VISITOR", "TABLES", "Records", "Table"]


@dataclass(frozen=True)
class Table:
    """A records table as schema/ creates it.

    `part` is the partition-key column after ``scope``, if any (``shard``,
    an int, when `sharded`); `kinds` says whether a ``kind`` clustering
    column lets several kinds share the table; `per_visitor`, that a scope
    has a partition per visitor in it, so that its index entries are spread
    (partitions.py).
    """

    name: str
    part: str | None = None
    sharded: bool = False
    kinds: bool = False
    per_visitor: bool = False

    def statements(self) -> dict[str, str]:
        partition = ["scope", self.part] if self.part else ["scope"]
        of_kind = partition + (["kind"] if self.kinds else [])
        columns = [*of_kind, "key"]
        insert = f"INSERT INTO {self.name} ({', '.join(columns)}, value) VALUES ({', '.join('?' for _ in columns)}, ?)"
        statements = {
            f"{self.name} upsert": f"{insert} USING TTL ?",
            f"{self.name} create": f"{insert} IF NOT EXISTS USING TTL ?",
            f"{self.name} replace": (
                f"UPDATE {self.name} USING TTL ? SET value = ? WHERE {_where(columns)} IF value = ?"
            ),
            f"{self.name} get": f"SELECT value FROM {self.name} WHERE {_where(columns)}",
            f"{self.name} scan": f"SELECT key, value FROM {self.name} WHERE {_where(of_kind)}",
            f"{self.name} clear": f"DELETE FROM {self.name} WHERE {_where(of_kind)}",
            f"{self.name} delete": f"DELETE FROM {self.name} WHERE {_where(columns)}",
            f"{self.name} page": f"SELECT key, value FROM {self.name} WHERE {_where(of_kind)} AND key > ? LIMIT ?",
            f"{self.name} drop": f"DELETE FROM {self.name} WHERE {_where(partition)}",
            f"{self.name} count": f"SELECT count(*) FROM {self.name} WHERE {_where(partition)}",
        }
        if self.sharded:
            # The point reads of a reactor turn, together (hiitrack.store.cassandra.lookups).
            statements[f"{self.name} get many"] = (
                f"SELECT key, value FROM {self.name} WHERE scope = ? AND {self.part} IN ? AND key IN ?"
            )
        return statements

    def fits(self, kind: Kind) -> bool:
        """Whether the table's key has what the kind's partitioning needs."""
        match kind.partitioning:
            case ByScope():
                return self.part is None
            case ByPart():
                return self.part is not None and not self.sharded
            case Sharded():
                return self.sharded
        return False

    def encode_part(self, part: Any) -> bytes:
        return struct.pack(">i", part) if self.sharded else str(part).encode("utf-8")

    def decode_part(self, raw: bytes) -> Any:
        return struct.unpack(">i", raw)[0] if self.sharded else raw.decode("utf-8")


def _where(columns: list[str]) -> str:
    return " AND ".join(f"{column} = ?" for column in columns)


def _partition_key(table: Table, address: list[Any]) -> tuple:
    """The table and partition key of a record at `address` (its key columns before ``key``)."""
    return (table.name, *address[: 2 if table.part else 1])


def _size(key: str, value: bytes) -> int:
    """A record's size as Cassandra counts a batch."""
    return ROW_BYTES + len(key.encode("utf-8")) + len(value)


TABLES = {
    table.name: table
    for table in [
        Table("users"),
        Table("buckets"),
        Table("events"),
        Table("properties"),
        Table("property_values", part="property"),
        Table("funnels"),
        Table("visitors", part="shard", sharded=True),
        Table("insert_ids", part="shard", sharded=True),
        Table("funnel_states", part="shard", sharded=True),
        Table("funnel_levels", part="level"),
        Table("records", kinds=True),
        Table("hits", part="visitor", per_visitor=True),
    ]
}
PER_VISITOR = frozenset(table.name for table in TABLES.values() if table.per_visitor)
"""The tables with a partition per visitor: their index entries are spread (partitions.py)."""


class Records:
    def __init__(self, cql: Cql, index: PartitionIndex, kinds: Kinds, reactor: Any) -> None:
        self._cql = cql
        self._lookups = Lookups(cql, reactor)
        self._index = index
        self._kinds = kinds
        self._tables: dict[str, Table] = {}
        for kind in kinds:
            table = TABLES.get(kind.table)
            if table is None or not table.fits(kind):
                raise ValueError(f"record kind {kind.name!r}: no table {kind.table!r} of its partitioning")
            self._tables[table.name] = table

    def statements(self) -> dict[str, str]:
        return {name: cql for table in self._tables.values() for name, cql in table.statements().items()}

    def _partition(self, scope: str, kind: Kind, key: str) -> tuple[Table, list[Any]]:
        """The kind's table, and the key columns before ``key``."""
        table = self._tables[self._kinds.check(kind).table]
        address: list[Any] = [stored(scope)]
        match kind.partitioning:
            case ByPart():
                address.append(kind.part)
            case Sharded() as sharded:
                address.append(sharded.shard(key))
        if table.kinds:
            address.append(kind.name)
        return table, address

    def _entry(self, table: Table, address: list[Any]) -> Entry | None:
        """The index entry of a partition whose key is more than the scope."""
        return Entry(address[0], table.name, table.encode_part(address[1])) if table.part else None

    async def get(self, scope: str, kind: Kind, key: str) -> bytes | None:
        table, address = self._partition(scope, kind, key)
        if table.sharded:
            return await self._lookups.get(table.name, address[0], address[1], key)
        row = (await self._cql.execute(f"{table.name} get", (*address, key))).one()
        return None if row is None else row.value

    async def scan(self, scope: str, kind: Kind) -> dict[str, bytes]:
        table, address = self._partition(scope, kind, "")
        if isinstance(kind.partitioning, Sharded):
            addresses = [[*address[:1], shard, *address[2:]] for shard in range(kind.partitioning.shards)]
        else:
            addresses = [address]
        pages = await self._cql.each_rows((f"{table.name} scan", tuple(each)) for each in addresses)
        return {row.key: row.value for rows in pages for row in rows}

    async def page(self, scope: str, kind: Kind, after: str = "", limit: int = 100) -> list[tuple[str, bytes]]:
        table, address = self._partition(scope, self._kinds.check_part(kind), "")
        rows = await self._cql.rows(f"{table.name} page", (*address, after, limit))
        return [(row.key, row.value) for row in rows]

    async def sweep(
        self, scope: str, kind: Kind, cursor: str = "", limit: int = 100
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        # Shard after shard, each in key order: the cursor is "SHARD:LAST_KEY".
        shards = self._kinds.check_sharded(kind).shards
        table, address = self._partition(scope, kind, "")
        shard_text, _, after = cursor.partition(":")
        shard = int(shard_text or 0)
        while True:
            rows = await self._cql.rows(f"{table.name} page", (address[0], shard, *address[2:], after, limit))
            found = [(row.key, row.value) for row in rows]
            if len(found) == limit:
                return found, f"{shard}:{found[-1][0]}"
            shard, after = shard + 1, ""
            if found or shard == shards:
                return found, None if shard == shards else f"{shard}:"

    async def create(self, scope: str, kind: Kind, key: str, value: bytes) -> bool:
        table, address = self._partition(scope, kind, key)
        entry = self._entry(table, address)
        if entry is not None:
            await self._index.add([entry])
        result = await self._cql.execute(f"{table.name} create", (*address, key, value, kind.expiry or 0))
        return applied(result)

    async def replace(self, scope: str, kind: Kind, key: str, old: bytes, new: bytes) -> bool:
        table, address = self._partition(scope, kind, key)
        result = await self._cql.execute(f"{table.name} replace", (kind.expiry or 0, new, *address, key, old))
        return applied(result)

    async def delete(self, scope: str, kind: Kind, key: str) -> None:
        table, address = self._partition(scope, kind, key)
        await self._cql.execute(f"{table.name} delete", (*address, key))

    def upserts(self, merged: MergedWrite) -> tuple[list[Entry], list[Write]]:
        """A commit's records and deletions: the index entries they need, and their writes."""
        entries = []
        writes = []
        for (scope, kind, key), value in merged.records.items():
            table, address = self._partition(scope, kind, key)
            entry = self._entry(table, address)
            if entry is not None:
                entries.append(entry)
            upsert = self._cql.statement(f"{table.name} upsert")
            parameters = (*address, key, value, kind.expiry or 0)
            writes.append(Write(_partition_key(table, address), upsert, parameters, _size(key, value)))
        for scope, kind, key in merged.deletions:
            table, address = self._partition(scope, kind, key)
            delete = self._cql.statement(f"{table.name} delete")
            writes.append(Write(_partition_key(table, address), delete, (*address, key), _size(key, b"")))
        return entries, writes

    def clears(self, merged: MergedWrite) -> list[tuple[Any, Any]]:
        """A commit's cleared parts (one partition or slice each), as statements."""
        statements = []
        for scope, kind in merged.cleared:
            table, address = self._partition(scope, kind, "")
            statements.append((self._cql.statement(f"{table.name} clear"), tuple(address)))
        return statements

    def partitions(self, scope: str, entries: Iterable[Entry]) -> list[tuple[str, tuple]]:
        """A scope's partitions as (table, partition key): the scope's own, and the indexed ones."""
        found: list[tuple[str, tuple]] = [
            (table.name, (stored(scope),)) for table in self._tables.values() if not table.part
        ]
        for entry in entries:
            table = self._tables.get(entry.tbl)
            if table is not None:
                found.append((table.name, (entry.scope, table.decode_part(entry.part))))
        return found

    def holds(self, tbl: str) -> bool:
        return tbl in self._tables
