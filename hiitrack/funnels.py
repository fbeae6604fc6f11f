"""Exact funnels (docs/api.md, "Exact funnels"), as pure functions.

A saved funnel keeps, per visitor, a small state; each event of the visitor
moves it with `advance`, which returns the new state and what to add to the
funnel's counters.  The write path and the backfill (a replay of a history)
call the same function, so live and backfilled numbers cannot drift.  No I/O
here, like hiitrack.counting.  Tests: tests/test_funnels.py (against the
brute-force model in tests/funnel_model.py) and
tests/test_funnels_clickhouse.py (against ClickHouse's windowFunnel).

Times are integer milliseconds since the epoch (hit times are kept to the
millisecond), and a visitor's events must be fed in history order, which
never goes back in time.

Which events touch which funnels (the write path may skip the others: their
`advance` would count nothing, and only drop slots that expired):

* `sequential` and `any`: the events of the funnel's steps and exclusions;
* `strict`: every event of the visitor, since any other event in between
  breaks a strict chain.

The state is kept per UTC day of the chains' first events (e1), because the
"by entry day" numbers count each day as a funnel of its own.  For each day
it holds the day's level and, per slot, one time:

* `sequential`, `strict`: slot m holds the latest e1 in that day of a chain
  of length m that can still grow (`strict`: that ends at the visitor's last
  event).  A later e1 is always at least as good: it leaves more of the window.
* `any`: slot s holds the latest event of step s in that day since the last
  exclusion.

A slot older than the window before the latest event can no longer be part
of a chain and is dropped; so is a past day without slots.  A visitor whose
every day (today's among them) has reached the last step can count nothing
more until a new day starts: its slots are dropped, and `advance` returns
its state as it is (the write path then has nothing to write).  The state
thus holds at most window/86400 + 2 days of at most `len(steps)` slots each:
3 + 9 bytes per day + 4 bytes per slot (about 20 bytes for a visitor active
on one day).
"""

import bisect
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from hiitrack.errors import BadRequest

__all__ = [
    "BUCKET_BOUNDS",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "ORDERS",
    "EntryDay",
    "FunnelDefinition",
    "FunnelState",
    "InvalidFunnel",
    "Progress",
    "advance",
    "credit_value",
    "median",
]

ORDERS = ("sequential", "strict", "any")
DEFAULT_WINDOW = 1_209_600
MAX_WINDOW = 31_622_400
MAX_STEPS = 20
MAX_STEP_EVENTS = 10
MAX_EXCLUDE = 10
BUCKET_BOUNDS = (
    *(1, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
    *(21600, 43200, 86400, 172800, 345600, 604800, 1209600, 2592000, 7776000, 31622400),
)
"""Upper bounds (seconds) of the time-to-convert buckets."""

DAY_MS = 86_400_000
_BOUNDS_MS = [bound * 1000 for bound in BUCKET_BOUNDS]


class InvalidFunnel(BadRequest, ValueError):
    """A funnel definition the contract refuses (400)."""


@dataclass(frozen=True)
class FunnelDefinition:
    """What a saved funnel counts: its steps (each a tuple of event ids, any of
    which completes it), its order, its window in seconds and the events
    that break chains in progress.  Checked on creation."""

    steps: tuple[tuple[bytes, ...], ...]
    order: str = "sequential"
    window: int = DEFAULT_WINDOW
    exclude: tuple[bytes, ...] = ()

    def __post_init__(self) -> None:
        if not 2 <= len(self.steps) <= MAX_STEPS:
            raise InvalidFunnel(f"a funnel has 2 to {MAX_STEPS} steps, not {len(self.steps)}")
        for number, step in enumerate(self.steps, 1):
            if not 1 <= len(step) <= MAX_STEP_EVENTS:
                raise InvalidFunnel(f"step {number} has {len(step)} events; a step has 1 to {MAX_STEP_EVENTS}")
            if len(set(step)) != len(step):
                raise InvalidFunnel(f"step {number} lists an event twice")
        if self.order not in ORDERS:
            raise InvalidFunnel(f"order must be one of {', '.join(ORDERS)}")
        if not 1 <= self.window <= MAX_WINDOW:
            raise InvalidFunnel(f"window must be an integer number of seconds from 1 to {MAX_WINDOW}")
        if len(self.exclude) > MAX_EXCLUDE:
            raise InvalidFunnel(f"at most {MAX_EXCLUDE} excluded events")
        if len(set(self.exclude)) != len(self.exclude):
            raise InvalidFunnel("an excluded event is listed twice")
        if not self._steps_of.keys().isdisjoint(self.exclude):
            raise InvalidFunnel("an excluded event cannot be a step's event")
        if self.order == "any":
            singles = [step[0] for step in self.steps if len(step) == 1]
            if len(singles) != len(self.steps) or len(set(singles)) != len(singles):
                raise InvalidFunnel("with order=any the steps must be single, distinct events")

    @cached_property
    def _steps_of(self) -> dict[bytes, tuple[int, ...]]:
        """Event id -> the numbers (from 1) of the steps it matches."""
        steps: dict[bytes, tuple[int, ...]] = {}
        for number, step in enumerate(self.steps, 1):
            for event in step:
                steps[event] = steps.get(event, ()) + (number,)
        return steps

    @cached_property
    def excluded(self) -> frozenset[bytes]:
        return frozenset(self.exclude)

    @cached_property
    def window_ms(self) -> int:
        return self.window * 1000

    def steps_matched(self, event: bytes) -> tuple[int, ...]:
        return self._steps_of.get(event, ())

    def touched_by(self, event: bytes) -> bool:
        """Whether `advance` with `event` can change a visitor's state or counters."""
        return self.order == "strict" or event in self._steps_of or event in self.excluded


@dataclass(slots=True)
class EntryDay:
    """The chains whose first event lies in one UTC day (see the module doc)."""

    day: int
    """Days since the epoch."""
    level: int
    """The longest chain so far whose first event lies in this day."""
    slots: dict[int, int] = field(default_factory=dict)
    """Slot number (from 1) -> time in ms, inside this day."""


_HEAD = struct.Struct(">BH")
_DAY = struct.Struct(">IBI")
_OFFSET = struct.Struct(">I")


@dataclass(slots=True)
class FunnelState:
    """One visitor's progress in one funnel: its level and its live entry days."""

    level: int = 0
    days: list[EntryDay] = field(default_factory=list)

    def to_bytes(self) -> bytes:
        parts = [_HEAD.pack(self.level, len(self.days))]
        for entry in self.days:
            mask = sum(1 << (slot - 1) for slot in entry.slots)
            parts.append(_DAY.pack(entry.day, entry.level, mask))
            start = entry.day * DAY_MS
            parts += [_OFFSET.pack(entry.slots[slot] - start) for slot in sorted(entry.slots)]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> "FunnelState":
        level, count = _HEAD.unpack_from(data)
        offset = _HEAD.size
        days = []
        for _ in range(count):
            day, day_level, mask = _DAY.unpack_from(data, offset)
            offset += _DAY.size
            slots = {}
            for slot in range(1, mask.bit_length() + 1):
                if mask >> (slot - 1) & 1:
                    slots[slot] = day * DAY_MS + _OFFSET.unpack_from(data, offset)[0]
                    offset += _OFFSET.size
            days.append(EntryDay(day, day_level, slots))
        return cls(level, days)


class Progress(NamedTuple):
    """What one event adds to a funnel's counters (a tuple: one is made per event and funnel).

    * ``visitors[j-1] += 1`` for each step j in `reached`, and
      ``by_value[v][j-1] += 1`` for each value v the visitor holds;
    * ``time_to_convert[j-1][bucket] += 1`` for each (j, bucket) in `converted`;
    * ``days[day_start][level-1] += 1`` for each (day_start, level) in `entry_days`;
    * the drop-off index moves the visitor from `previous_level` to `level`.
    """

    previous_level: int
    level: int
    converted: tuple[tuple[int, int], ...] = ()
    """(step number j >= 2, index in BUCKET_BOUNDS of the time it took)."""
    entry_days: tuple[tuple[int, int], ...] = ()
    """(UTC day start in Unix seconds, level newly reached by that day's chains)."""

    @property
    def reached(self) -> range:
        return range(self.previous_level + 1, self.level + 1)


def advance(state: FunnelState, funnel: FunnelDefinition, event: bytes, at_ms: int) -> tuple[FunnelState, Progress]:
    """The visitor of `state` does `event` at `at_ms`: its new state and what to count.

    `state` is left as it was, and is what is returned when the event
    changes nothing.  The chains that are new are those ending at this
    event, each an older chain (read from the old slots) plus this event:
    so one event fills one step of a chain.
    """
    today = at_ms // DAY_MS
    if _finished(state, len(funnel.steps), today):
        return state, Progress(state.level, state.level)
    horizon = at_ms - funnel.window_ms
    cleared = event in funnel.excluded
    steps = funnel.steps_matched(event)
    if funnel.order == "sequential" and not cleared and _extends_nothing(state, steps, horizon, today):
        return state, Progress(state.level, state.level)
    # In day order, as the state keeps them; a day started today goes last (time never goes back).
    days = [EntryDay(entry.day, entry.level, _live(entry, horizon, cleared)) for entry in state.days]
    entry_days: list[tuple[int, int]] = []
    if funnel.order == "any":
        durations = _grow_any(days, steps, today, at_ms, horizon, entry_days)
    else:
        durations = _grow_chains(days, steps, today, at_ms, funnel.order == "strict", entry_days)

    level = max(state.level, max(reached for _, reached in entry_days)) if entry_days else state.level
    new_state = FunnelState(level, [entry for entry in days if entry.slots or entry.day == today])
    if _finished(new_state, len(funnel.steps), today):
        new_state.days = [EntryDay(today, level)]
    if not entry_days:
        return state if new_state == state else new_state, Progress(level, level)
    converted = tuple(
        (j, bisect.bisect_left(_BOUNDS_MS, durations[j])) for j in range(max(2, state.level + 1), level + 1)
    )
    return new_state, Progress(state.level, level, converted, tuple(entry_days))


def _live(entry: EntryDay, horizon: int, cleared: bool) -> dict[int, int]:
    """A copy of a day's slots without those that left the window (none if an exclusion cleared them)."""
    if cleared:
        return {}
    if entry.day * DAY_MS >= horizon:
        # Slot times lie in their day: a day that starts inside the window keeps them all.
        return dict(entry.slots)
    return {slot: t for slot, t in entry.slots.items() if t >= horizon}


def _finished(state: FunnelState, length: int, today: int) -> bool:
    """Whether every day of the state, today's among them, reached the last step: no event can count more today.

    A day's chains count once per level, and a later day's chains start
    after its events: so its slots can serve no chain that would count.
    """
    days = state.days
    return state.level == length and bool(days) and days[-1].day == today and all(e.level == length for e in days)


def _extends_nothing(state: FunnelState, steps: tuple[int, ...], horizon: int, today: int) -> bool:
    """Sequential order: whether an event of `steps` leaves the state as it is.

    So it is when the event starts no chain (it is no step 1) and extends
    none (no day holds the slot before one of its steps), no slot leaves
    the window and no day without slots is left to drop.
    """
    if 1 in steps:
        return False
    for entry in state.days:
        slots = entry.slots
        if (not slots and entry.day != today) or any(m - 1 in slots for m in steps):
            return False
        if entry.day * DAY_MS < horizon and slots and min(slots.values()) < horizon:
            return False
    return True


def _grow_chains(
    days: list[EntryDay],
    steps: tuple[int, ...],
    today: int,
    at_ms: int,
    strict: bool,
    entry_days: list[tuple[int, int]],
) -> dict[int, int]:
    """Sequential and strict: extend each day's chains whose next step this event matches.

    A day whose level rises is raised, and each level it newly reaches goes
    to `entry_days` (day start in Unix seconds, level).  Returns, per length
    j, the duration of the chain of length j ending here with the latest e1.
    """
    starts = 1 in steps
    if starts and (not days or days[-1].day != today):
        days.append(EntryDay(today, 0))
    durations: dict[int, int] = {}
    for entry in days:
        slots = entry.slots
        # There is no slot 0: step 1 starts a chain, only in today's entry.
        grown = {m: slots[m - 1] for m in steps if m - 1 in slots}
        if starts and entry.day == today:
            grown[1] = at_ms
        if strict:
            entry.slots = grown
        for m, first in grown.items():
            if m not in durations or at_ms - first < durations[m]:
                durations[m] = at_ms - first
            if not strict and (m not in slots or first > slots[m]):
                slots[m] = first
        if grown:
            _raise(entry, max(grown), entry_days)
    return durations


def _raise(entry: EntryDay, length: int, entry_days: list[tuple[int, int]]) -> None:
    """A chain of `length` ends here with its e1 in `entry`'s day: the levels it newly reaches."""
    if length > entry.level:
        entry_days += [(entry.day * 86400, reached) for reached in range(entry.level + 1, length + 1)]
        entry.level = length


def _grow_any(
    days: list[EntryDay],
    steps: tuple[int, ...],
    today: int,
    at_ms: int,
    horizon: int,
    entry_days: list[tuple[int, int]],
) -> dict[int, int]:
    """Any order: a chain ending here is this event plus a live event of each of some other steps.

    Returns the same as `_grow_chains`.
    """
    if not steps:
        return {}
    (step,) = steps
    latest: dict[int, int] = {}
    for entry in days:
        for other, t in entry.slots.items():
            if other != step:
                latest[other] = max(t, latest.get(other, t))
    newest_first = sorted(latest.values(), reverse=True)
    if not days or days[-1].day != today:
        days.append(EntryDay(today, 0))
    for entry in days:
        # A chain whose e1 lies in this day has an event in the day: this one, or one of another step.
        if entry.day == today or any(other != step for other in entry.slots):
            low = max(entry.day * DAY_MS, horizon)
            _raise(entry, 1 + sum(t >= low for t in newest_first), entry_days)
    days[-1].slots[step] = at_ms
    return {j: at_ms - first for j, first in enumerate(newest_first, 2)}


def credit_value(level: int) -> range:
    """A visitor at `level` gains a property value: the steps j whose
    ``by_value[value][j-1]`` it adds 1 to (values are retroactive)."""
    return range(1, level + 1)


def median(counts: Sequence[int]) -> int | None:
    """The time-to-convert median of one step from its bucket counts (docs/api.md)."""
    total = sum(counts)
    running = 0
    for bound, count in zip(BUCKET_BOUNDS, counts, strict=True):
        running += count
        if total and 2 * running >= total:
            return bound
    return None
