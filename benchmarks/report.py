"""The benchmark's verdicts: the figures against issues 6's and 14's targets, and the exact-count check.

Every figure is printed as it is measured and again in the final table; a
failed check (an event answered 200 and not counted, a non-200 answer, a
request left unanswered) makes the run exit 1, a missed target does not.
Tests: tests/test_bench_smoke.py.
"""

from dataclasses import dataclass, field

from benchmarks.wrk import Load

__all__ = ["TARGETS", "Report"]

TARGETS = {
    # Ingest ÷ floor (issue 14); Cassandra's batch ingest has none.
    "sqlite event": 0.6,
    "sqlite batch": 0.3,
    "cassandra event": 0.4,
    # A hit's p99 at light load, one request at a time (issue 14).
    "light_p99_ms": 5.0,
    "funnel_p50_ms": 10.0,
    "funnel_ratio": 0.9,
    "rss_mb": 300.0,
}


@dataclass
class Row:
    """One line of the table."""

    what: str
    value: str
    target: str = ""
    verdict: str = ""


@dataclass
class Report:
    """The figures measured so far and the failed checks."""

    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def row(self, what: str, value: str, target: str = "", met: bool | None = None) -> None:
        verdict = "" if met is None else ("met" if met else "MISSED")
        self.rows.append(Row(what, value, target, verdict))
        print(f"  {what}: {value}" + (f"  (target {target}: {verdict})" if target else ""), flush=True)

    def ratio(self, what: str, numerator: float, denominator: float, target: float, shown: str = ".1f") -> float:
        """A row "numerator ÷ denominator = ratio" judged against ≥ `target`; the ratio (0 for a 0 denominator)."""
        value = numerator / denominator if denominator else 0.0
        self.row(
            what,
            f"{numerator:{shown}} ÷ {denominator:{shown}} = {value:.2f}",
            f"≥ {target}",
            value >= target,
        )
        return value

    def check(self, label: str, load: Load, per_request: int, server_total: int) -> None:
        """Every 200 is counted, nothing else is: the server's total is exact."""
        expected = load.ok * per_request
        problems = []
        if server_total != expected:
            problems.append(f"server counted {server_total} events, wrk got {load.ok} × {per_request} = {expected}")
        if load.bad:
            problems.append(f"{load.bad} answers were not 200")
        if not load.all_done or load.answered != load.sent:
            problems.append(f"{load.sent - load.answered} requests unanswered when wrk stopped")
        if problems:
            self.failures.append(f"{label}: " + "; ".join(problems))
            print(f"  CHECK FAILED {label}: " + "; ".join(problems), flush=True)

    def table(self) -> str:
        width = max(len(row.what) for row in self.rows)
        value_width = max(len(row.value) for row in self.rows)
        lines = [
            f"| {'figure':<{width}} | {'value':<{value_width}} | target | |",
            f"|{'-' * (width + 2)}|{'-' * (value_width + 2)}|---|---|",
        ]
        for row in self.rows:
            lines.append(f"| {row.what:<{width}} | {row.value:<{value_width}} | {row.target} | {row.verdict} |")
        return "\n".join(lines)
