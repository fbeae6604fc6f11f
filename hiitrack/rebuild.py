"""Recompute a bucket's counters and visitor states from the visitors' histories.

For repairs (a counter a bug got wrong) and for upgrades of the counting
rules or of the values' ids (hiitrack.ids): the bucket's counters are dropped, then each visitor's history is
replayed from nothing (hiitrack.history.replay, the code erase uses) and
its increments and its new state are written, its states in the saved
exact funnels and its drop-off entries with them (hiitrack.conversions, the
code the backfill uses).  Hits that arrive meanwhile would be lost or
counted twice: run it while no server writes to the bucket.
Tests: tests/test_rebuild.py.
"""

from collections.abc import Callable

import ujson

from hiitrack.catalog import value_record
from hiitrack.conversions import FunnelStates, SavedFunnel, level_kind, replay_states
from hiitrack.counting import Visitor, add_increments, names_counted, new_increments
from hiitrack.history import read_hits, replay
from hiitrack.store import Store, WriteBatch
from hiitrack.store.kinds import FUNNEL, FUNNEL_STATE, VISITOR, Kind

__all__ = ["rebuild"]

VISITORS_PER_WRITE = 100
"""Visitors whose counters go out in one write: bounded batches, few commits."""


async def rebuild(store: Store, scope: str, progress: Callable[[int, int], None] = lambda visitors, hits: None) -> int:
    """Rebuild `scope`'s counters; the number of hits replayed.  `progress(visitors, hits)` follows each write."""
    states = await store.scan(scope, VISITOR)
    funnels = [
        funnel for raw in (await store.scan(scope, FUNNEL)).values() if (funnel := SavedFunnel.of(ujson.loads(raw)))
    ]
    await store.drop_counters(scope)
    visitors = hits = 0
    records: dict[tuple[Kind, str], bytes] = {}
    deletions: set[tuple[Kind, str]] = set()
    increments = new_increments()
    for visitor_id, raw in states.items():
        history = [hit async for _, hit in read_hits(store, scope, visitor_id)]
        state, added = replay(history)
        kept = Visitor.from_bytes(raw)
        state.hits, state.first_ms, state.last_ms = kept.hits, kept.first_ms, kept.last_ms
        state.last_event_ms = kept.last_event_ms
        records[VISITOR, visitor_id] = state.to_bytes()
        for hit in history:
            # Named again, as ids are worked out now: a value id made by older rules has no record.
            records.update(map(value_record, hit.value_ids, (content for _, content in hit.properties)))
        in_funnels = replay_states(funnels, history, added)
        stored = await store.get(scope, FUNNEL_STATE, visitor_id)
        before = FunnelStates() if stored is None else FunnelStates.from_bytes(stored)
        for version, previous in before.states():
            if previous.level:
                deletions.add((level_kind(version, previous.level), visitor_id))
        for version, counted in in_funnels.states():
            if counted.level:
                records[level_kind(version, counted.level), visitor_id] = b""
        records[FUNNEL_STATE, visitor_id] = in_funnels.to_bytes()
        add_increments(increments, added)
        visitors += 1
        hits += len(history)
        if visitors % VISITORS_PER_WRITE == 0:
            await store.write(WriteBatch(scope, records, increments, deletions - records.keys()))
            progress(visitors, hits)
            records, deletions, increments = {}, set(), new_increments()
    add_increments(increments, names_counted())
    await store.write(WriteBatch(scope, records, increments, deletions - records.keys()))
    progress(visitors, hits)
    return hits
