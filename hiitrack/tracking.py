"""The write path: a visitor's actions become one durable batch of counters.

For each request: wait for the visitor's earlier requests (per-visitor
order), take the visitor's state (from a bounded cache, else the store, read
at the same time as whether the hit's `insert_id` was applied), let
hiitrack.counting work out the increments (and hiitrack.conversions those of
the saved funnels), and write the increments, the new states, the hit itself
(its visitor's history, hiitrack.history) and any new names as one batch.
The request is answered when that batch is durable.  A hit over a cap
(hiitrack.limits) is refused before anything is written.  A hit counts at
its own time, or at the visitor's previous event's time if that is later,
so that a visitor's events are always in order.  Erasing a visitor takes the same
per-visitor order: its history is replayed and every increment it made is
taken back (in the exact funnels too), in one batch with the removal of its
history, state and drop-off entries.  The backfill of a new funnel
(hiitrack.backfill) counts each visitor under the same order.

Cached states are trusted for `cache_seconds` after this process last wrote
them: a visitor that another process served meanwhile (nginx moved it) is
read from the store again once it is back after longer than that.

Deleting a bucket closes its scope here first: hits that arrive meanwhile
wait, hits already under way that have not written yet are dropped (they
belong to the bucket being deleted), writes already sent are awaited, and
only then is the bucket dropped and its cached state forgotten.  So nothing
of the old bucket reaches the new one.  Tests: tests/test_http_tracking.py,
tests/test_model.py, tests/test_caps.py, tests/test_bucket_deletion.py,
tests/test_failover.py, tests/test_history.py.
"""

from collections.abc import Awaitable, Callable, Iterable, Sequence

from twisted.internet.defer import Deferred, DeferredList, DeferredLock

from hiitrack.caching import LRU, KeyedLock
from hiitrack.catalog import Catalog
from hiitrack.conversions import Conversions, SavedFunnel
from hiitrack.counting import Visitor, add_increments, count_batch, new_increments
from hiitrack.history import Hit, hit_key, hits_kind, read_hits, replay
from hiitrack.ids import event_id, property_id, value_id
from hiitrack.limits import Limits, OverLimit
from hiitrack.metrics import METRICS
from hiitrack.store import WriteBatch
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import INSERT, VISITOR

__all__ = ["Tracker"]

PARSED_VISITORS = 4_096
"""Visitors whose parsed state is kept besides its bytes (several KB each where the bytes take one)."""
DELETIONS_REMEMBERED = 10_000
"""Deleted scopes remembered for hits under way; only one in flight across that many deletions could miss."""


class Tracker:
    def __init__(
        self,
        store: RecordWriter,
        catalog: Catalog,
        conversions: Conversions,
        clock: Callable[[], float],
        visitor_cache_size: int = 100_000,
        cache_seconds: float = 60.0,
        limits: Limits = Limits(),
        keep_history: bool = True,
    ) -> None:
        self._store = store
        # Off only to measure what the history costs (twistd --no-history):
        # erase, rebuild and backfill read the history.
        self._keep_history = keep_history
        self._catalog = catalog
        self._conversions = conversions
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._limits = limits
        # Visitors' states as stored (Visitor.to_bytes), with when this process
        # wrote them: about a KB each where the objects took several, so
        # --visitor-cache bounds memory tightly.
        self._visitors: LRU[tuple[str, str], tuple[bytes, float]] = LRU(visitor_cache_size)
        # The parsed state of the visitors written last, with the bytes it
        # was parsed from: a hit of such a visitor skips Visitor.from_bytes.
        # Taken out while a hit uses it (a failed hit leaves no half-applied
        # state), and trusted only while those bytes are the cached ones.
        self._parsed: LRU[tuple[str, str], tuple[bytes, Visitor]] = LRU(min(PARSED_VISITORS, visitor_cache_size))
        self._order: KeyedLock[tuple[str, str]] = KeyedLock()
        self._inserts: KeyedLock[tuple[str, str]] = KeyedLock()
        self._insert_ids: LRU[tuple[str, str], bool] = LRU(visitor_cache_size)
        # Deletions are numbered; a hit notes the number when it arrives.
        self._deletions = 0
        self._deleted: LRU[str, int] = LRU(DELETIONS_REMEMBERED)
        self._closed: dict[str, list[Deferred]] = {}
        self._one_deletion = DeferredLock()
        self._writing: dict[str, set[Deferred]] = {}

    def caches(self) -> dict[str, LRU]:
        return {"visitor": self._visitors, "insert_id": self._insert_ids}

    async def opened(self, scope: str) -> int:
        """Wait while the bucket is being deleted; the ticket `track` takes."""
        while scope in self._closed:
            reopened: Deferred = Deferred()
            self._closed[scope].append(reopened)
            await reopened
        return self._deletions

    async def track(
        self,
        scope: str,
        ticket: int,
        visitor_id: str,
        events: Sequence[str] = (),
        properties: Sequence[tuple[str, object]] = (),
        insert_id: str | None = None,
        time_ms: int | None = None,
    ) -> bool:
        """Apply properties, then events in order, for one visitor of a bucket.

        `time_ms` is the hit's Unix time in ms (None: now), already checked
        not to be in the future.

        `ticket` is what `opened` gave when the hit arrived: if the bucket
        was deleted since, the hit went with it and nothing is written.  With
        an `insert_id` already applied in this bucket nothing changes and the
        answer is False: a retried request counts once.  Raises `OverLimit`
        (nothing written) for a hit over a cap.
        """
        names = {event_id(name): name for name in events}
        values: dict[bytes, tuple[str, object]] = {}
        for name, content in properties:
            values[value_id(property_id(name), content)] = (name, content)
        steps = [event_id(name) for name in events]

        async def apply() -> bool:
            key = (scope, visitor_id)
            if insert_id is None:
                raw = await self._state(key)
            elif self._insert_ids.get((scope, insert_id)) is not None:
                return False
            else:
                # The state is read while the insert_id's read is under way: the
                # tracker gives every hit an insert_id, and a visitor's first hit
                # would wait for two round trips.
                insert_read = Deferred.fromCoroutine(self._store.get(scope, INSERT, insert_id))
                try:
                    raw = await self._state(key)
                finally:
                    applied = await insert_read
                if applied is not None:
                    return False
            visitor = self._visitor(key, raw)
            if visitor.hits >= self._limits.visitor_hits:
                METRICS.history_refused.inc()
                raise OverLimit("visitor_hits", self._limits.visitor_hits, "this visitor's history is full")
            when_ms = max(int(self._clock() * 1000) if time_ms is None else time_ms, visitor.last_event_ms)
            held = set(visitor.values)
            increments = new_increments()
            count_batch(visitor, values, steps, when_ms // 1000, increments, self._limits)
            admission = await self._catalog.admit(scope, names, values)
            funnels = await self._conversions.count(
                scope, visitor_id, held, values, steps, when_ms, increments, earlier_hits=visitor.hits > 0
            )
            records = dict(admission.records) | (funnels.records if funnels else {})
            visitor.hits += 1
            visitor.first_ms = when_ms if visitor.hits == 1 else min(visitor.first_ms, when_ms)
            visitor.last_ms = max(visitor.last_ms, when_ms)
            if steps:
                visitor.last_event_ms = when_ms
            if self._keep_history:
                records[hits_kind(visitor_id), hit_key(visitor.hits)] = Hit(
                    when_ms, tuple(events), tuple(properties)
                ).to_bytes()
            state = records[VISITOR, visitor_id] = visitor.to_bytes()
            if insert_id is not None:
                records[INSERT, insert_id] = str(int(self._clock())).encode()
            batch = WriteBatch(scope, records, increments, funnels.deletions if funnels else set())
            if not await self._write(ticket, key, batch):
                return True
            if not self._deleted_since(scope, ticket):
                self._visitors.put(key, (state, self._clock()))
                self._parsed.put(key, (state, visitor))
                self._catalog.remember(scope, set(names) | set(values), admission)
                if funnels:
                    self._conversions.written(funnels)
                if insert_id is not None:
                    self._insert_ids.put((scope, insert_id), True)
            METRICS.events.inc(len(steps))
            return True

        if insert_id is None:
            return await self._order.run((scope, visitor_id), apply)
        # The same insert_id may come back from another visitor's connection:
        # hold the id too, so the check and the write cannot interleave.
        return await self._inserts.run((scope, insert_id), lambda: self._order.run((scope, visitor_id), apply))

    async def erase(self, scope: str, ticket: int, visitor_id: str) -> bool:
        """Remove a visitor as if it had never been: False if the bucket holds no such visitor.

        Under the visitor's order, so no hit of it is counted meanwhile and
        a second erase finds nothing.
        """
        key = (scope, visitor_id)

        async def apply() -> bool:
            if await self._store.get(scope, VISITOR, visitor_id) is None:
                return False
            history = [hit async for _, hit in read_hits(self._store, scope, visitor_id)]
            _, increments = replay(history)
            in_funnels, funnel_records = await self._conversions.contributions(scope, visitor_id, history)
            add_increments(increments, in_funnels)
            batch = WriteBatch(
                scope,
                increments={row: {column: -n for column, n in cells.items()} for row, cells in increments.items()},
                deletions={(VISITOR, visitor_id)} | funnel_records,
                cleared={hits_kind(visitor_id)},
            )
            written = await self._write(ticket, key, batch)
            self._visitors.pop(key)
            return written

        return await self._order.run(key, apply)

    async def backfill(self, scope: str, ticket: int, visitor_id: str, funnel: SavedFunnel) -> bool:
        """Count a visitor in a funnel version from its history, unless it is counted there already.

        Under the visitor's order, so a hit of the same visitor either comes
        first (and counts the history itself) or finds the built state.
        False once the bucket was deleted since `ticket`.
        """
        key = (scope, visitor_id)

        async def apply() -> bool:
            built = await self._conversions.build(scope, visitor_id, funnel)
            if built is None:
                return not self._deleted_since(scope, ticket)
            changes, increments = built
            if not await self._write(ticket, key, WriteBatch(scope, changes.records, increments, changes.deletions)):
                return False
            self._conversions.written(changes)
            return True

        return await self._order.run(key, apply)

    async def _write(self, ticket: int, key: tuple[str, str], batch: WriteBatch) -> bool:
        """Write a visitor's batch unless its bucket was deleted since `ticket`; whether it was written."""
        scope = batch.scope
        if self._deleted_since(scope, ticket):
            return False
        # No await between the check above and registering the write, so
        # a deletion either drops this batch or waits for its write.
        written = Deferred.fromCoroutine(self._store.write(batch))
        writing = self._writing.setdefault(scope, set())
        writing.add(written)
        try:
            await written
        except BaseException:
            # What the store holds is uncertain now: read it again next time.
            self._visitors.pop(key)
            self._conversions.unsure(key)
            raise
        finally:
            writing.discard(written)
            if not writing:
                self._writing.pop(scope, None)
        return True

    def _deleted_since(self, scope: str, ticket: int) -> bool:
        deleted = self._deleted.get(scope)
        return deleted is not None and deleted >= ticket

    async def _state(self, key: tuple[str, str]) -> bytes | None:
        """The visitor's state as stored: this process's copy while it is trusted, else the store's."""
        cached = self._visitors.get(key)
        if cached is not None and self._clock() - cached[1] <= self._cache_seconds:
            return cached[0]
        return await self._store.get(key[0], VISITOR, key[1])

    def _visitor(self, key: tuple[str, str], raw: bytes | None) -> Visitor:
        """`raw` parsed, or the parse this process kept if it was of these very bytes."""
        parsed = self._parsed.pop(key)
        if raw is not None and parsed is not None and parsed[0] is raw:
            return parsed[1]
        return Visitor() if raw is None else Visitor.from_bytes(raw)

    async def deleting(self, scopes: Iterable[str], drop: Callable[[], Awaitable[object]]) -> None:
        """Run `drop` (which deletes the buckets of `scopes`) with those scopes closed to hits.

        Deletions run one at a time, so one that ends cannot reopen a scope
        that another is still deleting.
        """
        await self._one_deletion.run(lambda: Deferred.fromCoroutine(self._delete(list(scopes), drop)))

    async def _delete(self, scopes: list[str], drop: Callable[[], Awaitable[object]]) -> None:
        for scope in scopes:
            self._deleted.put(scope, self._deletions)
            self._closed.setdefault(scope, [])
        self._deletions += 1
        try:
            sent = [write for scope in scopes for write in self._writing.get(scope, ())]
            # Their failures are answered to their own requests.
            await DeferredList(sent, consumeErrors=True)
            await drop()
        finally:
            for scope in scopes:
                self.forget(scope)
                for reopened in self._closed.pop(scope, []):
                    reopened.callback(None)

    def forget(self, scope: str) -> None:
        """Drop cached state of a scope (a deleted bucket)."""
        self._visitors.forget_where(lambda key: key[0] == scope)
        self._parsed.forget_where(lambda key: key[0] == scope)
        self._insert_ids.forget_where(lambda key: key[0] == scope)
        self._catalog.forget(scope)
        self._conversions.forget(scope)
