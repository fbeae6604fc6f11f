"""A brute-force model of docs/api.md's counting semantics, for the HTTP tests.

The model keeps only what each visitor did, in order (events with their
time and the property values held at that moment, and the set of values
the visitor has), and computes every report from those full histories
straight from the definitions in docs/api.md: no incremental counters.  It shares
nothing with hiitrack.counting; only the id helpers (hiitrack.ids) are used,
to name events, properties and values as the wire does.  Used by
tests/test_model.py and tests/test_concurrency.py.
"""

import json
from collections import defaultdict
from dataclasses import dataclass, field

from hiitrack.ids import encode_id, event_id, property_id, value_id

__all__ = ["Model", "canonical", "eid", "pid", "vid"]

Value = tuple[str, str]
"""A property value as (property name, canonical JSON)."""


def canonical(content: object) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def eid(name: str) -> str:
    return encode_id(event_id(name))


def pid(name: str) -> str:
    return encode_id(property_id(name))


def vid(prop: str, content: object) -> str:
    return encode_id(value_id(property_id(prop), content))


@dataclass(frozen=True)
class Hit:
    event: str
    when: int
    held: frozenset[Value]


@dataclass
class History:
    hits: list[Hit] = field(default_factory=list)
    values: set[Value] = field(default_factory=set)

    @property
    def events(self) -> list[str]:
        return [hit.event for hit in self.hits]


def _follows(seq: list[str], i: int, before: str) -> bool:
    """Whether the i-th event of `seq` happened while `before` had already happened."""
    return before in seq[:i]


def _contribution(seq: list[str], i: int) -> dict[tuple[str, str | None], int]:
    """What the i-th event of a visitor counts, straight from docs/api.md's steps 1 and 2.

    Keys: ("total", None), ("unique_total", None), ("path", X), ("unique_path", X).
    """
    event = seq[i]
    counts = {("total", None): 1}
    if event not in seq[:i]:
        counts["unique_total", None] = 1
    for before in set(seq[:i]):
        counts["path", before] = 1
        # The first time this visitor's `event` follows `before`?
        if not any(seq[j] == event and _follows(seq, j, before) for j in range(i)):
            counts["unique_path", before] = 1
    return counts


def _whole(seq: list[str], event: str) -> dict[tuple[str, str | None], int]:
    """One visitor's counters of `event` over the whole history, by definition."""
    counts: dict[tuple[str, str | None], int] = {}
    n = seq.count(event)
    if n:
        counts["total", None] = n
        counts["unique_total", None] = 1
    for before in set(seq):
        followed = sum(1 for i, e in enumerate(seq) if e == event and _follows(seq, i, before))
        if followed:
            counts["path", before] = followed
            counts["unique_path", before] = 1
    return counts


def _shape(counts: dict[tuple[str, str | None], object], zero: object) -> dict[str, object]:
    """Counters keyed as above into the report's keys; paths keep non-zero entries."""
    answer: dict[str, object] = {
        "total": counts.get(("total", None), zero),
        "unique_total": counts.get(("unique_total", None), zero),
        "path": {},
        "unique_path": {},
    }
    for (key, before), n in counts.items():
        if before is not None and n:
            answer[key][eid(before)] = n
    return answer


PLURAL = {"total": "totals", "unique_total": "unique_totals", "path": "paths", "unique_path": "unique_paths"}


class Model:
    def __init__(self) -> None:
        self.visitors: dict[str, History] = defaultdict(History)
        self.contents: dict[Value, object] = {}
        self.event_names: list[str] = []
        self.property_names: list[str] = []

    # What visitors do --------------------------------------------------

    def event(self, visitor: str, name: str, when: int) -> None:
        if name not in self.event_names:
            self.event_names.append(name)
        history = self.visitors[visitor]
        history.hits.append(Hit(name, when, frozenset(history.values)))

    def property(self, visitor: str, name: str, content: object) -> None:
        if name not in self.property_names:
            self.property_names.append(name)
        value = (name, canonical(content))
        self.contents.setdefault(value, content)
        self.visitors[visitor].values.add(value)

    def batch(self, visitor: str, events: list[str], properties: list[tuple[str, object]], when: int) -> None:
        for name, content in properties:
            self.property(visitor, name, content)
        for name in events:
            self.event(visitor, name, when)

    # Helpers -------------------------------------------------------------

    def values_of(self, prop: str) -> list[Value]:
        return [value for value in self.contents if value[0] == prop]

    def _vid(self, value: Value) -> str:
        return vid(value[0], self.contents[value])

    def _properties(self) -> dict[str, str]:
        return {pid(name): name for name in self.property_names}

    def _counts(self, event: str, value: Value | None = None) -> dict:
        """Counters of `event` summed over visitors (holding `value`, if given)."""
        total: dict = defaultdict(int)
        for history in self.visitors.values():
            if value is None or value in history.values:
                for key, n in _whole(history.events, event).items():
                    total[key] += n
        return total

    def _series_counts(self, event: str, value: Value | None, interval: int, start: int, finish: int) -> dict:
        """Counters of `event` per bucket; a hit counts for a value only if held then."""
        first = start - start % interval
        buckets: dict = defaultdict(lambda: defaultdict(int))
        for history in self.visitors.values():
            seq = history.events
            for i, hit in enumerate(history.hits):
                bucket = hit.when - hit.when % interval
                if hit.event != event or not first <= bucket <= finish:
                    continue
                if value is not None and value not in hit.held:
                    continue
                for key, n in _contribution(seq, i).items():
                    buckets[key][bucket] += n
        return {key: sorted([b, n] for b, n in by_bucket.items() if n) for key, by_bucket in buckets.items()}

    # Reports -------------------------------------------------------------

    def event_report(self, name: str, prop: str | None = None, series: tuple[int, int, int] | None = None) -> dict:
        """GET /event/{name}; `series` is (interval seconds, start, finish)."""
        answer: dict[str, object] = {"id": eid(name), "name": name}

        def counts(value: Value | None) -> dict:
            if series is None:
                return _shape(self._counts(name, value), 0)
            return _shape(self._series_counts(name, value, *series), [])

        if prop is None:
            answer.update(counts(None))
        else:
            values = self.values_of(prop)
            answer["values"] = {self._vid(value): self.contents[value] for value in values}
            per_value = {self._vid(value): counts(value) for value in values}
            for key, plural in PLURAL.items():
                answer[plural] = {v: c[key] for v, c in per_value.items()}
        answer["properties"] = self._properties()
        return answer

    def property_report(self, prop: str) -> dict:
        values = {}
        for value in self.values_of(prop):
            holders = [h for h in self.visitors.values() if value in h.values]
            total = {}
            for name in self.event_names:
                n = sum(1 for h in holders if name in h.events)
                if n:
                    total[eid(name)] = n
            values[self._vid(value)] = {"value": self.contents[value], "total": total}
        return {
            "id": pid(prop),
            "name": prop,
            "values": values,
            "events": {eid(name): name for name in self.event_names},
        }

    def funnel_report(self, steps: list[str], prop: str | None = None) -> dict:
        ids = [eid(step) for step in steps]
        distinct = list(dict.fromkeys(steps))
        answer: dict[str, object] = {"event_ids": ids}

        def funnel(shaped: dict[str, dict], total: str, path: str) -> list:
            rows = [[ids[0], shaped[steps[0]][total]]]
            for before, step in zip(steps, steps[1:], strict=False):
                rows.append([eid(step), shaped[step][path].get(eid(before), 0)])
            return rows

        if prop is None:
            shaped = {step: _shape(self._counts(step), 0) for step in distinct}
            for key in PLURAL:
                answer[key] = {eid(step): shaped[step][key] for step in distinct}
            answer["funnel"] = funnel(shaped, "total", "path")
            answer["unique_funnel"] = funnel(shaped, "unique_total", "unique_path")
            return answer
        values = self.values_of(prop)
        answer["property"] = {
            "name": prop,
            "id": pid(prop),
            "values": {self._vid(value): self.contents[value] for value in values},
        }
        per_value = {value: {step: _shape(self._counts(step, value), 0) for step in distinct} for value in values}
        for key, plural in PLURAL.items():
            answer[plural] = {
                eid(step): {self._vid(value): per_value[value][step][key] for value in values} for step in distinct
            }
        answer["funnels"] = {self._vid(value): funnel(per_value[value], "total", "path") for value in values}
        answer["unique_funnels"] = {
            self._vid(value): funnel(per_value[value], "unique_total", "unique_path") for value in values
        }
        return answer
