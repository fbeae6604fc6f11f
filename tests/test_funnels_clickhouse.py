"""hiitrack.funnels and the brute-force model against ClickHouse's windowFunnel.

For plain sequential funnels (single, distinct steps, no exclusions) the
contract's level is what ClickHouse's ``windowFunnel(W)(t, cond1, ...)``
returns: both keep chains whose last step is at most W after the first,
bounds included.  ClickHouse runs in process through chdb.  Events of a
visitor get distinct times: ClickHouse orders equal times by its own rule,
not by arrival.  The last tests pin down where the two differ.
"""

import chdb
from hypothesis import given, settings
from hypothesis import strategies as st

from hiitrack.funnels import FunnelDefinition, FunnelState, advance
from tests.funnel_model import Funnel, model_report

T0 = 1_699_919_990_000
GAPS_MS = [1, 2, 400, 1000, 1001, 2000, 5000, 60_000, 3_600_000, 86_400_000]
WINDOWS = [1, 2, 5, 60, 3600, 86400, 1_209_600]


def clickhouse_levels(funnel: Funnel, histories: dict[str, list[tuple[int, str]]]) -> dict[str, int]:
    """Each visitor's windowFunnel level, times in ms and the window too."""
    rows = ", ".join(f"('{visitor}', {t}, '{name}')" for visitor, events in histories.items() for t, name in events)
    conditions = ", ".join(f"e = '{name}'" for (name,) in funnel.steps)
    answer = chdb.query(
        f"SELECT v, windowFunnel({funnel.window * 1000})(t, {conditions}) "
        f"FROM values('v String, t UInt64, e String', {rows}) GROUP BY v",
        "CSV",
    )
    levels = {visitor: 0 for visitor in histories}
    for line in str(answer).splitlines():
        visitor, level = line.split(",")
        levels[visitor.strip('"')] = int(level)
    return levels


def engine_level(funnel: Funnel, events: list[tuple[int, str]]) -> int:
    definition = FunnelDefinition(tuple((name.encode(),) for (name,) in funnel.steps), window=funnel.window)
    state = FunnelState()
    for t, name in events:
        state, _ = advance(state, definition, name.encode(), t)
    return state.level


@st.composite
def cases(draw: st.DrawFn) -> tuple[Funnel, dict[str, list[tuple[int, str]]]]:
    names = draw(st.permutations("abcd"))[: draw(st.integers(2, 4))]
    funnel = Funnel(tuple((name,) for name in names), "sequential", draw(st.sampled_from(WINDOWS)))
    event = st.tuples(st.sampled_from(GAPS_MS), st.sampled_from([*names, *names, *"abcdx"]))
    histories = {}
    for number in range(draw(st.integers(1, 50))):
        now = T0
        events = []
        for gap, name in draw(st.lists(event, min_size=1, max_size=12)):
            now += gap
            events.append((now, name))
        histories[f"u{number}"] = events
    return funnel, histories


@settings(max_examples=100, derandomize=True, deadline=None)
@given(cases())
def test_sequential_levels_match_window_funnel(case: tuple[Funnel, dict[str, list[tuple[int, str]]]]) -> None:
    funnel, histories = case
    expected = clickhouse_levels(funnel, histories)
    assert model_report(funnel, histories, {}).levels == expected
    assert {visitor: engine_level(funnel, events) for visitor, events in histories.items()} == expected


def test_window_funnel_lets_one_event_fill_a_repeated_step() -> None:
    """A difference: for A -> A, ClickHouse counts a single A twice; docs/api.md needs two A."""
    funnel = Funnel((("a",), ("a",)), "sequential", 60)
    histories = {"u": [(T0, "a")]}
    assert clickhouse_levels(funnel, histories) == {"u": 2}
    assert model_report(funnel, histories, {}).levels == {"u": 1}


def test_window_funnel_orders_equal_times_its_own_way() -> None:
    """A difference: B then A at the same millisecond is not A -> B in history order."""
    funnel = Funnel((("a",), ("b",)), "sequential", 60)
    histories = {"u": [(T0, "b"), (T0, "a")]}
    assert model_report(funnel, histories, {}).levels == {"u": 1}
    assert clickhouse_levels(funnel, histories) == {"u": 2}
