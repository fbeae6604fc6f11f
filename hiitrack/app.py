"""The running application: one store and the services built on it.

The web resources receive this object and nothing else; it owns the caches,
so operations that touch several services (recording a hit, which may
create its bucket; deleting a bucket or a user) live here.  Tests:
tests/conftest.py builds one per test.
"""

import time
from collections.abc import Callable, Sequence

from hiitrack.accounts import Accounts, bucket_scope
from hiitrack.backfill import AT_ONCE, LEASE_SECONDS, Backfills
from hiitrack.catalog import Catalog
from hiitrack.conversions import Conversions, SavedFunnel, drop_off_index, new_version
from hiitrack.forwarding import Forwarder
from hiitrack.limits import Limits
from hiitrack.metrics import CacheStats
from hiitrack.reports import Reports
from hiitrack.store import Store, WriteBatch
from hiitrack.tracking import Tracker
from hiitrack.visitors import export

__all__ = ["HiiTrack"]


class HiiTrack:
    def __init__(
        self,
        store: Store,
        clock: Callable[[], float] = time.time,
        visitor_cache_size: int = 100_000,
        metrics_auth: tuple[str, str] | None = None,
        limits: Limits = Limits(),
        visitor_cache_seconds: float = 60.0,
        backfill_lease: float = LEASE_SECONDS,
        keep_history: bool = True,
        backfill_through: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # The operator's Basic credentials for /metrics; None turns it off.
        self.metrics_auth = metrics_auth
        self.limits = limits
        self.accounts = Accounts(store, clock, limits=limits)
        self.catalog = Catalog(store, clock, limits)
        self.conversions = Conversions(store, clock, visitor_cache_size, visitor_cache_seconds)
        self.tracker = Tracker(
            store,
            self.catalog,
            self.conversions,
            clock,
            visitor_cache_size,
            visitor_cache_seconds,
            limits,
            keep_history=keep_history,
        )
        self.reports = Reports(store, self.catalog, self.accounts, limits)
        forwarder = None if backfill_through is None else Forwarder(backfill_through, self.accounts.sign, AT_ONCE)
        self.backfills = Backfills(store, self.tracker, clock, backfill_lease, forwarder=forwarder)

    def caches(self) -> dict[str, CacheStats]:
        """Every bounded cache of the app and its store, by name (for /metrics)."""
        return {
            **self.store.caches(),
            **self.accounts.caches(),
            **self.catalog.caches(),
            **self.tracker.caches(),
            **self.conversions.caches(),
        }

    async def start(self, backfills: bool = True) -> None:
        """Open the store; a server (not a one-off command) also runs the backfills nobody runs."""
        await self.store.open()
        await self.accounts.start()
        if backfills:
            self.backfills.start()

    async def stop(self) -> None:
        await self.backfills.stop()
        await self.store.close()

    async def record_hit(
        self,
        user: str,
        bucket: str,
        visitor_id: str,
        events: Sequence[str] = (),
        properties: Sequence[tuple[str, object]] = (),
        insert_id: str | None = None,
        time_ms: int | None = None,
    ) -> bool:
        """Record an already validated hit, creating the bucket on first use.

        False when the hit's `insert_id` was applied before (nothing recorded).
        """
        scope = bucket_scope(user, bucket)
        # Taken before the bucket is looked up: a deletion from here on takes this hit with it.
        ticket = await self.tracker.opened(scope)
        await self.accounts.ensure_bucket(user, bucket)
        return await self.tracker.track(scope, ticket, visitor_id, events, properties, insert_id, time_ms)

    async def save_funnel(self, scope: str, name: str, funnel: dict) -> None:
        """Save or replace a funnel under a new version; in a bucket with data, its backfill starts.

        A replaced version's drop-off lists go: they name visitors, and no report reads them again.
        """
        previous = await self.catalog.funnel(scope, name)
        has_data = bool(await self.catalog.names(scope).events())
        record = {**funnel, "version": new_version(), "backfill": self.backfills.progress(has_data)}

        async def save() -> None:
            await self.catalog.save_funnel(scope, name, record)
            self.conversions.forget(scope)
            if previous is not None:
                await self.store.write(WriteBatch(scope, cleared=drop_off_index(previous)))

        await self.backfills.saved(scope, name, record, save)

    async def delete_funnel(self, scope: str, name: str) -> None:
        """Delete a saved funnel, and its drop-off lists."""
        previous = await self.catalog.funnel(scope, name)
        await self.catalog.delete_funnel(scope, name)
        self.conversions.forget(scope)
        if previous is not None:
            await self.store.write(WriteBatch(scope, cleared=drop_off_index(previous)))

    async def count_backfilled(self, scope: str, name: str, version: str, visitor_id: str) -> bool:
        """Count a visitor that this process serves in a funnel version being backfilled (hiitrack.forwarding).

        False if that version is no longer saved, or the bucket was deleted.
        """
        ticket = await self.tracker.opened(scope)
        record = await self.catalog.funnel(scope, name)
        funnel = None if record is None else SavedFunnel.of(record)
        if funnel is None or funnel.version.hex() != version:
            return False
        return await self.tracker.backfill(scope, ticket, visitor_id, funnel)

    async def visitor(self, scope: str, visitor_id: str, after: str | None, limit: int) -> dict | None:
        """A page of a visitor's history (None: the bucket never saw it)."""
        return await export(self.store, self.catalog, scope, visitor_id, after, limit)

    async def erase_visitor(self, scope: str, visitor_id: str) -> bool:
        """Erase a visitor and all it contributed; False if the bucket never saw it."""
        # Reports are read from the store each time: only the tracker caches visitors.
        return await self.tracker.erase(scope, await self.tracker.opened(scope), visitor_id)

    async def delete_bucket(self, user: str, bucket: str) -> None:
        await self.tracker.deleting([bucket_scope(user, bucket)], lambda: self.accounts.delete_bucket(user, bucket))

    async def delete_user(self, user: str) -> None:
        scopes = [bucket_scope(user, bucket) for bucket in await self.accounts.buckets(user)]
        await self.tracker.deleting(scopes, lambda: self.accounts.delete_user(user))
