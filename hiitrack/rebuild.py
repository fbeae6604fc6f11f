"""Recompute a bucket's counters and visitor states from the visitors' histories.

For repairs (a counter a bug got wrong) and for upgrades of the counting
rules: the bucket's counters are dropped, then each visitor's history is
replayed from nothing (hiitrack.history.replay, the code erase uses) and
its increments and its new state are written.  Hits that arrive meanwhile
would be lost or counted twice: run it while no server writes to the bucket.
Exact-funnel counters are dropped with the rest and not replayed yet (the
funnels' backfill is still to come): docs/api.md says to save them again.
Tests: tests/test_rebuild.py.
"""

from collections.abc import Callable

from hiitrack.counting import Visitor, new_increments
from hiitrack.history import read_hits, replay
from hiitrack.store import Store, WriteBatch
from hiitrack.store.kinds import VISITOR, Kind

__all__ = ["rebuild"]

VISITORS_PER_WRITE = 100
"""Visitors whose counters go out in one write: bounded batches, few commits."""


async def rebuild(store: Store, scope: str, progress: Callable[[int, int], None] = lambda visitors, hits: None) -> int:
    """Rebuild `scope`'s counters; the number of hits replayed.  `progress(visitors, hits)` follows each write."""
    states = await store.scan(scope, VISITOR)
    await store.drop_counters(scope)
    visitors = hits = 0
    records: dict[tuple[Kind, str], bytes] = {}
    increments = new_increments()
    for visitor_id, raw in states.items():
        history = [hit async for _, hit in read_hits(store, scope, visitor_id)]
        state, added = replay(history)
        kept = Visitor.from_bytes(raw)
        state.hits, state.first_ms, state.last_ms = kept.hits, kept.first_ms, kept.last_ms
        records[VISITOR, visitor_id] = state.to_bytes()
        for cell, amount in added.items():
            increments[cell] += amount
        visitors += 1
        hits += len(history)
        if len(records) == VISITORS_PER_WRITE:
            await store.write(WriteBatch(scope, records, increments))
            progress(visitors, hits)
            records, increments = {}, new_increments()
    await store.write(WriteBatch(scope, records, increments))
    progress(visitors, hits)
    return hits
