"""The counting semantics of docs/api.md, as pure functions.

Given a visitor's state and what the visitor did (an event, a property value,
a batch of both), these functions update the state and add the counter
increments that the action causes.  Nothing here does I/O or knows a store:
the write path persists what this returns, the report path reads the same
rows back through the key helpers below.  Tests: tests/test_counting.py,
tests/test_caps.py.

Counters live in rows of cells.  A row key starts with one byte naming its
kind; a cell's column key names the counter inside the row:

=========================  ===============================  =======================
row                        key                              columns
=========================  ===============================  =======================
event                      ``e`` E                          ``t``, ``u``, ``p`` X, ``q`` X
segment (event × property) ``s`` E P                        V + one of the above
holders of a property      ``v`` P                          V E
event series               ``E`` g shard E                  T + one of the above
segment series             ``S`` g shard E P                T V + one of the above
names in use               ``n``                            ``e`` E, ``p`` P, ``v`` V, ``c``
=========================  ===============================  =======================

E and X are event ids, P a property id, V a value id (which starts with P),
``t`` a total, ``u`` a unique total, ``p``/``q`` a path / unique path from X,
g ``h`` or ``d`` for hourly or daily series, T the series bucket's start as an
8-byte big-endian Unix time.  Series rows are split into time shards so that
no row grows without bound.  The names row counts the visitors who did each
event and hold each value (and, per property, its values' holders), so that
a name no visitor uses any more (after an erase) is no longer reported;
``c`` says the bucket has counted them since it was made (hiitrack.catalog).
"""

import functools
import struct
import sys
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import chain
from typing import ClassVar

from hiitrack.ids import ID_SIZE
from hiitrack.limits import Limits, OverLimit
from hiitrack.store.interface import add_cells

__all__ = [
    "DAY",
    "HOUR",
    "INTERVALS",
    "NAMES",
    "NAMES_COUNTED",
    "USED_EVENT",
    "USED_PROPERTY",
    "USED_VALUE",
    "Increments",
    "Interval",
    "Visitor",
    "WIDE_EVENTS",
    "add_increments",
    "cell_count",
    "count_batch",
    "count_event",
    "count_property",
    "event_row",
    "holders_row",
    "names_counted",
    "increment",
    "new_increments",
    "segment_row",
    "series_rows",
]

EVENT = b"e"
SEGMENT = b"s"
HOLDERS = b"v"
EVENT_SERIES = b"E"
SEGMENT_SERIES = b"S"
NAMES = b"n"

USED_EVENT = b"e"
USED_PROPERTY = b"p"
USED_VALUE = b"v"
NAMES_COUNTED = b"c"

TOTAL = b"t"
UNIQUE_TOTAL = b"u"
PATH = b"p"
UNIQUE_PATH = b"q"

VALUE_ID_SIZE = 2 * ID_SIZE
_COUNT_PAIR = struct.Struct(">QQ")

WIDE_EVENTS = 5
"""Up to this many events a visitor's state is written in the wide layout (`Visitor.to_bytes`)."""
_COMPACT = 1
"""The first byte of a visitor's state in the compact layout (little-endian): the byte and the
number of events (2 bytes); their ids; their counts (4 bytes each); their numbers of earlier
events (2 each); the places among the ids of each event's earlier events, event after event (2
each), and their counts in the same order (4 each); the number of values (2) and their ids; the
history's hits, first and last ms, and the latest event's ms (8 each; states written before
that last one end without it).  The wide layout, of states written before it (and of one whose
count or size does not fit it), starts with its number of events in 8 big-endian bytes, so with
a zero byte.  (`array`'s "H" and "I" are 2 and 4 bytes wherever CPython runs.)"""
_COMPACT_HEAD = struct.Struct("<BH")
_COMPACT_BOUNDS = struct.Struct("<QQQ")
_COMPACT_LAST_EVENT = struct.Struct("<Q")
_SHORT = struct.Struct("<H")
_BIG_ENDIAN = sys.byteorder == "big"


def _little(run: array) -> bytes:
    if _BIG_ENDIAN:
        run.byteswap()
    return run.tobytes()


def _unpacked(code: str, data: bytes, offset: int, count: int) -> tuple[array, int]:
    """`count` little-endian numbers of array type `code` from `offset`, and the offset after them."""
    run = array(code)
    end = offset + count * run.itemsize
    run.frombytes(data[offset:end])
    if _BIG_ENDIAN:
        run.byteswap()
    return run, end


def _value_ids(data: bytes, offset: int, count: int) -> tuple[set[bytes], int]:
    """The `count` value ids of a state (either layout) from `offset`, and the offset after them."""
    end = offset + count * VALUE_ID_SIZE
    return {data[start : start + VALUE_ID_SIZE] for start in range(offset, end, VALUE_ID_SIZE)}, end


Increments = dict[bytes, dict[bytes, int]]
"""``Increments[row][column] = amount``: what one or more actions add, by row.

By row because stores merge, journal and write a commit's cells by row: a
row met for the first time in a commit is copied whole, in C, and the
merge then looks each row up once rather than once per cell.
"""


@dataclass(frozen=True)
class Interval:
    """A series granularity: its tag, its length and the span of one row."""

    tag: bytes
    seconds: int
    shard_seconds: int

    def start_of(self, when: int) -> int:
        return when - when % self.seconds

    def shards(self, start: int, finish: int) -> range:
        """The shards of the rows holding the buckets from `start`'s to `finish`'s.  A bucket is in
        the row of its own start's shard, and shards do not begin on bucket starts: the bucket of
        a `start` just past a shard's beginning is in the shard before."""
        return range(self.start_of(start) // self.shard_seconds, finish // self.shard_seconds + 1)

    def middle(self, shard: int) -> bytes:
        """What a series row holds between its kind and its event (and property): tag and shard."""
        return self.tag + struct.pack(">I", shard)


HOUR = Interval(b"h", 3600, 2**21)
DAY = Interval(b"d", 86400, 2**25)
INTERVALS = {"hour": HOUR, "day": DAY}


def new_increments() -> Increments:
    return {}


def names_counted() -> Increments:
    """The cell that says a bucket counts its names' users (the names row's ``c``): written when the
    bucket is made, and by a rebuild, which counts them all again."""
    return {NAMES: {NAMES_COUNTED: 1}}


def increment(inc: Increments, row: bytes, column: bytes, amount: int = 1) -> None:
    """Add `amount` to one cell."""
    cells = inc.get(row)
    if cells is None:
        inc[row] = {column: amount}
    else:
        cells[column] = cells.get(column, 0) + amount


def add_increments(inc: Increments, more: Increments) -> None:
    """Add every cell of `more` to `inc`."""
    for row, columns in more.items():
        add_cells(inc, row, columns)


def cell_count(inc: Increments) -> int:
    """How many cells the increments touch."""
    return sum(map(len, inc.values()))


@dataclass
class Visitor:
    """What the server remembers of one visitor in one bucket.

    ``seen[E]`` counts the visitor's E events; ``followed[E][X]`` counts the
    E events done while X had already happened; ``values`` holds the value
    ids the visitor has.  ``hits`` counts the hits kept in its history
    (hiitrack.history), whose times ``first_ms`` and ``last_ms`` bound (Unix
    ms); ``last_event_ms`` is the time of its latest event, before which no
    later hit counts (API.md, "Hit time").  Counting itself does not use them.
    """

    seen: dict[bytes, int] = field(default_factory=dict)
    followed: dict[bytes, dict[bytes, int]] = field(default_factory=dict)
    values: set[bytes] = field(default_factory=set)
    hits: int = 0
    first_ms: int = 0
    last_ms: int = 0
    last_event_ms: int = 0

    _COUNT: ClassVar[struct.Struct] = struct.Struct(">Q")
    _HISTORY: ClassVar[struct.Struct] = struct.Struct(">QQQ")
    _LAST_EVENT: ClassVar[struct.Struct] = struct.Struct(">Q")

    def to_bytes(self) -> bytes:
        """The wide layout up to `WIDE_EVENTS` events, the compact one (`_COMPACT`) past them.

        The compact layout names an earlier event by its place among the ids, not by its 16
        bytes: a visitor with 8 events, each done after every one, takes 597 bytes where the wide
        layout takes 1,840, and SQLite keeps it in its row instead of an overflow page
        (docs/performance.md, "Session 26").  For fewer events the wide one is small as well,
        and faster to write and read in Python."""
        if len(self.seen) > WIDE_EVENTS:
            try:
                return self._compact_bytes()
            except (OverflowError, struct.error):
                pass  # a count or a size that does not fit the compact layout
        return self._wide_bytes()

    def _compact_bytes(self) -> bytes:
        seen = self.seen
        place = dict(zip(seen, range(len(seen)), strict=True))
        followed = [self.followed.get(event, {}) for event in seen]
        return b"".join(
            [
                _COMPACT_HEAD.pack(_COMPACT, len(seen)),
                *seen,
                _little(array("I", seen.values())),
                _little(array("H", map(len, followed))),
                _little(array("H", chain.from_iterable(map(place.__getitem__, earlier) for earlier in followed))),
                _little(array("I", chain.from_iterable(earlier.values() for earlier in followed))),
                _SHORT.pack(len(self.values)),
                *sorted(self.values),
                _COMPACT_BOUNDS.pack(self.hits, self.first_ms, self.last_ms),
                _COMPACT_LAST_EVENT.pack(self.last_event_ms),
            ]
        )

    def _wide_bytes(self) -> bytes:
        count = self._COUNT.pack
        parts = [count(len(self.seen))]
        for event, n in self.seen.items():
            followed = self.followed.get(event, {})
            parts += [event, count(n), count(len(followed))]
            for earlier, m in followed.items():
                parts += [earlier, count(m)]
        parts.append(count(len(self.values)))
        parts.extend(sorted(self.values))
        parts.append(self._HISTORY.pack(self.hits, self.first_ms, self.last_ms))
        parts.append(self._LAST_EVENT.pack(self.last_event_ms))
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Visitor":
        # On every cache hit of the write path (the cache holds this form):
        # whole runs of fields unpacked at once, no helper calls per field.
        if data[0] != _COMPACT:
            return cls._from_wide(data)
        visitor = cls()
        events = _COMPACT_HEAD.unpack_from(data)[1]
        offset = _COMPACT_HEAD.size
        ids = [data[start : start + ID_SIZE] for start in range(offset, offset + events * ID_SIZE, ID_SIZE)]
        counts, offset = _unpacked("I", data, offset + events * ID_SIZE, events)
        sizes, offset = _unpacked("H", data, offset, events)
        places, offset = _unpacked("H", data, offset, sum(sizes))
        pair_counts, offset = _unpacked("I", data, offset, len(places))
        visitor.seen = dict(zip(ids, counts, strict=True))
        start = 0
        for event, size in zip(ids, sizes, strict=True):
            end = start + size
            visitor.followed[event] = dict(
                zip(map(ids.__getitem__, places[start:end]), pair_counts[start:end], strict=True)
            )
            start = end
        values = _SHORT.unpack_from(data, offset)[0]
        offset += _SHORT.size
        visitor.values, offset = _value_ids(data, offset, values)
        visitor.hits, visitor.first_ms, visitor.last_ms = _COMPACT_BOUNDS.unpack_from(data, offset)
        visitor.last_event_ms = _last_event_ms(_COMPACT_LAST_EVENT, data, offset + _COMPACT_BOUNDS.size, visitor)
        return visitor

    @classmethod
    def _from_wide(cls, data: bytes) -> "Visitor":
        count = cls._COUNT.unpack_from
        visitor = cls()
        seen, followed = visitor.seen, visitor.followed
        offset = 8
        for _ in range(count(data, 0)[0]):
            event = data[offset : offset + ID_SIZE]
            n, pairs = _COUNT_PAIR.unpack_from(data, offset + ID_SIZE)
            offset += ID_SIZE + 16
            earlier: dict[bytes, int] = {}
            for _ in range(pairs):
                earlier[data[offset : offset + ID_SIZE]] = count(data, offset + ID_SIZE)[0]
                offset += ID_SIZE + 8
            seen[event] = n
            followed[event] = earlier
        values = count(data, offset)[0]
        offset += 8
        visitor.values, offset = _value_ids(data, offset, values)
        # States written before the history existed end here: no hits kept.
        if len(data) >= offset + cls._HISTORY.size:
            visitor.hits, visitor.first_ms, visitor.last_ms = cls._HISTORY.unpack_from(data, offset)
            offset += cls._HISTORY.size
        visitor.last_event_ms = _last_event_ms(cls._LAST_EVENT, data, offset, visitor)
        return visitor


def _last_event_ms(layout: struct.Struct, data: bytes, offset: int, visitor: Visitor) -> int:
    """The latest event's ms, last in a state; a state written before it was kept ends before it,
    and every hit had moved the bound then: its last hit's ms."""
    return layout.unpack_from(data, offset)[0] if len(data) > offset else visitor.last_ms


def event_row(event: bytes) -> bytes:
    return EVENT + event


def segment_row(event: bytes, prop: bytes) -> bytes:
    return SEGMENT + event + prop


def holders_row(prop: bytes) -> bytes:
    return HOLDERS + prop


def series_rows(event: bytes, prop: bytes | None, interval: Interval, start: int, finish: int) -> list[bytes]:
    """The series rows that hold the buckets from `start` to `finish`."""
    kind, tail = (EVENT_SERIES, event) if prop is None else (SEGMENT_SERIES, event + prop)
    return [kind + interval.middle(shard) + tail for shard in interval.shards(start, finish)]


@functools.lru_cache(maxsize=64)
def _series_parts(when: int) -> tuple[tuple[bytes, bytes], ...]:
    """For each of the hour and day series at `when`: its tag and shard (the middle of a series
    row), and its bucket's start (a series column's prefix).  Cached: a second's hits share them."""
    parts = []
    for interval in (HOUR, DAY):
        start = interval.start_of(when)
        parts.append((interval.middle(start // interval.shard_seconds), struct.pack(">Q", start)))
    return tuple(parts)


def _counters(visitor: Visitor, event: bytes) -> list[bytes]:
    """The counters one more `event` of `visitor` adds 1 to, before the state moves."""
    followed = visitor.followed.get(event, {})
    counters = [TOTAL]
    if event not in visitor.seen:
        counters.append(UNIQUE_TOTAL)
    for earlier in visitor.seen:
        counters.append(PATH + earlier)
        if earlier not in followed:
            counters.append(UNIQUE_PATH + earlier)
    return counters


def count_event(visitor: Visitor, event: bytes, when: int, inc: Increments) -> None:
    """Visitor does `event` at Unix time `when`: add its increments to `inc`."""
    counters = _counters(visitor, event)
    first = event not in visitor.seen
    series = _series_parts(when)
    rows = [(event_row(event), b"")]
    rows += [(EVENT_SERIES + middle + event, stamp) for middle, stamp in series]
    for value in visitor.values:
        prop = value[:ID_SIZE]
        rows.append((segment_row(event, prop), value))
        rows += [(SEGMENT_SERIES + middle + event + prop, stamp + value) for middle, stamp in series]
        if first:
            increment(inc, holders_row(prop), value + event)
    if first:
        increment(inc, NAMES, USED_EVENT + event)
    # Every row gets each counter once (the counters are distinct): a row new to
    # `inc` is made in C, as this is most of a hit's work.  Not through add_cells,
    # which would copy the new row once more: about 8 % more CPU per batch hit in
    # `python benchmarks/cell_path.py`.
    for row, prefix in rows:
        columns = [prefix + counter for counter in counters] if prefix else counters
        cells = inc.get(row)
        if cells is None:
            inc[row] = dict.fromkeys(columns, 1)
        else:
            for column in columns:
                cells[column] = cells.get(column, 0) + 1

    followed = visitor.followed.setdefault(event, {})
    for earlier in visitor.seen:
        followed[earlier] = followed.get(earlier, 0) + 1
    visitor.seen[event] = visitor.seen.get(event, 0) + 1


def count_property(visitor: Visitor, value: bytes, inc: Increments) -> bool:
    """Visitor gets `value`; credit it with the visitor's history if it is new.

    Returns whether the value was new to the visitor.  Series are not
    back-filled (docs/api.md).
    """
    if value in visitor.values:
        return False
    visitor.values.add(value)
    prop = value[:ID_SIZE]
    increment(inc, NAMES, USED_VALUE + value)
    increment(inc, NAMES, USED_PROPERTY + prop)
    for event, n in visitor.seen.items():
        row = segment_row(event, prop)
        increment(inc, row, value + TOTAL, n)
        increment(inc, row, value + UNIQUE_TOTAL)
        increment(inc, holders_row(prop), value + event)
        for earlier, m in visitor.followed.get(event, {}).items():
            increment(inc, row, value + PATH + earlier, m)
            increment(inc, row, value + UNIQUE_PATH + earlier)
    return True


def count_batch(
    visitor: Visitor,
    values: Iterable[bytes],
    events: Iterable[bytes],
    when: int,
    inc: Increments,
    limits: Limits = Limits(),
) -> None:
    """A batch: its property values first, then its events in order.

    Raises `OverLimit` as soon as the visitor or the batch passes a cap of
    `limits`; `visitor` and `inc` are then half-done and must be dropped.
    Checked after each action, so no more than one action's cells (at most
    60,701 at the default visitor caps) are worked out past the cap.
    """
    for value in values:
        count_property(visitor, value, inc)
        _check(visitor, inc, limits)
    for event in events:
        count_event(visitor, event, when, inc)
        _check(visitor, inc, limits)


def _check(visitor: Visitor, inc: Increments, limits: Limits) -> None:
    if len(visitor.values) > limits.visitor_values:
        raise OverLimit("visitor_values", limits.visitor_values, "this visitor has too many distinct property values")
    if len(visitor.seen) > limits.visitor_events:
        raise OverLimit("visitor_events", limits.visitor_events, "this visitor has too many distinct events")
    if cell_count(inc) > limits.hit_cells:
        raise OverLimit("hit_cells", limits.hit_cells, "this hit would update too many counters")
