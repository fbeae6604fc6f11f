"""Tests of hiitrack.funnels: the exact-funnel engine against the contract.

Hypothesis feeds random histories (small alphabets so steps repeat, any-of
steps, exclusions, all three orders, short windows, equal times, values
gained before and after) through the engine event by event, the state
round-tripped through bytes each time, and checks every number against the
brute-force model of tests/funnel_model.py.  Hand-worked examples from
docs/api.md and the validation rules follow.
"""

from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hiitrack.funnels import (
    BUCKET_BOUNDS,
    DEFAULT_WINDOW,
    FunnelDefinition,
    FunnelState,
    InvalidFunnel,
    Progress,
    advance,
    credit_value,
    median,
)
from tests.funnel_model import BOUNDS, Funnel, model_report

DAY_MS = 86_400_000
# 2023-11-14 23:59:50 UTC: the first day boundary comes 10 s in.
T0 = 1_699_919_990_000
STEP_NAMES = "abcd"
OTHER_NAMES = "xy"
GAPS_MS = [0, 0, 1, 400, 1000, 2000, 5000, 60_000, 3_600_000, 43_200_000, 86_400_000]
WINDOWS = [1, 2, 5, 60, 3600, 86400, DEFAULT_WINDOW]


def definition(funnel: Funnel) -> FunnelDefinition:
    return FunnelDefinition(
        steps=tuple(tuple(name.encode() for name in step) for step in funnel.steps),
        order=funnel.order,
        window=funnel.window,
        exclude=tuple(name.encode() for name in funnel.exclude),
    )


@dataclass
class Counters:
    """A funnel's counters as the write path would keep them from `Progress`."""

    k: int
    visitors: list[int] = field(init=False)
    buckets: list[list[int]] = field(init=False)
    by_value: dict[str, list[int]] = field(default_factory=dict)
    days: dict[int, list[int]] = field(default_factory=dict)
    index: dict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    """The drop-off index: level -> visitors."""

    def __post_init__(self) -> None:
        self.visitors = [0] * self.k
        self.buckets = [[0] * len(BUCKET_BOUNDS) for _ in range(self.k)]

    def add(self, visitor: str, held: set[str], progress: Progress) -> None:
        for j in progress.reached:
            self.visitors[j - 1] += 1
            for value in held:
                self.by_value.setdefault(value, [0] * self.k)[j - 1] += 1
        for j, bucket in progress.converted:
            self.buckets[j - 1][bucket] += 1
        for day, level in progress.entry_days:
            self.days.setdefault(day, [0] * self.k)[level - 1] += 1
        if progress.level != progress.previous_level:
            if progress.previous_level:
                self.index[progress.previous_level].remove(visitor)
            self.index[progress.level].add(visitor)

    def gain(self, value: str, level: int) -> None:
        for j in credit_value(level):
            self.by_value.setdefault(value, [0] * self.k)[j - 1] += 1

    def reached(self, step: int) -> list[str]:
        return sorted(v for level, vs in self.index.items() if level >= step for v in vs)

    def dropped(self, step: int) -> list[str]:
        return sorted(self.index[step - 1])


Action = tuple[str, int, str]
"""("event", gap in ms, name) or ("value", 0, value)."""


def run_engine(funnel: FunnelDefinition, streams: dict[str, list[Action]]) -> Counters:
    """Each visitor's actions through the engine, as the write path would do them."""
    counters = Counters(len(funnel.steps))
    for visitor, actions in streams.items():
        state, held, now = FunnelState(), set[str](), T0
        for kind, gap, name in actions:
            if kind == "value":
                if name not in held:
                    held.add(name)
                    counters.gain(name, state.level)
                continue
            now += gap
            event = name.encode()
            if not funnel.touched_by(event):
                _, skipped = advance(state, funnel, event, now)
                assert skipped == Progress(state.level, state.level)
                continue
            before = state.to_bytes()
            stored = FunnelState.from_bytes(before)
            new_state, progress = advance(stored, funnel, event, now)
            # Nothing changed: the very same state comes back (the write path then writes nothing).
            assert (new_state is stored) == (new_state == FunnelState.from_bytes(before))
            assert FunnelState.from_bytes(new_state.to_bytes()) == new_state
            assert_bounded(new_state, funnel, now)
            assert state.to_bytes() == before
            state = new_state
            counters.add(visitor, held, progress)
    return counters


def assert_bounded(state: FunnelState, funnel: FunnelDefinition, now: int) -> None:
    assert len(state.days) <= funnel.window * 1000 // DAY_MS + 2
    assert all(len(entry.slots) <= len(funnel.steps) for entry in state.days)
    assert all(now - funnel.window * 1000 <= t <= now for entry in state.days for t in entry.slots.values())


def histories(streams: dict[str, list[Action]]) -> tuple[dict[str, list[tuple[int, str]]], dict[str, set[str]]]:
    events: dict[str, list[tuple[int, str]]] = {}
    values: dict[str, set[str]] = {}
    for visitor, actions in streams.items():
        now = T0
        events[visitor], values[visitor] = [], set()
        for kind, gap, name in actions:
            if kind == "value":
                values[visitor].add(name)
            else:
                now += gap
                events[visitor].append((now, name))
    return events, values


@st.composite
def funnels(draw: st.DrawFn) -> Funnel:
    order = draw(st.sampled_from(["sequential", "strict", "any"]))
    k = draw(st.integers(2, 4))
    steps: tuple[tuple[str, ...], ...]
    if order == "any":
        steps = tuple((name,) for name in draw(st.permutations(STEP_NAMES))[:k])
    else:
        one_step = st.lists(st.sampled_from(STEP_NAMES), min_size=1, max_size=2, unique=True)
        steps = tuple(tuple(step) for step in draw(st.lists(one_step, min_size=k, max_size=k)))
    free = sorted(set(STEP_NAMES + OTHER_NAMES) - {name for step in steps for name in step})
    exclude = tuple(draw(st.lists(st.sampled_from(free), max_size=2, unique=True)))
    return Funnel(steps, order, draw(st.sampled_from(WINDOWS)), exclude)


@st.composite
def streams(draw: st.DrawFn, funnel: Funnel) -> dict[str, list[Action]]:
    """A few visitors' actions; events mostly of the funnel's steps, so that chains grow."""
    step_names = sorted({name for step in funnel.steps for name in step})
    names = st.one_of(st.sampled_from(step_names), st.sampled_from(STEP_NAMES + OTHER_NAMES))
    action = st.one_of(
        st.tuples(st.just("event"), st.sampled_from(GAPS_MS), names),
        st.tuples(st.just("event"), st.sampled_from(GAPS_MS), names),
        st.tuples(st.just("value"), st.just(0), st.sampled_from(["v1", "v2"])),
    )
    return draw(st.dictionaries(st.sampled_from(["u1", "u2", "u3"]), st.lists(action, max_size=12), min_size=1))


cases = funnels().flatmap(lambda funnel: st.tuples(st.just(funnel), streams(funnel)))


def nonzero(rows: dict) -> dict:
    return {key: row for key, row in rows.items() if any(row)}


@settings(max_examples=1000, derandomize=True, deadline=None)
@given(cases)
def test_engine_matches_model(case: tuple[Funnel, dict[str, list[Action]]]) -> None:
    funnel, streams = case
    counters = run_engine(definition(funnel), streams)
    expected = model_report(funnel, *histories(streams))
    assert counters.visitors == expected.visitors
    # A funnel never grows from one step to the next, nor does any entry day's.
    for row in [counters.visitors, *counters.days.values()]:
        assert row == sorted(row, reverse=True)
    assert [None, *counters.buckets[1:]] == expected.time_to_convert
    assert [None] + [median(b) for b in counters.buckets[1:]] == expected.medians
    assert nonzero(counters.by_value) == nonzero(expected.by_value)
    assert counters.days == expected.days
    for step in range(1, len(funnel.steps) + 1):
        assert counters.reached(step) == expected.reached(step)
        if step >= 2:
            assert counters.dropped(step) == expected.dropped(step)


def visitors_of(funnel: FunnelDefinition, history: list[tuple[int, bytes]]) -> list[int]:
    counters = Counters(len(funnel.steps))
    state = FunnelState()
    for at, event in history:
        state, progress = advance(state, funnel, event, at)
        counters.add("v", set(), progress)
    return counters.visitors


A, B, C, X = b"A", b"B", b"C", b"X"


def test_out_of_order_steps_do_not_count() -> None:
    """The issue's example: B, A, C is step 1 only of A -> B -> C (the pairwise report said 1, 0, 1)."""
    funnel = FunnelDefinition(steps=((A,), (B,), (C,)))
    assert visitors_of(funnel, [(T0, B), (T0 + 1, A), (T0 + 2, C)]) == [1, 0, 0]


def test_a_repeated_step_needs_the_event_twice() -> None:
    funnel = FunnelDefinition(steps=((A,), (A,), (B,)))
    assert visitors_of(funnel, [(T0, A), (T0 + 1, B)]) == [1, 0, 0]
    assert visitors_of(funnel, [(T0, A), (T0 + 1, A), (T0 + 2, B)]) == [1, 1, 1]


def test_window_is_inclusive_to_the_millisecond() -> None:
    funnel = FunnelDefinition(steps=((A,), (B,)), window=60)
    assert visitors_of(funnel, [(T0, A), (T0 + 60_000, B)]) == [1, 1]
    assert visitors_of(funnel, [(T0, A), (T0 + 60_001, B)]) == [1, 0]


def test_an_excluded_event_breaks_chains_in_progress_only() -> None:
    funnel = FunnelDefinition(steps=((A,), (B,)), exclude=(X,))
    assert visitors_of(funnel, [(T0, A), (T0 + 1, X), (T0 + 2, B)]) == [1, 0]
    assert visitors_of(funnel, [(T0, A), (T0 + 1, B), (T0 + 2, X)]) == [1, 1]
    assert visitors_of(funnel, [(T0, A), (T0 + 1, X), (T0 + 2, A), (T0 + 3, B)]) == [1, 1]


def test_strict_order_is_broken_by_any_other_event() -> None:
    funnel = FunnelDefinition(steps=((A,), (B,)), order="strict")
    assert funnel.touched_by(C)
    assert visitors_of(funnel, [(T0, A), (T0 + 1, C), (T0 + 2, B)]) == [1, 0]
    assert visitors_of(funnel, [(T0, A), (T0 + 1, A), (T0 + 2, B)]) == [1, 1]


def test_any_order_takes_the_steps_in_any_order() -> None:
    funnel = FunnelDefinition(steps=((A,), (B,), (C,)), order="any")
    assert visitors_of(funnel, [(T0, C), (T0 + 1, B)]) == [1, 1, 0]


def test_any_of_step() -> None:
    funnel = FunnelDefinition(steps=((A, B), (C,)))
    assert visitors_of(funnel, [(T0, B), (T0 + 1, C)]) == [1, 1]


def test_time_to_convert_takes_the_latest_start() -> None:
    """A at 0 s and at 50 s, B at 60.001 s: the chain from the second A took 10.001 s: bucket 30."""
    funnel = FunnelDefinition(steps=((A,), (B,)))
    state, _ = advance(FunnelState(), funnel, A, T0)
    state, _ = advance(state, funnel, A, T0 + 50_000)
    state, progress = advance(state, funnel, B, T0 + 60_001)
    assert progress.converted == ((2, BUCKET_BOUNDS.index(30)),)
    _, again = advance(state, funnel, B, T0 + 70_000)
    assert again == Progress(2, 2)


def test_entry_days_count_each_day_as_a_funnel() -> None:
    """A at 23:59:55 and at 00:00:01, B at 00:00:05: both days reach step 2."""
    funnel = FunnelDefinition(steps=((A,), (B,)))
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    state, first = advance(FunnelState(), funnel, A, midnight - 5000)
    state, second = advance(state, funnel, A, midnight + 1000)
    state, third = advance(state, funnel, B, midnight + 5000)
    day1, day2 = midnight // 1000 - 86400, midnight // 1000
    assert (first.entry_days, second.entry_days) == (((day1, 1),), ((day2, 1),))
    assert sorted(third.entry_days) == [(day1, 2), (day2, 2)]
    assert third.reached == range(2, 3)


def test_a_visitor_done_for_the_day_counts_nothing_more_until_the_next() -> None:
    """Every day of the state, today's among them, at the last step: the state keeps no slot and stays as it is."""
    funnel = FunnelDefinition(steps=((A,), (B,)))
    midnight = (T0 // DAY_MS + 1) * DAY_MS
    state, _ = advance(FunnelState(), funnel, A, midnight + 1000)
    state, done = advance(state, funnel, B, midnight + 2000)
    assert done.reached == range(2, 3)
    assert len(state.to_bytes()) == 3 + 9
    for event in (A, B, A):
        again, nothing = advance(state, funnel, event, midnight + 3000)
        assert again is state and nothing == Progress(2, 2)
    # A new day's chains count in its own entry day.
    state, next_day = advance(state, funnel, A, midnight + DAY_MS)
    state, _ = advance(state, funnel, B, midnight + DAY_MS + 1)
    assert next_day.entry_days == ((midnight // 1000 + 86400, 1),)
    assert [entry.level for entry in state.days] == [2]


def test_values_are_credited_with_the_level_reached() -> None:
    assert list(credit_value(0)) == []
    assert list(credit_value(3)) == [1, 2, 3]


def test_median() -> None:
    assert median([0] * 20) is None
    assert median([1, 1] + [0] * 18) == 1
    assert median([0, 1, 1] + [0] * 17) == 10
    assert median([1, 0, 0, 2] + [0] * 16) == 60


def test_state_is_small_and_round_trips() -> None:
    funnel = FunnelDefinition(steps=((A,), (B,), (C,)))
    assert FunnelState().to_bytes() == b"\0\0\0"
    state, _ = advance(FunnelState(), funnel, A, T0)
    state, _ = advance(state, funnel, B, T0 + 1234)
    data = state.to_bytes()
    assert FunnelState.from_bytes(data) == state
    assert len(data) == 3 + 9 + 2 * 4


def test_twenty_steps() -> None:
    """The longest funnel: every slot of the state in use, and bytes that still round-trip."""
    funnel = FunnelDefinition(steps=((A,),) * 20)
    state = FunnelState()
    for n in range(20):
        state, progress = advance(state, funnel, A, T0 + 1000 * n)
        assert progress.reached == range(n + 1, n + 2)
        assert FunnelState.from_bytes(state.to_bytes()) == state
    assert sorted(state.days[0].slots) == list(range(1, 21))
    assert visitors_of(funnel, [(T0 + n, A) for n in range(19)]) == [1] * 19 + [0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": ((A,),)}, "2 to 20 steps"),
        ({"steps": ((A,),) * 21}, "2 to 20 steps"),
        ({"steps": ((A,), ())}, "step 2 has 0 events"),
        ({"steps": ((A,), tuple(bytes([i]) for i in range(11)))}, "step 2 has 11 events"),
        ({"steps": ((A, A), (B,))}, "step 1 lists an event twice"),
        ({"steps": ((A,), (B,)), "order": "random"}, "order must be one of"),
        ({"steps": ((A,), (B,)), "window": 0}, "window must be"),
        ({"steps": ((A,), (B,)), "window": 31_622_401}, "window must be"),
        ({"steps": ((A,), (B,)), "exclude": tuple(bytes([i]) for i in range(11))}, "at most 10"),
        ({"steps": ((A,), (B,)), "exclude": (X, X)}, "listed twice"),
        ({"steps": ((A,), (B, C)), "exclude": (C,)}, "cannot be a step's event"),
        ({"steps": ((A,), (B, C)), "order": "any"}, "single, distinct"),
        ({"steps": ((A,), (A,)), "order": "any"}, "single, distinct"),
    ],
)
def test_invalid_definitions(kwargs: dict, message: str) -> None:
    with pytest.raises(InvalidFunnel, match=message) as raised:
        FunnelDefinition(**kwargs)
    assert isinstance(raised.value, ValueError)


def test_valid_extremes() -> None:
    FunnelDefinition(steps=((A,),) * 20, window=31_622_400, exclude=tuple(bytes([i]) for i in range(10)))
    FunnelDefinition(steps=((A,), tuple(bytes([i]) for i in range(10))), window=1)
    assert FunnelDefinition(steps=((A,), (B,))).window == DEFAULT_WINDOW == BOUNDS[16]
