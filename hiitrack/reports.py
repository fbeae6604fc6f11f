"""The read path: event, property and funnel reports from counter rows.

Every report is a few row slices of pre-aggregated counters (see the row
layout in hiitrack.counting), so its cost follows the size of the answer,
never the number of events recorded.  Ids in the answers are wire ids.
Tests: tests/test_http_reports.py, tests/test_model.py.
"""

import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from hiitrack.catalog import Catalog
from hiitrack.counting import (
    PATH,
    TOTAL,
    UNIQUE_TOTAL,
    VALUE_ID_SIZE,
    Interval,
    event_row,
    holders_row,
    segment_row,
    series_rows,
)
from hiitrack.errors import NotFound
from hiitrack.ids import encode_id, property_id
from hiitrack.store import Store

__all__ = ["Reports", "Series"]

STAMP = struct.Struct(">Q")
PLURAL = {"total": "totals", "unique_total": "unique_totals", "path": "paths", "unique_path": "unique_paths"}


@dataclass(frozen=True)
class Series:
    """A time-bounded report: buckets of `interval` from `start` to `finish`."""

    interval: Interval
    start: int
    finish: int

    def clamped(self, earliest: int, latest: int) -> "Series":
        return Series(self.interval, max(self.start, earliest), min(self.finish, latest))


class _Counts:
    """The four counters of an event (or of an event for one value)."""

    def __init__(self) -> None:
        self.total: object = 0
        self.unique_total: object = 0
        self.path: dict[str, object] = {}
        self.unique_path: dict[str, object] = {}

    def add(self, column: bytes, n: int, stamp: int | None) -> None:
        tag, earlier = column[:1], column[1:]
        if stamp is None:
            if tag == TOTAL:
                self.total = n
            elif tag == UNIQUE_TOTAL:
                self.unique_total = n
            else:
                self._paths(tag)[encode_id(earlier)] = n
        elif tag == TOTAL:
            self._series("total").append([stamp, n])
        elif tag == UNIQUE_TOTAL:
            self._series("unique_total").append([stamp, n])
        else:
            self._paths(tag).setdefault(encode_id(earlier), []).append([stamp, n])

    def _paths(self, tag: bytes) -> dict[str, object]:
        return self.path if tag == PATH else self.unique_path

    def _series(self, name: str) -> list:
        if not isinstance(getattr(self, name), list):
            setattr(self, name, [])
        return getattr(self, name)

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "unique_total": self.unique_total,
            "path": self.path,
            "unique_path": self.unique_path,
        }


class Reports:
    def __init__(self, store: Store, catalog: Catalog) -> None:
        self._store = store
        self._catalog = catalog

    async def _rows(self, scope: str, rows: list[bytes], series: Series | None) -> list[dict[bytes, int]]:
        if series is None:
            return await self._store.read_rows(scope, rows)
        first = series.interval.start_of(series.start)
        return await self._store.read_rows(
            scope, rows, STAMP.pack(first), STAMP.pack(max(first, series.finish + 1))
        )

    async def _event_counts(
        self, scope: str, event: bytes, series: Series | None
    ) -> _Counts:
        if series is None:
            rows = [event_row(event)]
        else:
            rows = series_rows(event, None, series.interval, series.start, series.finish)
        counts = _Counts()
        if series is not None:
            counts.total, counts.unique_total = [], []
        for cells in await self._rows(scope, rows, series):
            for column, n in sorted(cells.items()):
                if series is None:
                    counts.add(column, n, None)
                else:
                    counts.add(column[8:], n, STAMP.unpack(column[:8])[0])
        return counts

    async def _segment_counts(
        self, scope: str, event: bytes, prop: bytes, values: Sequence[bytes], series: Series | None
    ) -> dict[bytes, _Counts]:
        """An event's counters for each value of a property."""
        if series is None:
            rows = [segment_row(event, prop)]
        else:
            rows = series_rows(event, prop, series.interval, series.start, series.finish)
        counts = {value: _Counts() for value in values}
        if series is not None:
            for value_counts in counts.values():
                value_counts.total, value_counts.unique_total = [], []
        for cells in await self._rows(scope, rows, series):
            for column, n in sorted(cells.items()):
                stamp = None
                if series is not None:
                    stamp, column = STAMP.unpack(column[:8])[0], column[8:]
                value = column[:VALUE_ID_SIZE]
                if value in counts:
                    counts[value].add(column[VALUE_ID_SIZE:], n, stamp)
        return counts

    async def event(
        self, scope: str, event: bytes, prop_name: str | None = None, series: Series | None = None
    ) -> dict[str, object]:
        name = await self._catalog.event_name(scope, event)
        if name is None:
            raise NotFound("this bucket has never seen that event")
        properties = await self._catalog.properties(scope)
        answer: dict[str, object] = {"id": encode_id(event), "name": name}
        if prop_name is None:
            answer.update((await self._event_counts(scope, event, series)).as_dict())
        else:
            prop, values = await self._property_values(scope, prop_name, properties)
            counts = await self._segment_counts(scope, event, prop, list(values), series)
            answer["values"] = {encode_id(value): content for value, content in values.items()}
            for key, plural in PLURAL.items():
                answer[plural] = {encode_id(value): getattr(c, key) for value, c in counts.items()}
        answer["properties"] = {encode_id(pid): pname for pid, pname in properties.items()}
        return answer

    async def _property_values(
        self, scope: str, name: str, properties: dict[bytes, str]
    ) -> tuple[bytes, dict[bytes, object]]:
        prop = property_id(name)
        if prop not in properties:
            raise NotFound("this bucket has never seen that property")
        return prop, await self._catalog.values(scope, prop)

    async def property(self, scope: str, prop: bytes) -> dict[str, object]:
        name = await self._catalog.property_name(scope, prop)
        if name is None:
            raise NotFound("this bucket has never seen that property")
        values = await self._catalog.values(scope, prop)
        (holders,) = await self._store.read_rows(scope, [holders_row(prop)])
        totals: dict[bytes, dict[str, int]] = defaultdict(dict)
        for column, n in sorted(holders.items()):
            totals[column[:VALUE_ID_SIZE]][encode_id(column[VALUE_ID_SIZE:])] = n
        events = await self._catalog.events(scope)
        return {
            "id": encode_id(prop),
            "name": name,
            "values": {
                encode_id(value): {"value": content, "total": totals.get(value, {})}
                for value, content in values.items()
            },
            "events": {encode_id(event): event_name for event, event_name in events.items()},
        }

    async def funnel(self, scope: str, steps: Sequence[bytes], prop_name: str | None = None) -> dict[str, object]:
        ids = [encode_id(step) for step in steps]
        distinct = list(dict.fromkeys(steps))
        answer: dict[str, object] = {"event_ids": ids}
        if prop_name is None:
            counts = {step: await self._event_counts(scope, step, None) for step in distinct}
            for key in ("total", "unique_total", "path", "unique_path"):
                answer[key] = {encode_id(step): getattr(c, key) for step, c in counts.items()}
            answer["funnel"] = _funnel(steps, counts, "total", "path")
            answer["unique_funnel"] = _funnel(steps, counts, "unique_total", "unique_path")
            return answer
        prop = property_id(prop_name)
        values = await self._catalog.values(scope, prop)
        segments = {step: await self._segment_counts(scope, step, prop, list(values), None) for step in distinct}
        answer["property"] = {
            "name": prop_name,
            "id": encode_id(prop),
            "values": {encode_id(value): content for value, content in values.items()},
        }
        for key, plural in PLURAL.items():
            answer[plural] = {
                encode_id(step): {encode_id(value): getattr(c, key) for value, c in by_value.items()}
                for step, by_value in segments.items()
            }
        answer["funnels"] = {
            encode_id(value): _funnel(steps, {s: segments[s][value] for s in distinct}, "total", "path")
            for value in values
        }
        answer["unique_funnels"] = {
            encode_id(value): _funnel(steps, {s: segments[s][value] for s in distinct}, "unique_total", "unique_path")
            for value in values
        }
        return answer


def _funnel(steps: Sequence[bytes], counts: dict[bytes, _Counts], total: str, path: str) -> list[list]:
    """``[[s0, total[s0]], [s1, path[s1][s0]], ...]`` with wire ids."""
    funnel = [[encode_id(steps[0]), getattr(counts[steps[0]], total)]]
    for earlier, step in pairwise(steps):
        funnel.append([encode_id(step), getattr(counts[step], path).get(encode_id(earlier), 0)])
    return funnel

