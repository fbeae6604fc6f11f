"""The read path: the bucket overview and the event, property and funnel reports.

Every report is a few row slices of pre-aggregated counters (see the row
layout in hiitrack.counting), so its cost follows the size of the answer,
never the number of events recorded.  The rules of a report's time range
live here too.  Ids in the answers are wire ids.  A report split by a
property with more values than ``report_values`` (hiitrack.limits) is
refused rather than answered megabytes long.  Tests:
tests/test_http_reports.py, tests/test_http_accounts.py, tests/test_model.py,
tests/test_caps.py.
"""

import struct
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import NamedTuple, Protocol

from hiitrack.accounts import Accounts, bucket_scope
from hiitrack.catalog import Catalog
from hiitrack.conversions import BY_VALUE, LEVEL, TIME, SavedFunnel, conversion_row, day_rows, level_kind
from hiitrack.counting import (
    DAY,
    PATH,
    TOTAL,
    UNIQUE_PATH,
    VALUE_ID_SIZE,
    Interval,
    event_row,
    holders_row,
    segment_row,
    series_rows,
)
from hiitrack.errors import BadRequest, NotFound
from hiitrack.funnels import BUCKET_BOUNDS, median
from hiitrack.gathering import together
from hiitrack.ids import decode_id, encode_id, property_id
from hiitrack.limits import Limits, OverLimit
from hiitrack.store.interface import CounterStore, RecordStore

__all__ = ["ReportStore", "Reports", "Series"]

STAMP = struct.Struct(">Q")
LATEST = 2**40  # far beyond any real time, well inside the 8-byte series stamps
PLURAL = {"total": "totals", "unique_total": "unique_totals", "path": "paths", "unique_path": "unique_paths"}


@dataclass(frozen=True)
class Series:
    """A time-bounded report: buckets of `interval` from `start` to `finish`."""

    interval: Interval
    start: int
    finish: int

    @classmethod
    def requested(cls, interval: Interval, start: int, finish: int | None, now: float) -> "Series":
        """The range a report reads; `finish` defaults to now.

        Hits may be backdated to any time (their ``time``), even before the
        bucket's creation, so the start is kept as asked; the finish is
        clamped to now and a day (no hit is later than now + 60 s).  The
        work stays bounded: series rows are time shards of 24 days (hourly)
        or a year (daily), fewer than 900 from 1970 to now.
        """
        last = int(now) if finish is None else finish
        if not 0 <= start <= last < LATEST:
            raise BadRequest("start and finish must be Unix times, start no later than finish")
        return cls(interval, start, min(last, int(now) + DAY.seconds))


class Split(NamedTuple):
    """The property a funnel report is split by, and its values by id (at most `report_values`)."""

    name: str
    values: dict[bytes, object]


Count = int | list[list[int]]
"""A counter of a plain report, or the ``[start, n]`` points of a time-bounded one."""


ALL = b""
"""The key of a report's counters when it is not split by a property: the value part of its
columns is empty."""


def _with_point(count: Count | None, n: int, stamp: int) -> Count:
    """The points of `count` with one more, the cell of series bucket `stamp`."""
    points = count if isinstance(count, list) else []
    points.append([stamp, n])
    return points


class _Counts:
    """The four counters of an event (or of an event for one value).

    Plain reports hold numbers; time-bounded ones lists of ``[start, n]``.
    """

    def __init__(self, series: bool) -> None:
        self.total: Count = [] if series else 0
        self.unique_total: Count = [] if series else 0
        self.path: dict[str, Count] = {}
        self.unique_path: dict[str, Count] = {}

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "unique_total": self.unique_total,
            "path": self.path,
            "unique_path": self.unique_path,
        }


PARSED_COLUMNS = 16_384
"""Most columns `_set_cells` keeps parsed for each width (about 8 MB when full, by `tracemalloc`
over columns of random ids); when full it starts over.  The benchmark's funnel has 3,600."""
_parsed_columns: dict[int, dict[bytes, tuple[bytes, bytes, str]]] = {}


def _parse(column: bytes, width: int, parsed: dict[bytes, tuple[bytes, bytes, str]]) -> tuple[bytes, bytes, str]:
    """A plain report's column as its value (its first `width` bytes), its counter's tag and the
    wire id of the earlier event of a path ("" for a total), kept in `parsed`."""
    if len(parsed) >= PARSED_COLUMNS:
        parsed.clear()
    tag = column[width : width + 1]
    earlier = encode_id(column[width + 1 :]) if tag in (PATH, UNIQUE_PATH) else ""
    found = parsed[column] = (column[:width], tag, earlier)
    return found


def _set_cells(by_value: dict[bytes, _Counts], cells: dict[bytes, int], width: int) -> None:
    """A plain report's row into `by_value`'s counters, keyed by a column's first `width` bytes
    (its value; none for `ALL`).  Such a row has each column once, so a cell sets its counter.
    A split report runs this loop thousands of times, over the columns of its last read: each is
    parsed once (`_parse`: the benchmark funnel's loop about 40 % faster in a scratch timing), and
    the loop is kept flat."""
    parsed = _parsed_columns.setdefault(width, {})
    for column, n in cells.items():
        value, tag, earlier = parsed.get(column) or _parse(column, width, parsed)
        counts = by_value.get(value)
        if counts is None:
            continue
        if tag == PATH:
            counts.path[earlier] = n
        elif tag == UNIQUE_PATH:
            counts.unique_path[earlier] = n
        elif tag == TOTAL:
            counts.total = n
        else:
            counts.unique_total = n


def _add_points(by_value: dict[bytes, _Counts], cells: dict[bytes, int], width: int) -> None:
    """A time-bounded report's row into `by_value`'s counters: each cell is the point of the
    series bucket its column starts with, then its value (`width` bytes) and counter tag."""
    for stamped, n in cells.items():
        stamp, column = STAMP.unpack_from(stamped)[0], stamped[8:]
        counts = by_value.get(column[:width])
        if counts is None:
            continue
        tag, earlier = column[width : width + 1], column[width + 1 :]
        if tag in (PATH, UNIQUE_PATH):
            paths = counts.path if tag == PATH else counts.unique_path
            key = encode_id(earlier)
            paths[key] = _with_point(paths.get(key), n, stamp)
        elif tag == TOTAL:
            counts.total = _with_point(counts.total, n, stamp)
        else:
            counts.unique_total = _with_point(counts.unique_total, n, stamp)


def _known(name: str | None, what: str) -> str:
    """A report's name, which a name unseen (or no visitor's any more) makes a 404."""
    if name is None:
        raise NotFound(f"this bucket has never seen that {what}")
    return name


class ReportStore(CounterStore, RecordStore, Protocol):
    """What reports read: counter rows, and the drop-off index a page at a time."""


class Reports:
    def __init__(self, store: ReportStore, catalog: Catalog, accounts: Accounts, limits: Limits = Limits()) -> None:
        self._store = store
        self._catalog = catalog
        self._accounts = accounts
        self._limits = limits

    async def overview(self, user: str, bucket: str, record: dict) -> dict[str, object]:
        """A bucket at a glance (`record` is its account record): its read-only key and every name it has seen."""
        scope = bucket_scope(user, bucket)
        names = self._catalog.names(scope)
        access_key, events, properties, funnels = await together(
            self._accounts.access_key(user, bucket), names.events(), names.properties(), self._catalog.funnels(scope)
        )
        return {
            "bucket_name": bucket,
            "description": record["description"],
            "access_key": access_key,
            "events": {name: {"id": encode_id(event)} for event, name in events.items()},
            "properties": {encode_id(prop): name for prop, name in properties.items()},
            "funnels": {name: {"description": funnel["description"]} for name, funnel in funnels.items()},
        }

    def _splittable(self, values: dict[bytes, object]) -> dict[bytes, object]:
        """A property's values, if a report may split by them all."""
        if len(values) > self._limits.report_values:
            raise OverLimit(
                "report_values", self._limits.report_values, "this property has too many values to split a report by"
            )
        return values

    async def _rows(self, scope: str, rows: list[bytes], series: Series | None) -> list[dict[bytes, int]]:
        if series is None:
            return await self._store.read_rows(scope, rows)
        first = series.interval.start_of(series.start)
        return await self._store.read_rows(scope, rows, STAMP.pack(first), STAMP.pack(max(first, series.finish + 1)))

    async def _counts(
        self,
        scope: str,
        events: Sequence[bytes],
        prop: bytes | None = None,
        values: Sequence[bytes] = (),
        series: Series | None = None,
    ) -> dict[bytes, dict[bytes, _Counts]]:
        """Each event's counters, per value of `prop` (or overall, under `ALL`).

        All the rows go to the store in one read, so a funnel of many steps
        costs one trip to the store, not one per step.
        """
        keys = [ALL] if prop is None else list(values)
        counts = {event: {key: _Counts(series is not None) for key in keys} for event in events}
        owners: list[bytes] = []
        rows: list[bytes] = []
        for event in events:
            if series is not None:
                wanted = series_rows(event, prop, series.interval, series.start, series.finish)
            else:
                wanted = [event_row(event) if prop is None else segment_row(event, prop)]
            rows += wanted
            owners += [event] * len(wanted)
        width = 0 if prop is None else VALUE_ID_SIZE
        # Cells come in column order (the store promises it), which puts
        # every series in time order.
        for event, cells in zip(owners, await self._rows(scope, rows, series), strict=True):
            (_set_cells if series is None else _add_points)(counts[event], cells, width)
        return counts

    async def event(
        self, scope: str, event: bytes, prop_name: str | None = None, series: Series | None = None
    ) -> dict[str, object]:
        """The event's report: its names and counts read at once (with a property, then its segments)."""
        names = self._catalog.names(scope)
        answer: dict[str, object] = {"id": encode_id(event)}
        if prop_name is None:
            name, properties, counts = await together(
                names.event_name(event), names.properties(), self._counts(scope, [event], series=series)
            )
            answer["name"] = _known(name, "event")
            answer.update(counts[event][ALL].as_dict())
        else:
            prop = property_id(prop_name)
            name, properties, values = await together(names.event_name(event), names.properties(), names.values(prop))
            answer["name"] = _known(name, "event")
            if prop not in properties:
                raise NotFound("this bucket has never seen that property")
            values = self._splittable(values)
            by_value = (await self._counts(scope, [event], prop, list(values), series))[event]
            answer["values"] = {encode_id(value): content for value, content in values.items()}
            for key, plural in PLURAL.items():
                answer[plural] = {encode_id(value): getattr(c, key) for value, c in by_value.items()}
        answer["properties"] = {encode_id(pid): pname for pid, pname in properties.items()}
        return answer

    async def property(self, scope: str, prop: bytes) -> dict[str, object]:
        """The property's report: its names, values and holders, read at once."""
        names = self._catalog.names(scope)
        name, values, (holders,), events = await together(
            names.property_name(prop),
            names.values(prop),
            self._store.read_rows(scope, [holders_row(prop)]),
            names.events(),
        )
        _known(name, "property")
        values = self._splittable(values)
        totals: dict[bytes, dict[str, int]] = defaultdict(dict)
        for column, n in sorted(holders.items()):
            totals[column[:VALUE_ID_SIZE]][encode_id(column[VALUE_ID_SIZE:])] = n
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
        """Part 1's pairwise report of `steps`: the unsaved preview."""
        return await self._pairwise(scope, steps, await self._split(scope, prop_name))

    async def saved_funnel(self, scope: str, record: dict, days: Series | None) -> dict[str, object]:
        """A saved funnel's report: the pairwise keys, and the exact `conversion` when it has one.

        Its property's values are read once for both parts, and the two
        parts' counter rows are read at the same time.
        """
        split = await self._split(scope, record["property"])
        steps = [decode_id(text) for text in record["event_ids"]]
        parts = [self._pairwise(scope, steps, split)]
        exact = SavedFunnel.of(record)
        if exact is not None:
            parts.append(self._conversion(scope, exact, record, days, split))
        report, *conversion = await together(*parts)
        answer = {**report, "description": record["description"]}
        if conversion:
            answer["conversion"] = conversion[0]
        return answer

    async def _split(self, scope: str, prop_name: str | None) -> Split | None:
        """The property a funnel report is split by, with its values: none without a property."""
        if prop_name is None:
            return None
        return Split(prop_name, self._splittable(await self._catalog.names(scope).values(property_id(prop_name))))

    async def _pairwise(self, scope: str, steps: Sequence[bytes], split: Split | None) -> dict[str, object]:
        ids = [encode_id(step) for step in steps]
        distinct = list(dict.fromkeys(steps))
        answer: dict[str, object] = {"event_ids": ids}
        if split is None:
            counts = {step: by_value[ALL] for step, by_value in (await self._counts(scope, distinct)).items()}
            for key in ("total", "unique_total", "path", "unique_path"):
                answer[key] = {encode_id(step): getattr(c, key) for step, c in counts.items()}
            answer["funnel"] = _funnel(steps, counts, "total", "path")
            answer["unique_funnel"] = _funnel(steps, counts, "unique_total", "unique_path")
            return answer
        values = split.values
        prop = property_id(split.name)
        segments = await self._counts(scope, distinct, prop, list(values))
        answer["property"] = {
            "name": split.name,
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

    async def conversion(self, scope: str, funnel: SavedFunnel, record: dict, days: Series | None) -> dict[str, object]:
        """The `conversion` object of a saved funnel (docs/api.md, "Exact funnels"), from its counter rows."""
        return await self._conversion(scope, funnel, record, days, await self._split(scope, record["property"]))

    async def _conversion(
        self, scope: str, funnel: SavedFunnel, record: dict, days: Series | None, split: Split | None
    ) -> dict[str, object]:
        steps = len(funnel.definition.steps)
        rows = [conversion_row(funnel.version)]
        if days is not None:
            rows += day_rows(funnel.version, days.start, days.finish)
        first = DAY.start_of(days.start) if days is not None else 0
        cells = await self._store.read_rows(scope, rows)
        visitors = [0] * steps
        times = [[0] * len(BUCKET_BOUNDS) for _ in range(steps)]
        by_value = {value: [0] * steps for value in split.values} if split is not None else {}
        for column, n in cells[0].items():
            tag = column[:1]
            if tag == LEVEL:
                visitors[column[1] - 1] = n
            elif tag == TIME:
                times[column[1] - 1][column[2]] = n
            elif tag == BY_VALUE and (counts := by_value.get(column[1:-1])) is not None:
                counts[column[-1] - 1] = n
        answer: dict[str, object] = {
            "order": funnel.definition.order,
            "window": funnel.definition.window,
            "steps": record["steps"],
            "exclude": record["exclude"],
            "visitors": visitors,
            "time_to_convert": [None]
            + [
                {"buckets": [list(pair) for pair in zip(BUCKET_BOUNDS, counts, strict=True)], "median": median(counts)}
                for counts in times[1:]
            ],
        }
        if funnel.prop is not None:
            answer["by_value"] = {encode_id(value): counts for value, counts in by_value.items()}
        if days is not None:
            by_day: dict[int, list[int]] = defaultdict(lambda: [0] * steps)
            for day_cells in cells[1:]:
                for column, n in day_cells.items():
                    day = STAMP.unpack_from(column)[0]
                    if first <= day <= days.finish:
                        by_day[day][column[8] - 1] = n
            answer["days"] = [[day, counts] for day, counts in sorted(by_day.items()) if counts[0] > 0]
        answer["backfill"] = {"state": record["backfill"]["state"], "visitors": record["backfill"]["visitors"]}
        return answer

    async def funnel_visitors(
        self, scope: str, funnel: SavedFunnel, step: int, reached: bool, after: str, limit: int
    ) -> dict[str, object]:
        """Who reached step `step` (level >= step) or dropped off before it (level == step - 1), a page at a time.

        Each level is one sorted list in the store; `reached` merges the
        lists of the levels from `step` up.
        """
        steps = len(funnel.definition.steps)
        if not (1 if reached else 2) <= step <= steps:
            low = 1 if reached else 2
            raise BadRequest(f"step must be an integer from {low} to {steps} for this funnel and status")
        levels = range(step, steps + 1) if reached else [step - 1]
        pages = await together(
            *(self._store.page(scope, level_kind(funnel.version, level), after, limit + 1) for level in levels)
        )
        visitors = sorted({key for page in pages for key, _ in page})
        more = len(visitors) > limit
        visitors = visitors[:limit]
        return {"visitors": visitors, "next": visitors[-1] if more else None}


def _funnel(steps: Sequence[bytes], counts: dict[bytes, _Counts], total: str, path: str) -> list[list]:
    """``[[s0, total[s0]], [s1, path[s1][s0]], ...]`` with wire ids."""
    funnel = [[encode_id(steps[0]), getattr(counts[steps[0]], total)]]
    for earlier, step in pairwise(steps):
        funnel.append([encode_id(step), getattr(counts[step], path).get(encode_id(earlier), 0)])
    return funnel
