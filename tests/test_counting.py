"""Unit tests of hiitrack.counting against hand-worked examples.

Every expected increment below was worked out by hand from the counting
semantics of docs/api.md and the row layout documented in hiitrack.counting; none
is recomputed with the code under test.  Ids are fixed byte strings (not
hashes), so the row and column keys can be read off directly.
"""

import random
import struct
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from hiitrack.counting import (
    DAY,
    HOUR,
    NAMES,
    USED_EVENT,
    USED_PROPERTY,
    USED_VALUE,
    WIDE_EVENTS,
    Visitor,
    count_batch,
    count_event,
    count_property,
    new_increments,
    series_rows,
)
from hiitrack.limits import Limits, OverLimit

A = b"A" * 16
B = b"B" * 16
P = b"P" * 16  # a property ("plan")
Q = b"Q" * 16  # another property ("country")
P1 = P + b"1" * 16  # plan = first value
P2 = P + b"2" * 16  # plan = second value
Q1 = Q + b"1" * 16

# 1_700_000_123 is 2023-11-14 22:15:23 UTC.
WHEN = 1_700_000_123
HOUR_START = 1_699_999_200  # 2023-11-14 22:00:00 UTC
DAY_START = 1_699_920_000  # 2023-11-14 00:00:00 UTC
HOUR_SHARD = struct.pack(">I", 810)  # 1_699_999_200 // 2**21
DAY_SHARD = struct.pack(">I", 50)  # 1_699_920_000 // 2**25


def stamp(when: int) -> bytes:
    return struct.pack(">Q", when)


def cells(inc) -> dict:
    """The non-zero increments as ``{(row, column): n}``."""
    return {(row, column): n for row, columns in inc.items() for column, n in columns.items() if n}


def plain(inc) -> dict:
    """The non-zero increments outside the series rows (kinds e, s, v)."""
    return {key: n for key, n in cells(inc).items() if key[0][:1] in (b"e", b"s", b"v")}


def series(inc) -> dict:
    """The non-zero increments of the hourly and daily series rows."""
    return {key: n for key, n in cells(inc).items() if key[0][:1] in (b"E", b"S")}


def event_cells(event: bytes, counters: dict[bytes, int]) -> dict:
    """``counters`` ({column: n}) as cells of the event row of `event`."""
    return {(b"e" + event, column): n for column, n in counters.items()}


def segment_cells(event: bytes, value: bytes, counters: dict[bytes, int]) -> dict:
    return {(b"s" + event + value[:16], value + column): n for column, n in counters.items()}


def series_cells(event: bytes, counters: dict[bytes, int], values: tuple[bytes, ...] = ()) -> dict:
    """The cells an event at WHEN adds to the hour and day series rows."""
    cells = {}
    for tag, shard, start in ((b"h", HOUR_SHARD, HOUR_START), (b"d", DAY_SHARD, DAY_START)):
        for column, n in counters.items():
            cells[b"E" + tag + shard + event, stamp(start) + column] = n
            for value in values:
                cells[b"S" + tag + shard + event + value[:16], stamp(start) + value + column] = n
    return cells


def visitor_after(*events: bytes) -> Visitor:
    visitor = Visitor()
    for event in events:
        count_event(visitor, event, WHEN, new_increments())
    return visitor


def test_the_fixed_time_is_what_the_constants_say():
    assert datetime.fromtimestamp(WHEN, UTC) == datetime(2023, 11, 14, 22, 15, 23, tzinfo=UTC)
    assert HOUR_START == int(datetime(2023, 11, 14, 22, tzinfo=UTC).timestamp())
    assert DAY_START == int(datetime(2023, 11, 14, tzinfo=UTC).timestamp())
    assert HOUR_START // 2**21 == 810 and DAY_START // 2**25 == 50


def test_single_event():
    visitor = Visitor()
    inc = new_increments()
    count_event(visitor, A, WHEN, inc)
    assert plain(inc) == {(b"e" + A, b"t"): 1, (b"e" + A, b"u"): 1}
    assert series(inc) == {
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"t"): 1,
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"u"): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"t"): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"u"): 1,
    }
    assert visitor.seen == {A: 1}
    assert visitor.followed.get(A, {}) == {}
    assert visitor.values == set()


def test_repeated_event_counts_path_to_itself():
    visitor = visitor_after(A)
    second = new_increments()
    count_event(visitor, A, WHEN, second)
    # Not the first A (no u); A follows A for the first time (p and q).
    assert plain(second) == {(b"e" + A, b"t"): 1, (b"e" + A, b"p" + A): 1, (b"e" + A, b"q" + A): 1}
    third = new_increments()
    count_event(visitor, A, WHEN, third)
    # A has followed A before: only the total and the path move.
    assert plain(third) == {(b"e" + A, b"t"): 1, (b"e" + A, b"p" + A): 1}
    assert series(third) == {
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"t"): 1,
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"p" + A): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"t"): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"p" + A): 1,
    }
    assert visitor.seen == {A: 3}
    assert visitor.followed[A] == {A: 2}


def test_two_repeats_add_up_to_path_one_unique_path_one():
    inc = new_increments()
    visitor = Visitor()
    count_event(visitor, A, WHEN, inc)
    count_event(visitor, A, WHEN, inc)
    assert plain(inc) == {
        (b"e" + A, b"t"): 2,
        (b"e" + A, b"u"): 1,
        (b"e" + A, b"p" + A): 1,
        (b"e" + A, b"q" + A): 1,
    }


def test_alternating_sequence_abab():
    visitor = Visitor()
    steps = []
    for event in (A, B, A, B):
        inc = new_increments()
        count_event(visitor, event, WHEN, inc)
        steps.append(plain(inc))
    assert steps == [
        # A: first A, nothing before it.
        {(b"e" + A, b"t"): 1, (b"e" + A, b"u"): 1},
        # B: first B, after A.
        {(b"e" + B, b"t"): 1, (b"e" + B, b"u"): 1, (b"e" + B, b"p" + A): 1, (b"e" + B, b"q" + A): 1},
        # A again: after A (first time) and after B (first time).
        {
            (b"e" + A, b"t"): 1,
            (b"e" + A, b"p" + A): 1,
            (b"e" + A, b"q" + A): 1,
            (b"e" + A, b"p" + B): 1,
            (b"e" + A, b"q" + B): 1,
        },
        # B again: after A (B already followed A: no q) and after B (first time).
        {(b"e" + B, b"t"): 1, (b"e" + B, b"p" + A): 1, (b"e" + B, b"p" + B): 1, (b"e" + B, b"q" + B): 1},
    ]
    assert visitor.seen == {A: 2, B: 2}
    assert visitor.followed[A] == {A: 1, B: 1}
    assert visitor.followed[B] == {A: 2, B: 1}


def test_abab_totals():
    visitor = Visitor()
    inc = new_increments()
    for event in (A, B, A, B):
        count_event(visitor, event, WHEN, inc)
    assert plain(inc) == {
        **event_cells(A, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}),
        **event_cells(B, {b"t": 2, b"u": 1, b"p" + A: 2, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}),
    }


def test_property_after_events_is_credited_retroactively():
    visitor = visitor_after(A, B, A, B)
    inc = new_increments()
    assert count_property(visitor, P1, inc) is True
    assert plain(inc) == {
        # totals += seen[E], unique_totals += 1, paths += followed, unique_paths += 1.
        **segment_cells(A, P1, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}),
        **segment_cells(B, P1, {b"t": 2, b"u": 1, b"p" + A: 2, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}),
        # One holder of plan=1 did A, one did B.
        (b"v" + P, P1 + A): 1,
        (b"v" + P, P1 + B): 1,
    }
    assert series(inc) == {}, "series are not back-filled"
    assert visitor.values == {P1}


def test_property_before_any_event_counts_only_its_holder():
    visitor = Visitor()
    inc = new_increments()
    assert count_property(visitor, P1, inc) is True
    assert cells(inc) == {(NAMES, USED_VALUE + P1): 1, (NAMES, USED_PROPERTY + P): 1}
    assert visitor.values == {P1}


def test_the_names_row_counts_the_visitors_using_each_name():
    """Against sets kept by hand: for each event the visitors who did it, for each value those who
    hold it, for each property its values' holders (tests/test_history.py erases them)."""
    rng = random.Random(7)
    names = [A, B, b"C" * 16]
    values = [P1, P2, Q1]
    states = {visitor: Visitor() for visitor in range(6)}
    did: dict[bytes, set[int]] = {event: set() for event in names}
    hold: dict[bytes, set[int]] = {value: set() for value in values}
    inc = new_increments()
    for _ in range(200):
        visitor = rng.randrange(6)
        chosen_values = rng.sample(values, rng.randrange(2))
        chosen_events = rng.sample(names, rng.randrange(3))
        count_batch(states[visitor], chosen_values, chosen_events, WHEN, inc)
        for value in chosen_values:
            hold[value].add(visitor)
        for event in chosen_events:
            did[event].add(visitor)
    expected = {(NAMES, USED_EVENT + event): len(who) for event, who in did.items() if who}
    expected |= {(NAMES, USED_VALUE + value): len(who) for value, who in hold.items() if who}
    for prop in (P, Q):
        holdings = sum(len(who) for value, who in hold.items() if value.startswith(prop))
        if holdings:
            expected[NAMES, USED_PROPERTY + prop] = holdings
    assert {key: n for key, n in cells(inc).items() if key[0] == NAMES} == expected


def test_same_value_again_changes_nothing():
    visitor = visitor_after(A, B)
    count_property(visitor, P1, new_increments())
    before = Visitor.from_bytes(visitor.to_bytes())
    inc = new_increments()
    assert count_property(visitor, P1, inc) is False
    assert cells(inc) == {}
    assert visitor == before


def test_second_value_of_a_property_adds_a_second_segment():
    visitor = visitor_after(A, A)
    first = new_increments()
    count_property(visitor, P1, first)
    assert plain(first) == {
        **segment_cells(A, P1, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1}),
        (b"v" + P, P1 + A): 1,
    }
    second = new_increments()
    assert count_property(visitor, P2, second) is True
    # P2 gets the same credit; P1 is not touched again.
    assert plain(second) == {
        **segment_cells(A, P2, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1}),
        (b"v" + P, P2 + A): 1,
    }
    assert visitor.values == {P1, P2}

    # An event now counts in both segments, live, series included.
    inc = new_increments()
    count_event(visitor, B, WHEN, inc)
    b_counters = {b"t": 1, b"u": 1, b"p" + A: 1, b"q" + A: 1}
    assert plain(inc) == {
        **event_cells(B, b_counters),
        **segment_cells(B, P1, b_counters),
        **segment_cells(B, P2, b_counters),
        (b"v" + P, P1 + B): 1,
        (b"v" + P, P2 + B): 1,
    }
    assert series(inc) == series_cells(B, b_counters, (P1, P2))


def test_event_while_holding_a_value_counts_the_holder_once():
    visitor = Visitor()
    count_property(visitor, P1, new_increments())
    inc = new_increments()
    count_event(visitor, A, WHEN, inc)
    assert plain(inc) == {
        **event_cells(A, {b"t": 1, b"u": 1}),
        **segment_cells(A, P1, {b"t": 1, b"u": 1}),
        (b"v" + P, P1 + A): 1,
    }
    assert series(inc) == {
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"t"): 1,
        (b"Eh" + HOUR_SHARD + A, stamp(HOUR_START) + b"u"): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"t"): 1,
        (b"Ed" + DAY_SHARD + A, stamp(DAY_START) + b"u"): 1,
        (b"Sh" + HOUR_SHARD + A + P, stamp(HOUR_START) + P1 + b"t"): 1,
        (b"Sh" + HOUR_SHARD + A + P, stamp(HOUR_START) + P1 + b"u"): 1,
        (b"Sd" + DAY_SHARD + A + P, stamp(DAY_START) + P1 + b"t"): 1,
        (b"Sd" + DAY_SHARD + A + P, stamp(DAY_START) + P1 + b"u"): 1,
    }
    again = new_increments()
    count_event(visitor, A, WHEN, again)
    # Still one distinct holder of plan=1 who did A: the holders row does not move.
    assert plain(again) == {
        **event_cells(A, {b"t": 1, b"p" + A: 1, b"q" + A: 1}),
        **segment_cells(A, P1, {b"t": 1, b"p" + A: 1, b"q" + A: 1}),
    }


def test_batch_applies_properties_first_then_events_in_order():
    visitor = visitor_after(A)
    inc = new_increments()
    count_batch(visitor, [P1, Q1], [B, A, B], WHEN, inc)
    # Properties first: P1 and Q1 are credited with the earlier A.  Then
    #   B (first B, after A):            t u pA qA
    #   A (second A, after A and B):     t pA qA pB qB
    #   B (second B; B already after A): t pA pB qB
    a_live = {b"t": 1, b"p" + A: 1, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}
    b_live = {b"t": 2, b"u": 1, b"p" + A: 2, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}
    a_segment = {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1, b"p" + B: 1, b"q" + B: 1}
    assert plain(inc) == {
        **event_cells(A, a_live),
        **event_cells(B, b_live),
        **segment_cells(A, P1, a_segment),
        **segment_cells(A, Q1, a_segment),
        **segment_cells(B, P1, b_live),
        **segment_cells(B, Q1, b_live),
        (b"v" + P, P1 + A): 1,
        (b"v" + P, P1 + B): 1,
        (b"v" + Q, Q1 + A): 1,
        (b"v" + Q, Q1 + B): 1,
    }
    # The series only see the three live events, for both values.
    assert series(inc) == {**series_cells(A, a_live, (P1, Q1)), **series_cells(B, b_live, (P1, Q1))}
    assert visitor.seen == {A: 2, B: 2}
    assert visitor.followed[A] == {A: 1, B: 1}
    assert visitor.followed[B] == {A: 2, B: 1}
    assert visitor.values == {P1, Q1}


def test_batch_with_a_value_already_held_and_a_repeated_value():
    visitor = Visitor()
    count_property(visitor, P1, new_increments())
    inc = new_increments()
    count_batch(visitor, [P1, P1], [A, A], WHEN, inc)
    assert plain(inc) == {
        **event_cells(A, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1}),
        **segment_cells(A, P1, {b"t": 2, b"u": 1, b"p" + A: 1, b"q" + A: 1}),
        (b"v" + P, P1 + A): 1,
    }


def test_visitor_round_trip():
    visitor = visitor_after(A, B, A, B, B)
    count_property(visitor, P2, new_increments())
    count_property(visitor, Q1, new_increments())
    count_property(visitor, P1, new_increments())
    restored = Visitor.from_bytes(visitor.to_bytes())
    assert restored.seen == {A: 2, B: 3}
    assert restored.followed[A] == {A: 1, B: 1}
    assert restored.followed[B] == {A: 3, B: 2}
    assert restored.values == {P1, P2, Q1}
    assert restored == visitor
    # The restored state counts the next event exactly as the original does.
    original, again = new_increments(), new_increments()
    count_event(visitor, A, WHEN, original)
    count_event(restored, A, WHEN, again)
    assert original == again
    assert Visitor.from_bytes(Visitor().to_bytes()) == Visitor()


def events_in_order(count: int) -> list[bytes]:
    return [bytes([n]) * 16 for n in range(count)]


def test_a_state_of_more_events_than_wide_events_is_compact_and_exactly_the_documented_layout():
    ids = events_in_order(WIDE_EVENTS + 1)
    visitor = visitor_after(*ids)
    visitor.hits, visitor.first_ms, visitor.last_ms = 6, 1_700_000_000_000, 1_700_000_000_500
    visitor.last_event_ms = 1_700_000_000_400
    count_property(visitor, P1, new_increments())
    # Each event once, in order: event k follows the k before it, each once.
    places = [place for k in range(len(ids)) for place in range(k)]
    assert visitor.to_bytes() == b"".join(
        [
            struct.pack("<BH", 1, len(ids)),
            *ids,
            struct.pack(f"<{len(ids)}I", *[1] * len(ids)),
            struct.pack(f"<{len(ids)}H", *range(len(ids))),
            struct.pack(f"<{len(places)}H", *places),
            struct.pack(f"<{len(places)}I", *[1] * len(places)),
            struct.pack("<H", 1),
            P1,
            struct.pack("<QQQQ", 6, 1_700_000_000_000, 1_700_000_000_500, 1_700_000_000_400),
        ]
    )
    assert Visitor.from_bytes(visitor.to_bytes()) == visitor
    # A state written before the latest event's time was kept: every hit had moved the bound.
    older = Visitor.from_bytes(visitor.to_bytes()[:-8])
    assert older.last_event_ms == older.last_ms == 1_700_000_000_500
    assert replace(older, last_event_ms=visitor.last_event_ms) == visitor


def test_a_state_of_a_few_events_keeps_the_wide_layout_that_older_states_have():
    visitor = visitor_after(A, B, A)
    count = struct.Struct(">Q").pack
    assert visitor.to_bytes() == b"".join(
        # A done twice, the second time after A and B; B done once, after A.
        [count(2), A, count(2), count(2), A, count(1), B, count(1), B, count(1), count(1), A, count(1)]
        + [count(0), struct.pack(">QQQ", 0, 0, 0), count(0)]
    )
    visitor.hits, visitor.first_ms, visitor.last_ms, visitor.last_event_ms = 3, 1_000, 3_000, 2_000
    assert Visitor.from_bytes(visitor.to_bytes()) == visitor
    # Written before the latest event's time was kept, or before the history: as every hit moved it.
    older = Visitor.from_bytes(visitor.to_bytes()[:-8])
    assert (older.hits, older.first_ms, older.last_ms, older.last_event_ms) == (3, 1_000, 3_000, 3_000)
    before_history = Visitor.from_bytes(visitor.to_bytes()[:-32])
    assert before_history == replace(visitor, hits=0, first_ms=0, last_ms=0, last_event_ms=0)


def test_the_compact_state_is_a_third_of_the_wide_one_and_both_read_back():
    # 8 events, then each again after all 8: 64 pairs.
    ids = events_in_order(8)
    visitor = visitor_after(*ids, *ids)
    assert len(visitor.to_bytes()) == 597
    # States written before the compact layout are wide whatever their size, and still read.
    wide = visitor._wide_bytes()
    assert len(wide) == 1840
    assert Visitor.from_bytes(wide) == visitor


def test_a_count_too_large_for_the_compact_state_keeps_the_wide_layout():
    visitor = visitor_after(*events_in_order(WIDE_EVENTS + 1))
    visitor.seen[A] = 2**32
    visitor.followed[A] = {}
    assert visitor.to_bytes()[0] == 0
    assert Visitor.from_bytes(visitor.to_bytes()) == visitor


@pytest.mark.parametrize("events", range(WIDE_EVENTS + 4))
def test_every_state_reads_back_as_it_was_written(events):
    visitor = visitor_after(*events_in_order(events), *events_in_order(events)[::2])
    for value in (P1, Q1):
        count_property(visitor, value, new_increments())
    visitor.hits, visitor.first_ms, visitor.last_ms, visitor.last_event_ms = 2**40, 2**41, 2**42, 2**42 - 1
    assert Visitor.from_bytes(visitor.to_bytes()) == visitor


def test_series_keys_at_fixed_times():
    # 22:15:23, 23:00:00 the same day, and 00:00:05 the next day.
    times = {
        WHEN: (HOUR_START, DAY_START),
        HOUR_START + 3600: (HOUR_START + 3600, DAY_START),
        DAY_START + 86400 + 5: (DAY_START + 86400, DAY_START + 86400),
    }
    for when, (hour, day) in times.items():
        visitor = Visitor()
        count_property(visitor, P1, new_increments())
        inc = new_increments()
        count_event(visitor, A, when, inc)
        hour_shard, day_shard = struct.pack(">I", hour // 2**21), struct.pack(">I", day // 2**25)
        assert hour_shard == HOUR_SHARD and day_shard == DAY_SHARD  # all in the same shards
        assert series(inc) == {
            (b"Eh" + hour_shard + A, stamp(hour) + b"t"): 1,
            (b"Eh" + hour_shard + A, stamp(hour) + b"u"): 1,
            (b"Ed" + day_shard + A, stamp(day) + b"t"): 1,
            (b"Ed" + day_shard + A, stamp(day) + b"u"): 1,
            (b"Sh" + hour_shard + A + P, stamp(hour) + P1 + b"t"): 1,
            (b"Sh" + hour_shard + A + P, stamp(hour) + P1 + b"u"): 1,
            (b"Sd" + day_shard + A + P, stamp(day) + P1 + b"t"): 1,
            (b"Sd" + day_shard + A + P, stamp(day) + P1 + b"u"): 1,
        }
        for row, column in series(inc):
            bucket = datetime.fromtimestamp(struct.unpack(">Q", column[:8])[0], UTC)
            assert bucket.minute == bucket.second == 0
            if row[1:2] == b"d":
                assert bucket.hour == 0
        # The report side finds the rows these cells went to.
        assert b"Eh" + hour_shard + A in series_rows(A, None, HOUR, when - 7200, when)
        assert b"Sd" + day_shard + A + P in series_rows(A, P, DAY, when - 86400 * 3, when)


def test_series_rows_span_shards():
    # 2**21 seconds is one hourly shard: a range across its boundary reads two rows.
    boundary = 811 * 2**21
    assert series_rows(A, None, HOUR, boundary - 10, boundary + 10) == [
        b"Eh" + struct.pack(">I", 810) + A,
        b"Eh" + struct.pack(">I", 811) + A,
    ]
    assert series_rows(A, P, DAY, WHEN, WHEN) == [b"Sd" + DAY_SHARD + A + P]
    assert HOUR.start_of(WHEN) == HOUR_START and DAY.start_of(WHEN) == DAY_START


def _counted(visitor: Visitor, values: list[bytes], events: list[bytes], limits: Limits) -> str | None:
    """The cap `count_batch` reports, or None."""
    try:
        count_batch(visitor, values, events, WHEN, new_increments(), limits)
    except OverLimit as error:
        return str(error.extra["limit"])
    return None


def test_batch_caps_are_checked_exactly_at_their_values():
    # A first event of a fresh visitor touches 7 cells (t and u in the event
    # row and its two series rows, its user in the names row); holding a
    # value, 6 more in the segment rows, one in the holders row and the
    # value's and its property's holders in the names row: 16.
    assert _counted(Visitor(), [P1], [A], Limits(hit_cells=16)) is None
    assert _counted(Visitor(), [P1], [A], Limits(hit_cells=15)) == "hit-cells"
    assert _counted(Visitor(), [P1, P2], [A], Limits(visitor_values=2)) is None
    assert _counted(Visitor(), [P1, P2, Q1], [], Limits(visitor_values=2)) == "visitor-values"
    assert _counted(visitor_after(A), [], [B, A, B], Limits(visitor_events=2)) is None
    assert _counted(visitor_after(A, B), [], [b"C" * 16], Limits(visitor_events=2)) == "visitor-events"


def test_a_capped_batch_stops_counting_at_the_action_that_passes_the_cap():
    inc = new_increments()
    events = [bytes([i]) * 16 for i in range(50)]
    try:
        count_batch(Visitor(), [], events, WHEN, inc, Limits(hit_cells=100))
    except OverLimit:
        pass
    # Each event k adds 3 rows x (2 + 2k) cells and its user in the names row: 7, 13, 19, 25, 31,
    # 37 passes 100 at the sixth.
    assert len(cells(inc)) == 7 + 13 + 19 + 25 + 31 + 37
