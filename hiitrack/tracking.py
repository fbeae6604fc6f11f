"""The write path: a visitor's actions become one durable batch of counters.

For each request: wait for the visitor's earlier requests (per-visitor
order), take the visitor's state (from a bounded cache, else the store), let
hiitrack.counting work out the increments, and write the increments, the new
state and any new names as one batch.  The request is answered when that
batch is durable.  Tests: tests/test_http_tracking.py, tests/test_model.py.
"""

from collections.abc import Callable, Sequence

from hiitrack.caching import LRU, KeyedLock
from hiitrack.catalog import Catalog
from hiitrack.counting import Visitor, count_batch, new_increments
from hiitrack.ids import event_id, property_id, value_id
from hiitrack.metrics import METRICS
from hiitrack.store import WriteBatch
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import INSERT, VISITOR

__all__ = ["Tracker"]


class Tracker:
    def __init__(
        self,
        store: RecordWriter,
        catalog: Catalog,
        clock: Callable[[], float],
        visitor_cache_size: int = 100_000,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._clock = clock
        # Visitors' states as stored (Visitor.to_bytes): about a KB each where
        # the objects took several, so --visitor-cache bounds memory tightly.
        self._visitors: LRU[tuple[str, str], bytes] = LRU(visitor_cache_size)
        self._order: KeyedLock[tuple[str, str]] = KeyedLock()
        self._inserts: KeyedLock[tuple[str, str]] = KeyedLock()
        self._insert_ids: LRU[tuple[str, str], bool] = LRU(visitor_cache_size)

    def caches(self) -> dict[str, LRU]:
        return {"visitor": self._visitors, "insert_id": self._insert_ids}

    async def track(
        self,
        scope: str,
        visitor_id: str,
        events: Sequence[str] = (),
        properties: Sequence[tuple[str, object]] = (),
        insert_id: str | None = None,
    ) -> bool:
        """Apply properties, then events in order, for one visitor of a bucket.

        With an `insert_id` already applied in this bucket nothing changes and
        the answer is False: a retried request counts once.
        """
        names = {event_id(name): name for name in events}
        values: dict[bytes, tuple[str, object]] = {}
        for name, content in properties:
            values[value_id(property_id(name), content)] = (name, content)
        steps = [event_id(name) for name in events]

        async def apply() -> bool:
            key = (scope, visitor_id)
            if insert_id is not None and await self._applied(scope, insert_id):
                return False
            visitor = await self._visitor(scope, visitor_id)
            increments = new_increments()
            count_batch(visitor, values, steps, int(self._clock()), increments)
            records = self._catalog.new_records(scope, names, values)
            state = records[VISITOR, visitor_id] = visitor.to_bytes()
            if insert_id is not None:
                records[INSERT, insert_id] = str(int(self._clock())).encode()
            try:
                await self._store.write(WriteBatch(scope, records, increments))
            except BaseException:
                # What the store holds is uncertain now: read it again next time.
                self._visitors.pop(key)
                raise
            self._visitors.put(key, state)
            self._catalog.remember(scope, set(names) | set(values))
            if insert_id is not None:
                self._insert_ids.put((scope, insert_id), True)
            METRICS.events.inc(len(steps))
            return True

        if insert_id is None:
            return await self._order.run((scope, visitor_id), apply)
        # The same insert_id may come back from another visitor's connection:
        # hold the id too, so the check and the write cannot interleave.
        return await self._inserts.run((scope, insert_id), lambda: self._order.run((scope, visitor_id), apply))

    async def _applied(self, scope: str, insert_id: str) -> bool:
        if self._insert_ids.get((scope, insert_id)) is not None:
            return True
        return await self._store.get(scope, INSERT, insert_id) is not None

    async def _visitor(self, scope: str, visitor_id: str) -> Visitor:
        raw = self._visitors.get((scope, visitor_id))
        if raw is None:
            raw = await self._store.get(scope, VISITOR, visitor_id)
        return Visitor() if raw is None else Visitor.from_bytes(raw)

    def forget(self, scope: str) -> None:
        """Drop cached state of a bucket that was deleted."""
        self._visitors.forget_where(lambda key: key[0] == scope)
        self._insert_ids.forget_where(lambda key: key[0] == scope)
        self._catalog.forget(scope)
