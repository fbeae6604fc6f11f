"""Counters in Cassandra: each writer's running totals, folded from its journal, and row slices.

A cell (scope, row, column) is one `tallies` row per writer (process) that
added to it: the writer's total and the last journal entry it includes.  A
fold (journal.py) sets each cell it touches to its new total, so a fold sent
twice, or replayed after a crash, writes the same values: exact where a
counter column could count a retried write twice.  A large fold goes in
parts of `FOLD_PART` cells, so that no step of it holds the reactor long.
A reader sums the writers' cells of each column, plus what its own process
holds unfolded (the entries past its cells' `through`).  Each process keeps the totals it
last wrote in a bounded cache and reads the others before a fold.

A scope's cells live under its current generation (see the
scope_generations table in schema/v001.py): a random id made by a
lightweight transaction on the scope's first fold and ended when the scope
is dropped.  Each process trusts the generation it read for
`GENERATION_SECONDS`.  Tests: tests/test_store_contract.py,
tests/test_cassandra.py, tests/test_write_behind.py.
"""

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from cassandra.query import BatchType

from hiitrack.caching import LRU
from hiitrack.gathering import together
from hiitrack.store.cassandra.bridge import ROW_BYTES, Cql, Write, applied, chunks, packed
from hiitrack.store.cassandra.partitions import Entry, PartitionIndex, stored
from hiitrack.store.interface import in_parts
from hiitrack.store.write_behind import Unfolded, with_amounts

__all__ = ["STATEMENTS", "TALLIES", "Counters"]

TALLIES = "tallies"
GENERATION_CACHE = 100_000
GENERATION_SECONDS = 10.0
"""How long a scope's counter generation is trusted before it is read again."""
TOTALS_CACHE = 100_000
"""Cells whose total this process remembers; a fold reads the others first."""
COLUMNS_PER_READ = 256
FOLD_PART = 2048
"""Cells a fold works out and writes at a time.  A fold of 25,000 cells (a few seconds of
saturated batch load from 100,000 visitors) worked out at once held the reactor thread for up to
a second, every request waiting; a fold of a light load (under 1,000 cells) is one part, as
before (docs/performance.md, "Session 38")."""

READ_ROW = "SELECT col, writer, n, through FROM tallies WHERE scope = ? AND generation = ? AND row = ? AND col >= ?"
STATEMENTS = {
    "tallies read": READ_ROW,
    "tallies read before": READ_ROW + " AND col < ?",
    "tallies of columns": (
        "SELECT col, writer, n, through FROM tallies WHERE scope = ? AND generation = ? AND row = ? AND col IN ?"
    ),
    "tallies put": (
        "UPDATE tallies SET n = ?, through = ?"
        " WHERE scope = ? AND generation = ? AND row = ? AND col = ? AND writer = ?"
    ),
    "tallies drop": "DELETE FROM tallies WHERE scope = ? AND generation = ? AND row = ?",
    "tallies count": "SELECT count(*) FROM tallies WHERE scope = ? AND generation = ? AND row = ?",
    "generation": "SELECT generation FROM scope_generations WHERE scope = ?",
    "generation new": "INSERT INTO scope_generations (scope, generation) VALUES (?, ?) IF NOT EXISTS",
    "generation end": "DELETE FROM scope_generations WHERE scope = ? IF EXISTS",
}

Partition = tuple[str, uuid.UUID, bytes]
"""(stored scope, generation, row)."""
Cell = tuple[Partition, bytes]
"""A partition and a column."""
TotalKey = tuple[str, bytes, bytes, bytes]
"""A cell as the totals cache keys it: (stored scope, generation's bytes, row, column).  Of
strings and bytes only, so that Python's collector stops tracking it, where a `uuid.UUID` kept
each of the cache's keys tracked: under saturated batch load, by the end of a 30-s run, about two
thirds of the objects a full collection went through (docs/performance.md, "Session 39")."""


def _key_of(partition: Partition) -> tuple[str, bytes, bytes]:
    """The first three parts of a `TotalKey`."""
    scope, generation, row = partition
    return scope, generation.bytes, row


class Counters:
    def __init__(self, cql: Cql, index: PartitionIndex, reactor: Any, writer: str) -> None:
        self._cql = cql
        self._index = index
        self._reactor = reactor
        self._writer = writer
        # Stored scope -> (counter generation, when it was read).
        self._generations: LRU[str, tuple[uuid.UUID, float]] = LRU(GENERATION_CACHE)
        # TotalKey -> (this writer's total, through).
        self._totals: LRU[TotalKey, tuple[int, int]] = LRU(TOTALS_CACHE)

    async def _generation(self, stored_scope: str, create: bool) -> tuple[uuid.UUID | None, bool]:
        """The scope's counter generation, a new one if it has none and `create`; and whether this
        call made it (then it holds no cells yet)."""
        cached = self._generations.get(stored_scope)
        now = self._reactor.seconds()
        if cached is not None and now - cached[1] < GENERATION_SECONDS:
            return cached[0], False
        row = (await self._cql.execute("generation", (stored_scope,))).one()
        generation = None if row is None else row.generation
        made = False
        if generation is None and create:
            candidate = uuid.uuid4()
            result = await self._cql.execute("generation new", (stored_scope, candidate))
            # A lightweight transaction that lost answers with the winner's row.
            made = applied(result)
            generation = candidate if made else result.one().generation
        if generation is not None:
            self._generations.put(stored_scope, (generation, now))
        return generation, made

    async def fold(self, layer: Unfolded) -> int:
        """Set every cell `layer` touches to this writer's total with it, unless the cell holds it
        already; how many cells were set."""
        scopes = sorted({stored(scope) for scope, _ in layer.rows})
        found = await together(*(self._generation(scope, create=True) for scope in scopes))
        generations = {scope: generation for scope, (generation, _) in zip(scopes, found, strict=True)}
        # A generation this fold made has no cells to read totals from (a
        # bucket's first fold: thousands of cells at once).
        made = {generation for generation, new in found if new}
        cells = {}
        for (scope, row), columns in layer.rows.items():
            stored_scope = stored(scope)
            cells[stored_scope, generations[stored_scope], row] = columns
        await self._index.add(Entry(scope, TALLIES, generation.bytes + row) for scope, generation, row in cells)
        written = 0
        for part in in_parts(cells, FOLD_PART):
            written += await self._fold_part(part, made, layer.upto)
        return written

    async def _fold_part(self, cells: dict[Partition, dict[bytes, int]], made: set[uuid.UUID], upto: int) -> int:
        """Set each of `cells` to this writer's total through journal entry `upto`, unless it holds it
        already (`made`: generations with no cells yet); how many were set."""
        put = self._cql.statement("tallies put")
        keys = {partition: _key_of(partition) for partition in cells}
        totals: dict[TotalKey, tuple[int, int]] = {}
        writes = []
        for (partition, column), (n, through) in (await self._stored_totals(cells, made)).items():
            if through >= upto:
                continue
            total = n + cells[partition][column]
            totals[*keys[partition], column] = (total, upto)
            size = ROW_BYTES + len(column) + len(self._writer) + 16
            writes.append(Write(partition, put, (total, upto, *partition, column, self._writer), size))
        await self._cql.each(packed(writes, BatchType.UNLOGGED))
        for key, total_through in totals.items():
            self._totals.put(key, total_through)
        return len(writes)

    async def _stored_totals(
        self, cells: dict[Partition, dict[bytes, int]], empty: set[uuid.UUID]
    ) -> dict[Cell, tuple[int, int]]:
        """This writer's (total, through) of each cell: from the cache, else read ((0, 0) if none),
        except in the generations `empty`, which hold no cells."""
        known: dict[Cell, tuple[int, int]] = {}
        queries = []
        statement = self._cql.statement("tallies of columns")
        for partition, columns in cells.items():
            if partition[1] in empty:
                known.update(dict.fromkeys([(partition, column) for column in columns], (0, 0)))
                continue
            missing = []
            key = _key_of(partition)
            for column in columns:
                cached = self._totals.get((*key, column))
                if cached is None:
                    missing.append(column)
                    known[partition, column] = (0, 0)
                else:
                    known[partition, column] = cached
            queries += [(statement, (*partition, part)) for part in chunks(sorted(missing), COLUMNS_PER_READ)]
        for (_, (scope, generation, row, _)), found in zip(queries, await self._cql.each_rows(queries), strict=True):
            for cell in found:
                if cell.writer == self._writer:
                    known[(scope, generation, row), cell.col] = (cell.n, cell.through)
        return known

    async def read_rows(
        self,
        scope: str,
        rows: Sequence[bytes],
        unfolded: Sequence[Unfolded],
        start: bytes = b"",
        end: bytes | None = None,
    ) -> list[dict[bytes, int]]:
        """Each row's cells in ``start <= col < end``: every writer's, and this process's `unfolded` layers."""
        bounds = (start,) if end is None else (start, end)
        statement = self._cql.statement("tallies read" if end is None else "tallies read before")
        generation, _ = await self._generation(stored(scope), create=False)
        if generation is None:
            slices: list[list] = [[] for _ in rows]
        else:
            slices = await self._cql.each_rows((statement, (stored(scope), generation, row, *bounds)) for row in rows)
        found = []
        for row, cells in zip(rows, slices, strict=True):
            # Clustered by (col, writer): the sums come in column order, as a report needs them.
            sums: dict[bytes, int] = {}
            mine: dict[bytes, int] = {}
            for col, writer, n, through in cells:
                sums[col] = sums.get(col, 0) + n
                if writer == self._writer:
                    mine[col] = through
            # A layer's amount of a column this process's tallies already hold is left out.
            amounts = (
                (column, amount)
                for layer in unfolded
                for column, amount in layer.amounts(scope, row, start, end)
                if mine.get(column, 0) < layer.upto
            )
            # Tallies may add up to 0 (an erase) with no layer at all: always through with_amounts.
            found.append(with_amounts(sums, amounts))
        return found

    async def end_generation(self, scope: str) -> None:
        """From now on the scope's increments go to new partitions."""
        await self._cql.execute("generation end", (stored(scope),))
        self._generations.pop(stored(scope))

    def partitions(self, entries: Iterable[Entry]) -> list[tuple[str, tuple]]:
        """The counter partitions among a scope's index entries, as (table, partition key)."""
        return [
            (TALLIES, (entry.scope, uuid.UUID(bytes=entry.part[:16]), entry.part[16:]))
            for entry in entries
            if entry.tbl == TALLIES
        ]
