"""Exact funnels maintained at ingest: the write path's side of docs/api.md, "Exact funnels".

For each hit the tracker asks `Conversions.count` what the hit changes in
the bucket's saved funnels.  It loads the saved funnels (cached per bucket,
forgotten when one is saved or deleted here, reread after
`FUNNELS_SECONDS` so other processes' changes arrive), the visitor's funnel
states (one record per visitor holding the state of every funnel version,
cached like visitor state), moves them with hiitrack.funnels.advance for the
funnels the hit touches, and returns the records, deletions and counter
increments to add to the hit's one WriteBatch.  A hit that moves no state
(most hits of a visitor done with the funnels for the day) writes no states
record: the record it read is what the store holds, and stays trusted as if
written then.  The drop-off index lists each visitor under its level in
each funnel version; it moves when the level rises.

One rule keeps a funnel exact whenever it was saved: a visitor's counters
in a funnel version exist exactly when its stored states hold that version
(both go in one batch).  So a visitor with no state in a version is counted
from its whole history the first time it is touched, by a hit (`count`) or
by the backfill (`build`, hiitrack.backfill), under the visitor's order
lock; whichever comes second finds the state and only moves it on.  The
erase takes back what a replay of the history gives (`contributions`).
Tests: tests/test_exact_funnels.py, tests/test_backfill.py.

Counter rows (see hiitrack.counting for the other rows), per funnel version
F (16 bytes), j a step number and b a time-to-convert bucket (one byte
each), V a value id, T a day start (8-byte big-endian Unix time):

==============================  ===================  ==============================
row                             key                  columns
==============================  ===================  ==============================
conversion                      ``c`` F              ``l`` j, ``t`` j b, ``b`` V j
conversion by entry day         ``C`` F shard        T j
==============================  ===================  ==============================

Day rows are split in time shards as hiitrack.counting splits series.
"""

import functools
import secrets
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import ujson

from hiitrack.caching import LRU
from hiitrack.counting import DAY, Increments, add_increments, increment, new_increments
from hiitrack.funnels import FunnelDefinition, FunnelState, Progress, advance, credit_value
from hiitrack.history import Hit, latest_event_ms, read_hits
from hiitrack.ids import ID_SIZE, decode_id, encode_id, property_id
from hiitrack.store.interface import RecordWriter
from hiitrack.store.kinds import FUNNEL, FUNNEL_LEVEL, FUNNEL_STATE, Kind

__all__ = [
    "Changes",
    "Conversions",
    "FunnelStates",
    "SavedFunnel",
    "SavedFunnels",
    "apply_hit",
    "conversion_row",
    "day_rows",
    "definition_record",
    "drop_off_index",
    "level_kind",
    "new_version",
    "replay_funnel",
    "replay_states",
]

FUNNELS_SECONDS = 5.0
"""How long a bucket's saved funnels, as read from the store, are trusted."""
VERSION_SIZE = 16
LEVEL = b"l"
TIME = b"t"
BY_VALUE = b"b"
CONVERSION = b"c"
CONVERSION_DAYS = b"C"
_STAMP = struct.Struct(">Q")
_STATES_HEAD = struct.Struct(">QH")
_STATE_HEAD = struct.Struct(">H")
_NO_PROGRESS = FunnelState().to_bytes()
"""A visitor's state in a funnel before its first event, encoded (as untouched states stay)."""


def new_version() -> str:
    """A new generation id for a saved funnel definition (hex)."""
    return secrets.token_hex(VERSION_SIZE)


def conversion_row(version: bytes) -> bytes:
    return CONVERSION + version


def day_rows(version: bytes, start: int, finish: int) -> list[bytes]:
    """The entry-day rows that hold the days from `start` to `finish` (Unix seconds)."""
    return [CONVERSION_DAYS + version + struct.pack(">I", shard) for shard in DAY.shards(start, finish)]


@functools.lru_cache(maxsize=4096)
def level_kind(version: bytes, level: int) -> Kind:
    """The drop-off index of one level of one funnel version (kept: a hit that raises a level names two)."""
    return FUNNEL_LEVEL.of(f"{version.hex()} {level}")


def drop_off_index(record: dict) -> set[Kind]:
    """Every part of the drop-off index of a funnel record's version (none before exact funnels)."""
    if "version" not in record:
        return set()
    version = bytes.fromhex(record["version"])
    return {level_kind(version, level) for level in range(1, len(record["steps"]) + 1)}


@dataclass(frozen=True)
class SavedFunnel:
    """A saved funnel as conversions count it: its definition, version and property."""

    version: bytes
    definition: FunnelDefinition
    prop: bytes | None

    @classmethod
    def of(cls, record: dict) -> "SavedFunnel | None":
        """From a funnel record; None for one saved before exact funnels (it has no version)."""
        if "version" not in record:
            return None
        definition = FunnelDefinition(
            steps=tuple(tuple(decode_id(event) for event in step) for step in record["steps"]),
            order=record["order"],
            window=record["window"],
            exclude=tuple(decode_id(event) for event in record["exclude"]),
        )
        prop = None if record["property"] is None else property_id(record["property"])
        return cls(bytes.fromhex(record["version"]), definition, prop)


class SavedFunnels:
    """A bucket's saved funnels, indexed by what touches them: a hit looks up its own events, not every funnel."""

    def __init__(self, funnels: list[SavedFunnel]) -> None:
        self._funnels = funnels
        self._versions = frozenset(funnel.version for funnel in funnels)
        self._strict = [n for n, funnel in enumerate(funnels) if funnel.definition.order == "strict"]
        self._by_event: dict[bytes, list[int]] = {}
        self._by_property: dict[bytes, list[int]] = {}
        for n, funnel in enumerate(funnels):
            events = {event for step in funnel.definition.steps for event in step} | set(funnel.definition.exclude)
            for event in events if funnel.definition.order != "strict" else ():
                self._by_event.setdefault(event, []).append(n)
            if funnel.prop is not None:
                self._by_property.setdefault(funnel.prop, []).append(n)

    def __iter__(self) -> Iterator[SavedFunnel]:
        return iter(self._funnels)

    def __bool__(self) -> bool:
        return bool(self._funnels)

    def versions(self) -> frozenset[bytes]:
        return self._versions

    def touched(self, events: Iterable[bytes], new_values: Iterable[bytes]) -> list[SavedFunnel]:
        """The funnels whose numbers a hit with these events and newly held values can change, in saved order.

        A strict funnel is touched by every event: any event breaks its chains.
        """
        found: set[int] = set()
        for event in events:
            found.update(self._strict)
            found.update(self._by_event.get(event, ()))
        for value in new_values:
            found.update(self._by_property.get(value[:ID_SIZE], ()))
        return [self._funnels[n] for n in sorted(found)]


@dataclass
class FunnelStates:
    """One visitor's states in a bucket's funnel versions, and the time of its latest event that changed one.

    A state stays encoded until it changes: a hit decodes only the funnels
    it touches, and encodes again only those it moved.
    """

    last_ms: int = 0
    funnels: dict[bytes, FunnelState | bytes] = field(default_factory=dict)

    def state(self, version: bytes) -> FunnelState | None:
        found = self.funnels.get(version)
        return FunnelState.from_bytes(found) if isinstance(found, bytes) else found

    def states(self) -> Iterator[tuple[bytes, FunnelState]]:
        for version in list(self.funnels):
            state = self.state(version)
            assert state is not None
            yield version, state

    def to_bytes(self) -> bytes:
        parts = [_STATES_HEAD.pack(self.last_ms, len(self.funnels))]
        for version, state in self.funnels.items():
            raw = state if isinstance(state, bytes) else state.to_bytes()
            parts += [version, _STATE_HEAD.pack(len(raw)), raw]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "FunnelStates":
        last_ms, count = _STATES_HEAD.unpack_from(data)
        offset = _STATES_HEAD.size
        funnels: dict[bytes, FunnelState | bytes] = {}
        for _ in range(count):
            version = data[offset : offset + VERSION_SIZE]
            (size,) = _STATE_HEAD.unpack_from(data, offset + VERSION_SIZE)
            offset += VERSION_SIZE + _STATE_HEAD.size
            funnels[version] = data[offset : offset + size]
            offset += size
        return cls(last_ms, funnels)


@dataclass
class Changes:
    """What a hit adds to its batch for the exact funnels (increments go straight into the hit's)."""

    key: tuple[str, str]
    state: bytes
    records: dict[tuple[Kind, str], bytes] = field(default_factory=dict)
    deletions: set[tuple[Kind, str]] = field(default_factory=set)


def _count_progress(funnel: SavedFunnel, progress: Progress, values: Iterable[bytes], inc: Increments) -> None:
    row = conversion_row(funnel.version)
    held = [value for value in values if value[:ID_SIZE] == funnel.prop]
    for step in progress.reached:
        increment(inc, row, LEVEL + bytes([step]))
        for value in held:
            increment(inc, row, BY_VALUE + value + bytes([step]))
    for step, bucket in progress.converted:
        increment(inc, row, TIME + bytes([step, bucket]))
    for day_start, level in progress.entry_days:
        (day_row,) = day_rows(funnel.version, day_start, day_start)
        increment(inc, day_row, _STAMP.pack(day_start) + bytes([level]))


def apply_hit(
    funnel: SavedFunnel,
    state: FunnelState,
    new_values: Iterable[bytes],
    holding: set[bytes],
    events: Iterable[bytes],
    at_ms: int,
    inc: Increments,
) -> FunnelState:
    """One hit of a visitor in one funnel: values gained (credited at the level so far), then events.

    `holding` is every value the visitor holds after the hit.  The live
    write path and a replay of a history (the backfill) both count through
    here, so their numbers cannot drift.
    """
    for value in new_values:
        if value[:ID_SIZE] == funnel.prop:
            for step in credit_value(state.level):
                increment(inc, conversion_row(funnel.version), BY_VALUE + value + bytes([step]))
    for event in events:
        if funnel.definition.touched_by(event):
            state, progress = advance(state, funnel.definition, event, at_ms)
            # A rise of the funnel's level is a rise of some entry day's: entry days say whether anything counts.
            if progress.entry_days:
                _count_progress(funnel, progress, holding, inc)
    return state


def replay_funnel(funnel: SavedFunnel, hits: Iterable[Hit], inc: Increments) -> FunnelState:
    """A visitor's state in `funnel` counted from nothing over its history, adding what it counted to `inc`."""
    state = FunnelState()
    held: set[bytes] = set()
    for hit in hits:
        new_values = [value for value in dict.fromkeys(hit.value_ids) if value not in held]
        held.update(new_values)
        state = apply_hit(funnel, state, new_values, held, hit.event_ids, hit.time_ms, inc)
    return state


def replay_states(funnels: Iterable[SavedFunnel], history: list[Hit], inc: Increments) -> FunnelStates:
    """A visitor's states in the funnels its history counts in, from nothing, as a rebuild writes them."""
    states = FunnelStates(last_ms=latest_event_ms(history))
    for funnel in funnels:
        added = new_increments()
        state = replay_funnel(funnel, history, added)
        if added:
            states.funnels[funnel.version] = state
            add_increments(inc, added)
    return states


class Conversions:
    def __init__(
        self,
        store: RecordWriter,
        clock: Callable[[], float],
        state_cache_size: int = 100_000,
        cache_seconds: float = 60.0,
        funnel_cache_size: int = 1024,
    ) -> None:
        self._store = store
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._saved: LRU[str, tuple[SavedFunnels, float]] = LRU(funnel_cache_size)
        self._states: LRU[tuple[str, str], tuple[bytes, float]] = LRU(state_cache_size)

    def caches(self) -> dict[str, LRU]:
        return {"funnel_definitions": self._saved, "funnel_state": self._states}

    async def saved(self, scope: str) -> SavedFunnels:
        cached = self._saved.get(scope)
        if cached is not None and self._clock() - cached[1] <= FUNNELS_SECONDS:
            return cached[0]
        records = await self._store.scan(scope, FUNNEL)
        funnels = SavedFunnels(
            [funnel for raw in records.values() if (funnel := SavedFunnel.of(ujson.loads(raw))) is not None]
        )
        self._saved.put(scope, (funnels, self._clock()))
        return funnels

    def forget(self, scope: str) -> None:
        """A funnel of the bucket was saved or deleted, or the bucket is gone: read again."""
        self._saved.pop(scope)
        self._states.forget_where(lambda key: key[0] == scope)

    async def _visitor_states(self, key: tuple[str, str]) -> FunnelStates:
        cached = self._states.get(key)
        if cached is not None and self._clock() - cached[1] <= self._cache_seconds:
            raw: bytes | None = cached[0]
        else:
            raw = await self._store.get(key[0], FUNNEL_STATE, key[1])
        return FunnelStates() if raw is None else FunnelStates.from_bytes(raw)

    async def count(
        self,
        scope: str,
        visitor_id: str,
        held: set[bytes],
        values: Iterable[bytes],
        events: list[bytes],
        at_ms: int,
        inc: Increments,
        earlier_hits: bool = True,
    ) -> Changes | None:
        """A hit (its property values first, then its events, at `at_ms`) of a visitor holding `held` before it.

        Adds the funnels' increments to `inc`; returns the records to write
        with them (none when no state moved: the stored states record stays
        as it is), or None when the hit touches no funnel.  A funnel the
        visitor has no state in yet is first counted over the visitor's
        history.  A visitor with no `earlier_hits` has no history: it is
        marked counted in every saved funnel, so that no later hit has a
        history to read for them.
        """
        saved = await self.saved(scope)
        new_values = [value for value in dict.fromkeys(values) if value not in held]
        funnels = saved.touched(events, new_values)
        if not funnels and (earlier_hits or not saved):
            return None
        key = (scope, visitor_id)
        if earlier_hits:
            states = await self._visitor_states(key)
        else:
            # A new visitor is counted in every saved funnel already: it has no past to replay.
            states = FunnelStates(funnels=dict.fromkeys((funnel.version for funnel in saved), _NO_PROGRESS))
        at_ms = max(at_ms, states.last_ms)
        holding = held | set(new_values)
        changes = Changes(key, b"")
        history: list[Hit] | None = None if earlier_hits else []
        moved = not earlier_hits or not states.funnels.keys() <= saved.versions()
        for funnel in funnels:
            stored = states.state(funnel.version)
            if stored is None:
                if history is None:
                    history = [hit async for _, hit in read_hits(self._store, scope, visitor_id)]
                state = replay_funnel(funnel, history, inc)
            else:
                state = stored
            state = apply_hit(funnel, state, new_values, holding, events, at_ms, inc)
            if state is not stored:
                states.funnels[funnel.version] = state
                self._index(changes, funnel.version, visitor_id, 0 if stored is None else stored.level, state.level)
                moved = True
        if moved:
            # A hit of values alone leaves the time no later event may count before.
            self._finish(saved, visitor_id, states, at_ms if events else states.last_ms, changes)
        else:
            # The record as read, encoded again only to be cached (every state in it is still encoded).
            changes.state = states.to_bytes()
        return changes

    async def build(self, scope: str, visitor_id: str, funnel: SavedFunnel) -> tuple[Changes, Increments] | None:
        """The backfill of one visitor: its state in `funnel` counted over its history.

        None when there is nothing to write: the visitor is counted in that
        version already, or its history gives it nothing (a hit touching the
        funnel later counts that history then).  Call under the visitor's order.
        """
        saved = await self.saved(scope)
        if funnel.version not in saved.versions():
            # Saved by another process since this one read the bucket's funnels:
            # read them now, so that the state built is kept and later hits count in it.
            self._saved.pop(scope)
            saved = await self.saved(scope)
            if funnel.version not in saved.versions():
                return None
        key = (scope, visitor_id)
        states = await self._visitor_states(key)
        if funnel.version in states.funnels:
            return None
        inc = new_increments()
        history = [hit async for _, hit in read_hits(self._store, scope, visitor_id)]
        state = replay_funnel(funnel, history, inc)
        if not inc:
            return None
        states.funnels[funnel.version] = state
        changes = Changes(key, b"")
        self._index(changes, funnel.version, visitor_id, 0, state.level)
        self._finish(saved, visitor_id, states, max(states.last_ms, latest_event_ms(history)), changes)
        return changes, inc

    async def contributions(self, scope: str, visitor_id: str, history: list[Hit]) -> tuple[Increments, set]:
        """What a visitor's history added to the exact funnels, and its records there: an erase removes both."""
        key = (scope, visitor_id)
        states = await self._visitor_states(key)
        current = {funnel.version: funnel for funnel in await self.saved(scope)}
        inc = new_increments()
        records: set[tuple[Kind, str]] = {(FUNNEL_STATE, visitor_id)}
        for version, state in states.states():
            if version in current:
                replay_funnel(current[version], history, inc)
            if state.level:
                records.add((level_kind(version, state.level), visitor_id))
        self._states.pop(key)
        return inc, records

    @staticmethod
    def _index(changes: Changes, version: bytes, visitor_id: str, indexed: int, level: int) -> None:
        """Move the visitor in the drop-off index from the level listed (0: none) to `level`."""
        if level != indexed:
            if indexed:
                changes.deletions.add((level_kind(version, indexed), visitor_id))
            changes.records[level_kind(version, level), visitor_id] = b""

    @staticmethod
    def _finish(saved: SavedFunnels, visitor_id: str, states: FunnelStates, at_ms: int, changes: Changes) -> None:
        """The visitor's states record, keeping the versions still saved, into `changes`."""
        current = saved.versions()
        if not states.funnels.keys() <= current:
            states.funnels = {version: state for version, state in states.funnels.items() if version in current}
        states.last_ms = at_ms
        changes.state = states.to_bytes()
        changes.records[FUNNEL_STATE, visitor_id] = changes.state

    def written(self, changes: Changes) -> None:
        """The hit's batch is durable: its states are what the store holds."""
        self._states.put(changes.key, (changes.state, self._clock()))

    def unsure(self, key: tuple[str, str]) -> None:
        """The hit's write failed: read the visitor's states from the store next time."""
        self._states.pop(key)


def definition_record(definition: FunnelDefinition) -> dict[str, object]:
    """What a funnel record holds of its definition (wire ids), as `SavedFunnel.of` reads it back."""
    return {
        "steps": [[encode_id(event) for event in step] for step in definition.steps],
        "order": definition.order,
        "window": definition.window,
        "exclude": [encode_id(event) for event in definition.exclude],
    }
