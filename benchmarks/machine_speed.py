"""How fast this machine runs Python right now: a fixed piece of work, timed again and again.

On the project's 2-core virtual machine the same work takes one of two
times, the slow one about 1.6 times the fast one, switching within seconds
and on either core (docs/performance.md, "Session 30").  Every figure
measured over seconds is then partly the share of slow periods it met.
`probe` is the work, timed by the process's CPU; `by_speed` splits timed
samples by the probe taken just before each, so that two versions of code
compare at the same speed (benchmarks/report_cpu.py); ``python -m
benchmarks.machine_speed`` prints the probe's times over a while.
Tests: tests/test_bench_smoke.py.
"""

import argparse
import statistics
import sys
import time

__all__ = ["PROBE_LOOPS", "SLOW", "by_speed", "main", "probe"]

PROBE_LOOPS = 20_000
"""The probe's loops: about 2 ms of CPU at this machine's fast speed."""
SLOW = 1.3
"""A probe at least this many times the fastest one ran at the machine's slow speed; the two
speeds are about 1.6 apart, and the fast probes within 1.2 of each other."""


def probe(loops: int = PROBE_LOOPS) -> float:
    """Milliseconds of this process's CPU for `loops` updates of a dict of 5,000 integers:
    interpreted bytecode, hashing and a table in the caches, as a report's cells are."""
    started = time.process_time()
    counts: dict[int, int] = {}
    for i in range(loops):
        key = i % 5000
        counts[key] = counts.get(key, 0) + i
    return (time.process_time() - started) * 1000


def by_speed(samples: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The values of `samples` (probe milliseconds, value) whose probe ran at the fast speed (under
    `SLOW` times the fastest probe), and the values of the others."""
    if not samples:
        return [], []
    fastest = min(took for took, _ in samples)
    fast = [value for took, value in samples if took < SLOW * fastest]
    slow = [value for took, value in samples if took >= SLOW * fastest]
    return fast, slow


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.machine_speed", description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--every", type=float, default=0.5, help="seconds between the starts of two probes")
    parser.add_argument("--loops", type=int, default=5 * PROBE_LOOPS)
    options = parser.parse_args(argv)
    times = []
    deadline = time.monotonic() + options.seconds
    while True:
        started = time.monotonic()
        times.append(probe(options.loops))
        if started + options.every >= deadline:
            break
        time.sleep(max(0.0, started + options.every - time.monotonic()))
    fast, slow = by_speed([(took, took) for took in times])
    share = 100 * len(slow) / len(times)
    slow_part = f"slow (≥ {SLOW} × the fastest) {share:.0f} %"
    if slow:
        slow_part += f", their p50 {statistics.median(slow) / statistics.median(fast):.2f} × the fast ones'"
    print(
        f"{options.loops:,} loops, {len(times)} probes over {options.seconds:g} s: CPU min / p50 / max "
        f"{min(times):.1f} / {statistics.median(times):.1f} / {max(times):.1f} ms; {slow_part}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
