"""What a bucket has seen: event and property names, values, saved funnels.

Names and values are written once, in the same batch as the counters of the
request that first used them; a bounded per-bucket cache of the ids already
written keeps that off every later request.  Reports read names back from
here, and only those some visitor still uses: counting keeps, in the names
row, how many visitors did each event and hold each value, and an erase
takes its visitor's part back, so a name only an erased visitor used is
reported no more, as if it had never been (docs/api.md).  A bucket made
before those counts has no ``c`` cell in that row (`NAMES_COUNTED`): all its
names stand, until a rebuild counts them.

A bucket's names are capped (hiitrack.limits): before a request adds a name
the catalog has not written, it asks the store whether the name exists and,
if it is new, compares the bucket's count of such names with the cap.  The
counts are read from the store (a scan) at most every `COUNT_SECONDS` and
kept up to date with this process's own additions, so several processes, or
hits that arrive at the same moment, may pass a cap by the names they add at
once.  Tests: tests/test_http_reports.py, tests/test_caps.py.
"""

from collections.abc import Callable, Container, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import ujson
from twisted.internet.defer import DeferredLock

from hiitrack.caching import LRU
from hiitrack.counting import NAMES, NAMES_COUNTED, USED_EVENT, USED_PROPERTY, USED_VALUE
from hiitrack.gathering import together
from hiitrack.ids import ID_SIZE, canonical_json, decode_id, encode_id
from hiitrack.limits import Limits, OverLimit
from hiitrack.store import Store, WriteBatch
from hiitrack.store.kinds import EVENT, FUNNEL, PROPERTY, VALUE, Kind

__all__ = ["Admission", "BucketNames", "Catalog"]

_Read = TypeVar("_Read")

COUNT_SECONDS = 60.0
"""How long a bucket's name counts, as read from the store, are trusted."""


@dataclass
class _Counts:
    """How many names of each kind a bucket holds (values: per property id, read when needed)."""

    read_at: float
    events: int
    properties: int
    values: dict[bytes, int] = field(default_factory=dict)


@dataclass
class Admission:
    """A request's name and value records not written yet, and which of them are new to the bucket."""

    records: dict[tuple[Kind, str], bytes]
    new_events: int = 0
    new_properties: int = 0
    new_values: dict[bytes, int] = field(default_factory=dict)


def _value_kind(prop: bytes) -> Kind:
    return VALUE.of(encode_id(prop))


def value_record(value: bytes, content: object) -> tuple[tuple[Kind, str], bytes]:
    """Where a value id's value is kept, and the value as kept: its canonical JSON."""
    return (_value_kind(value[:ID_SIZE]), encode_id(value)), canonical_json(content).encode("utf-8")


class Catalog:
    def __init__(self, store: Store, clock: Callable[[], float], limits: Limits, cache_size: int = 1024) -> None:
        self._store = store
        self._clock = clock
        self._limits = limits
        self._written: LRU[str, set[bytes]] = LRU(cache_size)
        self._counts: LRU[str, _Counts] = LRU(cache_size)

    def caches(self) -> dict[str, LRU]:
        return {"catalog": self._written, "catalog_counts": self._counts}

    async def admit(self, scope: str, events: dict[bytes, str], values: dict[bytes, tuple[str, object]]) -> Admission:
        """The name and value records of a request that are not written yet.

        `events` maps event ids to names; `values` maps value ids to
        ``(property name, value)``.  Raises `OverLimit` if the new ones would
        take the bucket over a cap.
        """
        written = self._written.get(scope) or set()
        records: dict[tuple[Kind, str], bytes] = {}
        unknown: dict[tuple[Kind, str], bytes] = {}
        for event, name in events.items():
            if event not in written:
                unknown[EVENT, encode_id(event)] = event
                records[EVENT, encode_id(event)] = name.encode("utf-8")
        for value, (name, content) in values.items():
            if value not in written:
                prop = value[:ID_SIZE]
                address, text = value_record(value, content)
                unknown[PROPERTY, encode_id(prop)] = prop
                unknown[address] = value
                records[PROPERTY, encode_id(prop)] = name.encode("utf-8")
                records[address] = text
        admission = Admission(records)
        if not unknown:
            return admission
        addresses = list(unknown)
        stored = await together(*(self._store.get(scope, kind, key) for kind, key in addresses))
        for (kind, _), raw, raw_id in zip(addresses, stored, unknown.values(), strict=True):
            if raw is not None:
                continue
            if kind == EVENT:
                admission.new_events += 1
            elif kind == PROPERTY:
                admission.new_properties += 1
            else:
                prop = raw_id[:ID_SIZE]
                admission.new_values[prop] = admission.new_values.get(prop, 0) + 1
        if admission.new_events or admission.new_properties or admission.new_values:
            await self._check(scope, admission)
        return admission

    async def _check(self, scope: str, admission: Admission) -> None:
        counts = self._counts.get(scope)
        if counts is None or self._clock() - counts.read_at > COUNT_SECONDS:
            events, properties = await together(self._store.scan(scope, EVENT), self._store.scan(scope, PROPERTY))
            counts = _Counts(self._clock(), len(events), len(properties))
            self._counts.put(scope, counts)
        limits = self._limits
        if counts.events + admission.new_events > limits.bucket_events:
            raise OverLimit("bucket_events", limits.bucket_events, "this bucket has too many distinct events")
        if counts.properties + admission.new_properties > limits.bucket_properties:
            raise OverLimit("bucket_properties", limits.bucket_properties, "this bucket has too many properties")
        for prop, new in admission.new_values.items():
            if prop not in counts.values:
                counts.values[prop] = len(await self._store.scan(scope, _value_kind(prop)))
            if counts.values[prop] + new > limits.property_values:
                raise OverLimit("property_values", limits.property_values, "a property has too many distinct values")

    def remember(self, scope: str, ids: set[bytes], admission: Admission) -> None:
        """Note ids whose records are durable, so they are not written again, and count the new ones."""
        written = self._written.get(scope)
        if written is None:
            written = set()
            self._written.put(scope, written)
        written |= ids
        counts = self._counts.get(scope)
        if counts is not None:
            counts.events += admission.new_events
            counts.properties += admission.new_properties
            for prop, new in admission.new_values.items():
                if prop in counts.values:
                    counts.values[prop] += new

    def forget(self, scope: str) -> None:
        self._written.pop(scope)
        self._counts.pop(scope)

    def names(self, scope: str) -> "BucketNames":
        """The names of `scope` that some visitor uses, for one report to ask about."""
        return BucketNames(self._store, scope)

    async def funnels(self, scope: str) -> dict[str, dict]:
        return {name: ujson.loads(raw) for name, raw in (await self._store.scan(scope, FUNNEL)).items()}

    async def funnel(self, scope: str, name: str) -> dict | None:
        raw = await self._store.get(scope, FUNNEL, name)
        return None if raw is None else ujson.loads(raw)

    async def save_funnel(self, scope: str, name: str, funnel: dict) -> None:
        """Save (or replace) a funnel; a new one past the bucket's cap is refused."""
        saved = await self._store.scan(scope, FUNNEL)
        if name not in saved and len(saved) >= self._limits.bucket_funnels:
            # docs/api.md answers the funnel past the cap with 400, not the caps' 422.
            raise OverLimit(
                "bucket_funnels", self._limits.bucket_funnels, "this bucket has too many saved funnels", status=400
            )
        await self._store.write(WriteBatch(scope, records={(FUNNEL, name): ujson.dumps(funnel).encode()}))

    async def delete_funnel(self, scope: str, name: str) -> None:
        await self._store.delete(scope, FUNNEL, name)


class BucketNames:
    """A bucket's names in use, as one report sees them.

    The names row (which ids some visitor uses) is read once, at the same
    time as the first name records asked for, and answers every question
    of the report: a report that asks for its event, the properties and
    their values at once reads it once, in one round trip.
    """

    def __init__(self, store: Store, scope: str) -> None:
        self._store = store
        self._scope = scope
        self._cells: dict[bytes, int] | None = None
        self._reading = DeferredLock()

    async def events(self) -> dict[bytes, str]:
        names, used = await self._in_use(self._store.scan(self._scope, EVENT), USED_EVENT)
        return _decoded_names(names, used)

    async def properties(self) -> dict[bytes, str]:
        names, used = await self._in_use(self._store.scan(self._scope, PROPERTY), USED_PROPERTY)
        return _decoded_names(names, used)

    async def event_name(self, event: bytes) -> str | None:
        raw, used = await self._in_use(self._store.get(self._scope, EVENT, encode_id(event)), USED_EVENT, event)
        return None if raw is None or event not in used else raw.decode("utf-8")

    async def property_name(self, prop: bytes) -> str | None:
        raw, used = await self._in_use(self._store.get(self._scope, PROPERTY, encode_id(prop)), USED_PROPERTY, prop)
        return None if raw is None or prop not in used else raw.decode("utf-8")

    async def values(self, prop: bytes) -> dict[bytes, object]:
        records, used = await self._in_use(self._store.scan(self._scope, _value_kind(prop)), USED_VALUE, prop)
        values = {decode_id(key, 2 * ID_SIZE): raw for key, raw in records.items()}
        return {value: ujson.loads(raw) for value, raw in values.items() if value in used}

    async def _in_use(
        self, names: Coroutine[Any, Any, _Read], kind: bytes, prefix: bytes = b""
    ) -> tuple[_Read, Container[bytes]]:
        """What `names` reads, and which ids starting with `prefix` among those of `kind`
        (`USED_EVENT`, ...) some visitor uses: all of them in a bucket made before it counted them."""
        read, cells = await together(names, self._names_row())
        if NAMES_COUNTED not in cells:
            return read, _EVERY_ID
        start = kind + prefix
        return read, {column[len(kind) :] for column, n in cells.items() if n > 0 and column.startswith(start)}

    async def _names_row(self) -> dict[bytes, int]:
        """The names row, read by the first question; those asked meanwhile wait for it.  It is
        read whole: the SQLite store keeps whole rows (a range would be read from the file each time)."""
        if self._cells is None:
            await self._reading.acquire()
            try:
                if self._cells is None:
                    (self._cells,) = await self._store.read_rows(self._scope, [NAMES])
            finally:
                self._reading.release()
        return self._cells


def _decoded_names(records: dict[str, bytes], used: Container[bytes]) -> dict[bytes, str]:
    names = {decode_id(key): raw for key, raw in records.items()}
    return {name_id: raw.decode("utf-8") for name_id, raw in names.items() if name_id in used}


class _EveryId:
    """Holds every id: the names in use in a bucket made before it counted them."""

    def __contains__(self, _: object) -> bool:
        return True


_EVERY_ID = _EveryId()
