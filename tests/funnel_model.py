"""A brute-force model of docs/api.md's exact funnels, for tests/test_funnels.py.

Written from the contract's words and sharing nothing with hiitrack.funnels:
it lists every chain of every visitor (every choice of events, checked
against the definition of a chain) and derives each number from that list.
Slow and simple on purpose: histories of a dozen events at most.

Times are milliseconds, as in hiitrack.funnels; the window is in seconds.
"""

from collections import defaultdict
from dataclasses import dataclass
from itertools import combinations

__all__ = ["BOUNDS", "Funnel", "Report", "chains", "model_report"]

BOUNDS = [1, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 43200, 86400]
BOUNDS += [172800, 345600, 604800, 1209600, 2592000, 7776000, 31622400]

Event = tuple[int, str]
"""(time in ms, event name), in history order."""


@dataclass(frozen=True)
class Funnel:
    steps: tuple[tuple[str, ...], ...]
    order: str
    window: int
    exclude: tuple[str, ...] = ()


def _is_chain(funnel: Funnel, history: list[Event], picks: tuple[int, ...]) -> bool:
    """Whether the events at positions `picks` (ascending) form a chain."""
    times = [history[i][0] for i in picks]
    names = [history[i][1] for i in picks]
    if any(history[i][1] in funnel.exclude for i in range(picks[0] + 1, picks[-1])):
        return False
    if funnel.order == "any":
        matched = [m for name in names for m, step in enumerate(funnel.steps) if name in step]
        return len(matched) == len(picks) == len(set(matched)) and max(times) - min(times) <= funnel.window * 1000
    if times[-1] - times[0] > funnel.window * 1000:
        return False
    if not all(name in funnel.steps[m] for m, name in enumerate(names)):
        return False
    return funnel.order != "strict" or all(b == a + 1 for a, b in zip(picks, picks[1:], strict=False))


def chains(funnel: Funnel, history: list[Event]) -> list[tuple[int, ...]]:
    """Every chain of the history, as positions in history order."""
    return [
        picks
        for length in range(1, len(funnel.steps) + 1)
        for picks in combinations(range(len(history)), length)
        if _is_chain(funnel, history, picks)
    ]


def _bucket(duration_ms: int) -> int:
    return next(i for i, bound in enumerate(BOUNDS) if bound * 1000 >= duration_ms)


def _median(durations: list[int]) -> int | None:
    for bound in BOUNDS:
        if durations and 2 * sum(d <= bound * 1000 for d in durations) >= len(durations):
            return bound
    return None


@dataclass
class Report:
    visitors: list[int]
    time_to_convert: list[list[int] | None]
    medians: list[int | None]
    by_value: dict[str, list[int]]
    days: dict[int, list[int]]
    levels: dict[str, int]

    def reached(self, step: int) -> list[str]:
        return sorted(v for v, level in self.levels.items() if level >= step)

    def dropped(self, step: int) -> list[str]:
        return sorted(v for v, level in self.levels.items() if level == step - 1)


def model_report(funnel: Funnel, histories: dict[str, list[Event]], values: dict[str, set[str]]) -> Report:
    """Every number of the conversion report, for these visitors' histories and values."""
    k = len(funnel.steps)
    levels: dict[str, int] = {}
    durations: list[list[int]] = [[] for _ in range(k)]
    days: dict[int, list[int]] = defaultdict(lambda: [0] * k)
    for visitor, history in histories.items():
        found = chains(funnel, history)
        levels[visitor] = max((len(c) for c in found), default=0)
        for j in range(2, levels[visitor] + 1):
            # The first event after which the level is >= j: the earliest end of a chain of length j.
            end = min(c[-1] for c in found if len(c) == j)
            latest_first = max(history[c[0]][0] for c in found if len(c) == j and c[-1] == end)
            durations[j - 1].append(history[end][0] - latest_first)
        for day, length in {(history[c[0]][0] // 86_400_000 * 86400, len(c)) for c in found}:
            days[day][length - 1] += 1
    by_value: dict[str, list[int]] = defaultdict(lambda: [0] * k)
    for visitor, held in values.items():
        for value in held:
            by_value[value] = [n + (levels.get(visitor, 0) >= j) for j, n in enumerate(by_value[value], 1)]
    buckets: list[list[int] | None] = [
        [sum(_bucket(d) == i for d in ds) for i in range(len(BOUNDS))] for ds in durations
    ]
    medians = [_median(ds) for ds in durations]
    return Report(
        visitors=[sum(level >= j for level in levels.values()) for j in range(1, k + 1)],
        time_to_convert=[None, *buckets[1:]],
        medians=[None, *medians[1:]],
        by_value=dict(by_value),
        days=dict(days),
        levels=levels,
    )
