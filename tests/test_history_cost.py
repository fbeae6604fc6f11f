"""The cost benchmark's generated hits (benchmarks/history_cost.py) are what its report claims."""

import json

from benchmarks.history_cost import EVENT_NAMES, VISITORS, generate_hits


def test_generated_hits_hold_exactly_the_events_asked_in_time_order() -> None:
    hits = [json.loads(line) for line in generate_hits(10_000)]
    assert sum(len(hit["events"]) for hit in hits) == 10_000
    assert all(1 <= len(hit["events"]) <= 5 and set(hit["events"]) <= set(EVENT_NAMES) for hit in hits)
    assert [hit["time"] for hit in hits] == sorted(hit["time"] for hit in hits)
    assert all(0 <= int(hit["visitor_id"][1:]) < VISITORS for hit in hits)
    with_values = sum("properties" in hit for hit in hits)
    assert 0.25 < with_values / len(hits) < 0.42
