"""Counters in Cassandra: increments, row slices, and each scope's generation.

A scope's counters live under its current generation (see the
scope_generations table in schema/v001.py): a random id made by a
lightweight transaction on the scope's first increment and ended when the
scope is dropped, because Cassandra cannot reuse a deleted counter.  Each
process trusts the generation it read for `GENERATION_SECONDS`.  A commit's
increments go out in COUNTER batches of several partitions (bridge.packed),
one statement for the cells of a row that gain the same amount.
Tests: tests/test_store_contract.py, tests/test_cassandra.py.
"""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from twisted.internet.defer import Deferred

from hiitrack.caching import LRU
from hiitrack.store.cassandra.bridge import COUNTER_BYTES, Cql, Write, chunks, gather
from hiitrack.store.cassandra.partitions import Entry, stored
from hiitrack.store.grouping import MergedWrite

__all__ = ["COUNTERS", "STATEMENTS", "Counters"]

COUNTERS = "counters"
GENERATION_CACHE = 100_000
GENERATION_SECONDS = 10.0
"""How long a scope's counter generation is trusted before it is read again."""
COLUMNS_PER_STATEMENT = 256
"""Cells of one row one statement adds the same amount to (``col IN ?``): most cells of a
commit are + 1, and a statement per cell was most of the driver's work."""

READ_ROW = "SELECT col, n FROM counters WHERE scope = ? AND generation = ? AND row = ? AND col >= ?"
STATEMENTS = {
    "counters add": "UPDATE counters SET n = n + ? WHERE scope = ? AND generation = ? AND row = ? AND col IN ?",
    "counters read": READ_ROW,
    "counters read before": READ_ROW + " AND col < ?",
    "counters drop": "DELETE FROM counters WHERE scope = ? AND generation = ? AND row = ?",
    "counters count": "SELECT count(*) FROM counters WHERE scope = ? AND generation = ? AND row = ?",
    "generation": "SELECT generation FROM scope_generations WHERE scope = ?",
    "generation new": "INSERT INTO scope_generations (scope, generation) VALUES (?, ?) IF NOT EXISTS",
    "generation end": "DELETE FROM scope_generations WHERE scope = ? IF EXISTS",
}


class Counters:
    def __init__(self, cql: Cql, reactor: Any) -> None:
        self._cql = cql
        self._reactor = reactor
        # Stored scope -> (counter generation, when it was read).
        self._generations: LRU[str, tuple[uuid.UUID, float]] = LRU(GENERATION_CACHE)

    async def _generation(self, stored_scope: str, create: bool) -> uuid.UUID | None:
        """The scope's counter generation; a new one if it has none and `create`."""
        cached = self._generations.get(stored_scope)
        now = self._reactor.seconds()
        if cached is not None and now - cached[1] < GENERATION_SECONDS:
            return cached[0]
        row = (await self._cql.execute("generation", (stored_scope,))).one()
        generation = None if row is None else row.generation
        if generation is None and create:
            candidate = uuid.uuid4()
            result = await self._cql.execute("generation new", (stored_scope, candidate))
            # A lightweight transaction that lost answers with the winner's row.
            generation = candidate if result.was_applied else result.one().generation
        if generation is not None:
            self._generations.put(stored_scope, (generation, now))
        return generation

    async def increments(self, merged: MergedWrite) -> tuple[list[Entry], list[Write]]:
        """A commit's increments: the index entries they need, and their writes."""
        scopes = sorted({stored(scope) for scope, _, _ in merged.increments})
        found = await gather(Deferred.fromCoroutine(self._generation(scope, create=True)) for scope in scopes)
        generations = dict(zip(scopes, found, strict=True))
        add = self._cql.statement("counters add")
        entries: dict[tuple, Entry] = {}
        same_amount: dict[tuple, list[bytes]] = {}
        for (scope, row, column), amount in merged.increments.items():
            stored_scope = stored(scope)
            generation = generations[stored_scope]
            partition = (stored_scope, generation, row)
            if partition not in entries:
                entries[partition] = Entry(stored_scope, COUNTERS, generation.bytes + row)
            same_amount.setdefault((partition, amount), []).append(column)
        writes = [
            Write(partition, add, (amount, *partition, part), sum(COUNTER_BYTES + len(column) for column in part))
            for (partition, amount), columns in same_amount.items()
            for part in chunks(columns, COLUMNS_PER_STATEMENT)
        ]
        return list(entries.values()), writes

    async def read_rows(
        self, scope: str, rows: Sequence[bytes], start: bytes = b"", end: bytes | None = None
    ) -> list[dict[bytes, int]]:
        bounds = (start,) if end is None else (start, end)
        statement = self._cql.statement("counters read" if end is None else "counters read before")
        generation = await self._generation(stored(scope), create=False)
        if generation is None:
            return [{} for _ in rows]
        slices = await self._cql.each_rows((statement, (stored(scope), generation, row, *bounds)) for row in rows)
        # A cell at 0 (an erased visitor's increments taken back) reads as absent.
        return [{cell.col: cell.n for cell in cells if cell.n} for cells in slices]

    async def end_generation(self, scope: str) -> None:
        """From now on the scope's increments go to new partitions."""
        await self._cql.execute("generation end", (stored(scope),))
        self._generations.pop(stored(scope))

    def partitions(self, entries: Iterable[Entry]) -> list[tuple[str, tuple]]:
        """The counter partitions among a scope's index entries, as (table, partition key)."""
        return [
            (COUNTERS, (entry.scope, uuid.UUID(bytes=entry.part[:16]), entry.part[16:]))
            for entry in entries
            if entry.tbl == COUNTERS
        ]
