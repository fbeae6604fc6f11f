"""Writes merged in memory and committed in large flushes: the store of a bulk import.

An import applies hits by the million.  Through a server's group commit a
commit carries a few dozen hits, and the store spends its time adding to
counter cells that the next commit adds to again (a bucket's event totals,
its hourly series, its segments).  `Buffered` answers a batch as soon as it
is merged into memory and commits everything merged so far in one write
every `flush_batches` batches, and when it is closed: the cells shared by
many hits are written once.

Reads see what is merged and not flushed yet: a record is read from memory
first, a scan overlays it, and the other reads (counter rows, pages of a
part, sweeps, compare-and-set writes) flush first.  Nothing is durable
before its flush, so this is for one-off commands, never a server.  On
SQLite a flush is one transaction: an import that is killed leaves the
whole hits of its first flushes, and importing the same file again with
insert ids adds exactly what is missing.  Tests: tests/test_buffering.py,
tests/test_import.py.
"""

from collections.abc import Mapping, Sequence

from twisted.internet.defer import Deferred, DeferredList, DeferredLock

from hiitrack.metrics import CacheStats
from hiitrack.store.grouping import MergedWrite
from hiitrack.store.interface import Store, WriteBatch, check_batch
from hiitrack.store.kinds import KINDS, Kind, Kinds

__all__ = ["Buffered", "FLUSH_BATCHES", "FlushFailed"]

FLUSH_BATCHES = 20_000
"""Batches (hits) merged before a flush: large enough to share most cells, small enough to keep memory bounded."""


class FlushFailed(Exception):
    """A flush did not reach the store: what was merged since the flush before it is lost."""


class _Layer:
    """Merged batches, and which (scope, kind) they touch, so that a scan of any other kind skips them."""

    def __init__(self) -> None:
        self.merged = MergedWrite()
        self.batches = 0
        self.touched: set[tuple[str, Kind]] = set()

    def add(self, batch: WriteBatch) -> None:
        self.merged.add(batch)
        self.batches += 1
        self.touched.update((batch.scope, kind) for kind in batch.cleared)
        self.touched.update((batch.scope, kind) for kind, _ in (*batch.records, *batch.deletions))


class Buffered:
    """A `Store` whose writes are merged in memory and flushed in bulk."""

    def __init__(self, store: Store, flush_batches: int = FLUSH_BATCHES, kinds: Kinds = KINDS) -> None:
        self._store = store
        self._flush_batches = flush_batches
        self._kinds = kinds
        self._pending = _Layer()
        # The layer being committed, still read until its commit is done.
        self._flushing: _Layer | None = None
        self._one_flush = DeferredLock()
        self._failure: BaseException | None = None
        self.flushed = 0
        """Batches stored so far."""

    def __repr__(self) -> str:
        return f"Buffered({self._store!r})"

    async def write(self, batch: WriteBatch) -> None:
        """Merge the batch; once `flush_batches` are merged, wait for them to be flushed."""
        self._check()
        check_batch(self._kinds, batch)
        self._pending.add(batch)
        if self._pending.batches >= self._flush_batches:
            await self.flush()

    async def flush(self) -> None:
        """Commit everything merged so far; raises `FlushFailed` (and so does every later call) if it fails."""
        await self._one_flush.run(self._flush)

    async def _flush(self) -> None:
        self._check()
        if not self._pending.batches:
            return
        layer = self._flushing = self._pending
        self._pending = _Layer()
        try:
            await DeferredList(
                [Deferred.fromCoroutine(self._store.write(batch)) for batch in layer.merged.batches()],
                fireOnOneErrback=True,
                consumeErrors=True,
            )
        except BaseException as error:
            self._failure = error
            raise FlushFailed(f"a flush failed, and what was merged since the last one is lost: {error}") from error
        finally:
            self._flushing = None
        self.flushed += layer.batches

    def _check(self) -> None:
        if self._failure is not None:
            raise FlushFailed(f"an earlier flush failed: {self._failure}")

    def _layers(self) -> list[MergedWrite]:
        """The unflushed writes, oldest first."""
        return [layer.merged for layer in (self._flushing, self._pending) if layer is not None]

    async def get(self, scope: str, kind: Kind, key: str) -> bytes | None:
        for layer in reversed(self._layers()):
            address = (scope, kind, key)
            if address in layer.records:
                return layer.records[address]
            if address in layer.deletions or (scope, kind) in layer.cleared:
                return None
        return await self._store.get(scope, kind, key)

    async def scan(self, scope: str, kind: Kind) -> dict[str, bytes]:
        layers = [
            layer.merged
            for layer in (self._flushing, self._pending)
            if layer is not None and (scope, kind) in layer.touched
        ]
        found = await self._store.scan(scope, kind)
        for layer in layers:
            if (scope, kind) in layer.cleared:
                found.clear()
            for address in layer.deletions:
                if address[:2] == (scope, kind):
                    found.pop(address[2], None)
            found.update({key: value for (s, k, key), value in layer.records.items() if (s, k) == (scope, kind)})
        return found

    async def page(self, scope: str, kind: Kind, after: str = "", limit: int = 100) -> list[tuple[str, bytes]]:
        await self.flush()
        return await self._store.page(scope, kind, after, limit)

    async def sweep(
        self, scope: str, kind: Kind, cursor: str = "", limit: int = 100
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        await self.flush()
        return await self._store.sweep(scope, kind, cursor, limit)

    async def create(self, scope: str, kind: Kind, key: str, value: bytes) -> bool:
        await self.flush()
        return await self._store.create(scope, kind, key, value)

    async def replace(self, scope: str, kind: Kind, key: str, old: bytes, new: bytes) -> bool:
        await self.flush()
        return await self._store.replace(scope, kind, key, old, new)

    async def delete(self, scope: str, kind: Kind, key: str) -> None:
        await self.flush()
        await self._store.delete(scope, kind, key)

    async def read_rows(
        self, scope: str, rows: Sequence[bytes], start: bytes = b"", end: bytes | None = None
    ) -> list[dict[bytes, int]]:
        await self.flush()
        return await self._store.read_rows(scope, rows, start, end)

    async def drop(self, scope: str) -> None:
        await self.flush()
        await self._store.drop(scope)

    async def drop_counters(self, scope: str) -> None:
        await self.flush()
        await self._store.drop_counters(scope)

    def caches(self) -> Mapping[str, CacheStats]:
        return self._store.caches()

    async def count(self, scope: str) -> int:
        await self.flush()
        return await self._store.count(scope)

    async def open(self) -> None:
        await self._store.open()

    async def close(self) -> None:
        """Flush what is merged, then close the store (also after a failed flush)."""
        try:
            await self.flush()
        finally:
            await self._store.close()
