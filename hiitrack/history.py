"""The visitor history: every applied hit, and the replay that derives counters from it.

A hit is stored as a record of kind HIT bound to its visitor, keyed by the
visitor's hit sequence (1, 2, …, fixed width so that key order is hit
order), holding its time in milliseconds, its event names in order and its
property values by name: a replay recomputes every id from them, so the
history alone rebuilds the counters.  `replay` is the one place that turns
a history back into increments: the erase of a visitor subtracts them, a
rebuild adds them to empty counters.  Tests: tests/test_history.py.
"""

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, fields, replace

import ujson

from hiitrack.counting import Increments, Visitor, add_increments, count_batch, new_increments
from hiitrack.ids import canonical_json, event_id, property_id, value_id
from hiitrack.limits import Limits
from hiitrack.store.interface import RecordStore
from hiitrack.store.kinds import HIT, Kind

__all__ = ["PAGE", "Hit", "hit_key", "hits_kind", "read_hits", "replay"]

PAGE = 1000
"""Hits read from the store at a time."""
KEY_DIGITS = 12
UNCAPPED = replace(Limits(), **{cap.name: 2**62 for cap in fields(Limits)})
"""A replay counts what was applied: caps lowered since must not refuse it."""


@dataclass(frozen=True)
class Hit:
    """One applied hit: when (Unix ms), its events in order, its property values by name."""

    time_ms: int
    events: tuple[str, ...] = ()
    properties: tuple[tuple[str, object], ...] = ()

    def to_bytes(self) -> bytes:
        document = {"t": self.time_ms, "e": list(self.events), "p": [list(pair) for pair in self.properties]}
        if all(type(value) is str for _, value in self.properties):
            # Most hits: texts and an int, which ujson writes as exactly and at a fraction of the cost.
            return ujson.dumps(document, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8")
        # canonical_json for other values: a float comes back exactly, so its value id does too.
        return canonical_json(document).encode("utf-8")

    @classmethod
    def from_bytes(cls, data: bytes) -> "Hit":
        document = json.loads(data)
        return cls(document["t"], tuple(document["e"]), tuple((name, value) for name, value in document["p"]))

    @property
    def event_ids(self) -> list[bytes]:
        return [event_id(name) for name in self.events]

    @property
    def value_ids(self) -> list[bytes]:
        return [value_id(property_id(name), value) for name, value in self.properties]


def hits_kind(visitor_id: str) -> Kind:
    return HIT.of(visitor_id)


def hit_key(sequence: int) -> str:
    return f"{sequence:0{KEY_DIGITS}d}"


async def read_hits(store: RecordStore, scope: str, visitor_id: str) -> AsyncIterator[tuple[str, Hit]]:
    """A visitor's hits in order, with their keys, read a page at a time."""
    after = ""
    while True:
        page = await store.page(scope, hits_kind(visitor_id), after, PAGE)
        for key, raw in page:
            yield key, Hit.from_bytes(raw)
        if len(page) < PAGE:
            return
        after = page[-1][0]


def latest_event_ms(hits: Sequence[Hit]) -> int:
    """The time of the latest of `hits` with an event (0: none): no later hit counts before it."""
    return next((hit.time_ms for hit in reversed(hits) if hit.events), 0)


def replay(hits: Iterable[Hit]) -> tuple[Visitor, Increments]:
    """A visitor's state and every increment its history made, counted from nothing.

    The same counting as the write path (hiitrack.counting) in the same
    order, so the increments are exactly those the visitor's hits added.
    """
    visitor = Visitor()
    increments = new_increments()
    for hit in hits:
        # Each hit on its own, as it was applied: the hit-cells cap is per hit.
        added = new_increments()
        count_batch(visitor, hit.value_ids, hit.event_ids, hit.time_ms // 1000, added, UNCAPPED)
        add_increments(increments, added)
    return visitor, increments
