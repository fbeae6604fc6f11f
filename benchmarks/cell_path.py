"""The CPU of a hit's counter cells, without HTTP or a store: ``python -m benchmarks.cell_path``.

What every hit pays for its cells on the reactor thread, whatever the store:
counting them (hiitrack.counting), merging a commit's hits
(hiitrack.store.grouping) and adding the commit to the unfolded layer that
reads and the fold use (hiitrack.store.write_behind).  The full run's
workload (benchmarks/workload.py): visitors who keep their plan and country,
hits in commits of 16 (the full run's ~15.7 requests a commit), a new layer
every 60 commits (a fold).  It prints the process's CPU per hit, then
each part of it (counting with the visitor's state read and written, the
commit's merge, the layer's) and what pickling each commit's rows as its
journal entry adds, and checks that the layers hold every event it
counted.  Another checkout's
code runs under this script as ``PYTHONPATH=<checkout> python
benchmarks/cell_path.py``: two versions compare in alternating runs,
without the HTTP and scheduling noise of a saturated server.
Tests: tests/test_bench_smoke.py.
"""

import argparse
import pickle
import random
import sys
import time

from benchmarks.workload import BATCH_EVENTS, COUNTRIES, EVENT_NAMES, PLANS
from hiitrack.counting import TOTAL, Visitor, count_batch, event_row, new_increments
from hiitrack.ids import event_id, property_id, value_id
from hiitrack.store.grouping import MergedWrite
from hiitrack.store.interface import WriteBatch
from hiitrack.store.write_behind import Unfolded

__all__ = ["main"]

HITS_PER_COMMIT = 16
COMMITS_PER_LAYER = 60
SCOPE = "bench/cells"
WHEN = 1_700_000_000


def _values(visitor: int) -> list[bytes]:
    plan = visitor % PLANS
    return [
        value_id(property_id("plan"), f"p{plan}"),
        value_id(property_id("country"), f"c{plan % COUNTRIES}"),
    ]


PARTS = ("counting", "the commit's merge", "the layer's", "pickling the journal entry")
"""What `run` times apart; the last is not in a hit's cell path proper (the stores pickle the
commit's rows as its journal entry), so it is given on its own."""


def run(mode: str, visitors: int, commits: int, seed: int = 1) -> tuple[dict[str, float], int]:
    """CPU seconds per hit of each of `PARTS` over `commits` commits, after as many unmeasured;
    and the events counted."""
    rng = random.Random(seed)
    events = [event_id(name) for name in EVENT_NAMES]
    states: dict[int, bytes] = {}
    layers = [Unfolded(0)]
    counted = 0
    spent = dict.fromkeys(PARTS, 0.0)
    for commit in range(2 * commits):
        measured = commit >= commits
        merged = MergedWrite()
        for _ in range(HITS_PER_COMMIT):
            who = rng.randrange(visitors)
            steps = [rng.choice(events) for _ in range(BATCH_EVENTS if mode == "batch" else 1)]
            started = time.process_time()
            visitor = Visitor.from_bytes(states[who]) if who in states else Visitor()
            increments = new_increments()
            count_batch(visitor, _values(who) if mode == "batch" else [], steps, WHEN + commit, increments)
            states[who] = visitor.to_bytes()
            counted_at = time.process_time()
            merged.add(WriteBatch(SCOPE, increments=increments))
            if measured:
                spent["counting"] += counted_at - started
                spent["the commit's merge"] += time.process_time() - counted_at
            counted += len(steps)
        started = time.process_time()
        pickle.dumps(merged.rows, protocol=pickle.HIGHEST_PROTOCOL)
        pickled_at = time.process_time()
        layers[-1].add(commit + 1, merged.rows)
        if measured:
            spent["pickling the journal entry"] += pickled_at - started
            spent["the layer's"] += time.process_time() - pickled_at
        if commit % COMMITS_PER_LAYER == COMMITS_PER_LAYER - 1:
            layers.append(Unfolded(commit + 1))
    found = sum(layer.rows.get((SCOPE, event_row(event)), {}).get(TOTAL, 0) for layer in layers for event in events)
    if found != counted:
        raise SystemExit(f"the layers hold {found} events, {counted} were counted")
    return {part: seconds / (commits * HITS_PER_COMMIT) for part, seconds in spent.items()}, counted


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cell_path", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["event", "batch"], default="batch")
    parser.add_argument("--visitors", type=int, default=1000)
    parser.add_argument("--commits", type=int, default=400, help="measured commits, after as many unmeasured")
    options = parser.parse_args(argv)
    per_part, counted = run(options.mode, options.visitors, options.commits)
    *path, journal = (per_part[part] * 1e6 for part in PARTS)
    parts = ", ".join(f"{part} {micros:.1f}" for part, micros in zip(PARTS[:-1], path, strict=True))
    print(
        f"cell path, {options.mode}: {sum(path):.1f} µs CPU per hit "
        f"({options.commits * HITS_PER_COMMIT:,} hits measured; all {counted:,} events in the layers): "
        f"{parts}; {PARTS[-1]} {journal:.1f} more"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
