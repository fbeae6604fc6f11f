"""The exact-funnel benchmark's parts that decide its verdict: the data, ClickHouse's side, the comparison.

benchmarks/dataset.py must give what its docstring promises (exact event
counts, strictly increasing whole-ms times chunk after chunk, the plan on
each session's first hit); benchmarks/clickhouse.py must count a chain the
way docs/api.md does at the window's bound and inside one hit; and
benchmarks/exact_funnel.mismatches must catch any difference.
"""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks import dataset
from benchmarks.clickhouse import ClickHouseFunnel, Levels
from benchmarks.exact_funnel import mismatches
from hiitrack.ids import encode_id, property_id, value_id

T0 = 1_767_225_600_000


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(dataset, "CACHE", tmp_path / "bench")
    return tmp_path / "bench"


def _hits(path: Path) -> list[dict]:
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


def test_chunks_hold_exactly_their_events_in_increasing_whole_ms(cache: Path) -> None:
    chunks = [_hits(dataset.chunk_path(index, 2000)) for index in range(2)]
    for hits in chunks:
        assert sum(len(hit["events"]) for hit in hits) == 2000
        assert all(1 <= len(hit["events"]) <= 3 and set(hit["events"]) <= set(dataset.EVENT_NAMES) for hit in hits)
        assert all(int(hit["visitor_id"][1:]) < 200 for hit in hits)
    times = [hit["time"] for hits in chunks for hit in hits]
    assert all(time == round(time, 3) for time in times)
    assert all(earlier < later for earlier, later in zip(times, times[1:], strict=False))
    assert times[-1] * 1000 < dataset.START_MS + 2 * dataset.CHUNK_SPAN_MS
    planned = [hit for hits in chunks for hit in hits if "properties" in hit]
    assert planned
    assert all(hit["properties"] == {"plan": dataset.plan_of(int(hit["visitor_id"][1:]))} for hit in planned)
    assert {hit["visitor_id"] for hits in chunks for hit in hits} <= {hit["visitor_id"] for hit in planned}


def test_a_chunk_is_written_once_and_the_same_each_time(cache: Path) -> None:
    path = dataset.chunk_path(0, 500)
    first = path.read_text()
    path.unlink()
    assert dataset.chunk_path(0, 500).read_text() == first
    assert [entry.name for entry in cache.iterdir()] == [path.name]


def _line(visitor: str, ms: int, events: list[str], plan: str) -> str:
    hit = {"visitor_id": visitor, "time": 0, "events": events, "properties": {"plan": plan}}
    return json.dumps(hit).replace('"time": 0', f'"time": {ms // 1000}.{ms % 1000:03d}') + "\n"


def test_clickhouse_keeps_a_hits_order_and_the_windows_bound(tmp_path: Path) -> None:
    hits = tmp_path / "hits.ndjson"
    hits.write_text(
        _line("in order", T0, ["step1", "step2"], "a")
        + _line("reversed", T0, ["step2", "step1"], "a")
        + _line("at the bound", T0, ["view01", "step1"], "b")
        + _line("at the bound", T0 + 60_000, ["step2"], "b")
        + _line("past the bound", T0, ["step1"], "b")
        + _line("past the bound", T0 + 60_001, ["view01", "step2"], "b")
    )
    clickhouse = ClickHouseFunnel(tmp_path / "chdb", ["step1", "step2"], 60)
    try:
        clickhouse.load(hits)
        assert clickhouse.events() == 10
        assert clickhouse.levels() == Levels([4, 2], {"a": [2, 1], "b": [2, 1]})
    finally:
        clickhouse.close()


def test_any_difference_from_clickhouse_is_reported() -> None:
    levels = Levels([5, 2], {"plan00": [3, 1], "plan01": [2, 1]})
    by_value = {encode_id(value_id(property_id("plan"), plan)): counts for plan, counts in levels.by_plan.items()}
    assert mismatches({"visitors": [5, 2], "by_value": by_value}, levels) == []
    wrong = dict(by_value) | {encode_id(value_id(property_id("plan"), "plan01")): [2, 0]}
    assert mismatches({"visitors": [5, 1], "by_value": wrong}, levels) == [
        "visitors: HiiTrack [5, 1], ClickHouse [5, 2]",
        "plan plan01: HiiTrack [2, 0], ClickHouse [2, 1]",
    ]
