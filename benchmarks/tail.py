"""The slowest hits of a light load against the server's trace (benchmarks/tracing.py): where each one's
time went.

A hit's time as the client saw it splits into the wait before the server
read its request (the reactor thread busy with something else: a long
step), the server's own time, and within that its group commit.  Each of
the slowest hits is listed with those, and with whether a fold or a full
collection of Python's collector ran meanwhile; a summary counts them.
Tests: tests/test_bench_smoke.py.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TRACE_FILE", "Span", "read_trace", "taken_apart"]

TRACE_FILE = "HIITRACK_BENCH_TRACE"
"""The environment variable naming the file the traced server writes (benchmarks/tracing.py)."""


@dataclass(frozen=True)
class Span:
    kind: str
    start: float
    end: float

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
    lines = ["the slowest hits: ms in all / before the server read it / in the server / its commit; meanwhile"]
    waited = slow_commits = in_folds = collected = 0
    for at in order:
        start, end = starts[at], starts[at] + took[at]
        served = next((span for span in by_kind.get("request", []) if start <= span.start and span.end <= end), None)
        read_at = served.start if served else end
        commit = next(
            (span for span in by_kind.get("commit", []) if served and span.overlaps(served.start, served.end)), None
        )
        folds = [span for span in by_kind.get("fold", []) if span.overlaps(start, end)]
        steps = [span for span in by_kind.get("step", []) if span.overlaps(start, read_at)]
        collections = [span for span in by_kind.get("collection", []) if span.overlaps(start, end)]
        commit_time = commit.end - commit.start if commit else 0.0
        waited += read_at - start > 0.002
        slow_commits += commit_time > took[at] / 2
        in_folds += bool(folds)
        collected += bool(collections)
        notes = [f"fold of {_ms(fold.end - fold.start)}" for fold in folds]
        notes += [f"a reactor step of {_ms(step.end - step.start)}" for step in steps]
        notes += [f"a full collection of {_ms(span.end - span.start)}" for span in collections]
        server = _ms(served.end - served.start) if served else "?"
        lines.append(
            f"  {_ms(took[at])} / {_ms(read_at - start)} / {server} / {_ms(commit_time)} ({kinds[at]})"
            + (f"; {', '.join(notes)}" if notes else "")
        )
    lines.append(
        f"of the slowest {len(order)}: {waited} waited over 2 ms before the server read them, "
        f"{slow_commits} spent over half their time in their commit, {in_folds} overlapped a fold, "
        f"{collected} a full collection"
    )
    return lines
