"""The exact-funnel benchmark's data: deterministic NDJSON hits, cached in chunks.

Chunk n (0, 1, …) holds exactly `chunk_events` events of visitors
``v0 … v{chunk_events // 10 - 1}``, in sessions: 64 sessions run at once,
each of 1 to 8 hits of a visitor chosen at random, a hit carrying 1 to 3
events from 20 names (the funnel's 4 steps and 16 others).  The first hit of
a session carries the visitor's `plan` (one of 50, fixed per visitor).  Hit
times are whole milliseconds, strictly increasing through the chunk, and
chunk n covers its own 3 days from 2026-01-01 UTC: so importing chunk after
chunk keeps each visitor's history in time order, and no two hits of a
visitor share a millisecond (ClickHouse orders equal times its own way).
Chunks are written once under ~/.cache/hiitrack/bench (HIITRACK_CACHE) and
reused.  Tests: tests/test_bench_dataset.py.
"""

import json
import random
from pathlib import Path

from benchmarks.servers import CACHE_ROOT

__all__ = ["CACHE", "EVENT_NAMES", "PLANS", "STEPS", "chunk_path", "plan_of"]

CACHE = CACHE_ROOT / "bench"
STEPS = [f"step{number}" for number in range(1, 5)]
OTHERS = [f"view{number:02d}" for number in range(1, 17)]
EVENT_NAMES = STEPS + OTHERS
PLANS = 50
SESSIONS_AT_ONCE = 64
START_MS = 1_767_225_600_000
CHUNK_SPAN_MS = 3 * 86_400_000
STEP_SHARE = 0.4
FORMAT = 1
"""Bumped whenever the generator changes, so that a cached chunk is never stale."""


def plan_of(visitor: int) -> str:
    return f"plan{visitor % PLANS:02d}"


def _event(rng: random.Random) -> str:
    return rng.choice(STEPS) if rng.random() < STEP_SHARE else rng.choice(OTHERS)


def _stamp(ms: int) -> str:
    """Unix seconds with exactly three decimals: both HiiTrack and ClickHouse read it to the exact ms."""
    return f"{ms // 1000}.{ms % 1000:03d}"


def _lines(index: int, chunk_events: int) -> list[str]:
    rng = random.Random(f"hiitrack-bench-{FORMAT}-{chunk_events}-{index}")
    visitors = max(1, chunk_events // 10)
    # The largest gap keeps the chunk's last hit inside its own 3 days.
    largest_gap = max(1, CHUNK_SPAN_MS // chunk_events)
    clock = START_MS + index * CHUNK_SPAN_MS
    sessions: list[list[int]] = []  # [visitor, hits left]
    lines: list[str] = []
    written = 0
    while written < chunk_events:
        if len(sessions) < SESSIONS_AT_ONCE:
            sessions.append([rng.randrange(visitors), rng.randint(1, 8)])
            new_session = True
            session = sessions[-1]
        else:
            session = rng.choice(sessions)
            new_session = False
        clock += rng.randint(1, largest_gap)
        events = [_event(rng) for _ in range(min(rng.choice((1, 1, 2, 3)), chunk_events - written))]
        hit: dict[str, object] = {"visitor_id": f"v{session[0]}", "time": "", "events": events}
        if new_session:
            hit["properties"] = {"plan": plan_of(session[0])}
        line = json.dumps(hit, separators=(",", ":"))
        lines.append(line.replace('"time":""', f'"time":{_stamp(clock)}') + "\n")
        written += len(events)
        session[1] -= 1
        if session[1] == 0:
            sessions.remove(session)
    return lines


def chunk_path(index: int, chunk_events: int) -> Path:
    """The NDJSON file of chunk `index`, written on first use."""
    path = CACHE / f"funnel-v{FORMAT}-{chunk_events}-{index:03d}.ndjson"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text("".join(_lines(index, chunk_events)), encoding="utf-8")
        partial.rename(path)
    return path
