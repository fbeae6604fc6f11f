"""The slowest hits of a light load against the server's trace (benchmarks/tracing.py): where each one's
time went.

A hit's time as the client saw it splits into the wait before the server
read its request (the reactor thread busy with something else: a long
step), the server's own time, and within that its group commit.  Each of
the slowest hits is listed with those, with the store's point reads it
made (a visitor's state, a bucket's record), and with whether a fold, a
SQLite checkpoint or a full collection of Python's collector ran
meanwhile; a summary counts them.
Tests: tests/test_bench_smoke.py.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LONG_STEP", "TRACE_FILE", "Span", "read_trace", "taken_apart"]

TRACE_FILE = "HIITRACK_BENCH_TRACE"
"""The environment variable naming the file the traced server writes (benchmarks/tracing.py)."""
LONG_STEP = 0.002
"""Seconds past which a reactor step is traced, and past which a hit's wait before the server
read it counts as a wait for the reactor."""


@dataclass(frozen=True)
class Span:
    kind: str
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def overlaps(self, start: float, end: float) -> bool:
        return self.start < end and self.end > start


def read_trace(path: Path) -> list[Span]:
    """The spans of a trace file, each line ``kind start end``."""
    spans = []
    for line in path.read_text().splitlines():
        kind, start, end = line.split()
        spans.append(Span(kind, float(start), float(end)))
    return spans


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def taken_apart(
    spans: Sequence[Span], starts: Sequence[float], took: Sequence[float], kinds: Sequence[str], order: Sequence[int]
) -> list[str]:
    """Lines on the hits at `order` (the slowest) among those sent at `starts` that took `took`
    seconds, each of its `kinds`."""
    by_kind: dict[str, list[Span]] = {}
    for span in spans:
        by_kind.setdefault(span.kind, []).append(span)

    def during(kind: str, start: float, end: float) -> list[Span]:
        return [span for span in by_kind.get(kind, []) if span.overlaps(start, end)]

    lines = ["the slowest hits: ms in all / before the server read it / in the server / its commit; meanwhile"]
    waited = slow_commits = in_folds = in_checkpoints = collected = 0
    for at in order:
        start, end = starts[at], starts[at] + took[at]
        served = next((span for span in by_kind.get("request", []) if start <= span.start and span.end <= end), None)
        read_at = served.start if served else end
        commits = during("commit", served.start, served.end) if served else []
        reads = during("read", served.start, served.end) if served else []
        commit_time = commits[0].seconds if commits else 0.0
        folds = during("fold", start, end)
        checkpoints = during("checkpoint", start, end)
        steps = during("step", start, read_at)
        collections = during("collection", start, end)
        waited += read_at - start > LONG_STEP
        slow_commits += commit_time > took[at] / 2
        in_folds += bool(folds)
        in_checkpoints += bool(checkpoints)
        collected += bool(collections)
        notes = [f"fold of {_ms(fold.seconds)}" for fold in folds]
        notes += [f"a checkpoint of {_ms(span.seconds)}" for span in checkpoints]
        notes += [f"a read of {_ms(span.seconds)}" for span in reads]
        notes += [f"a reactor step of {_ms(step.seconds)}" for step in steps]
        notes += [f"a full collection of {_ms(span.seconds)}" for span in collections]
        server = _ms(served.seconds) if served else "?"
        lines.append(
            f"  {_ms(took[at])} / {_ms(read_at - start)} / {server} / {_ms(commit_time)} ({kinds[at]})"
            + (f"; {', '.join(notes)}" if notes else "")
        )
    lines.append(
        f"of the slowest {len(order)}: {waited} waited over {LONG_STEP * 1000:g} ms before the server read them, "
        f"{slow_commits} spent over half their time in their commit, {in_folds} overlapped a fold, "
        f"{in_checkpoints} a checkpoint, {collected} a full collection"
    )
    return lines
