"""The two floors side by side: ``python -m benchmarks.floors [--mode event|batch] [--rounds N]
[--seconds N]``.

The ingest ratios of ``python -m benchmarks`` are over issue 14's floor, a
bare twisted.web `Site`, whose requests parse their Content-Type through the
email package for Twisted's own form parsing; HiiTrack turns that parsing
off.  This runs that floor and the lean one (the same resource without it,
benchmarks/floor.py ``--lean``) in turn, a fresh process each run, under the
benchmark's load (benchmarks/wrk.py, 16 connections, 1,000 visitors), and
prints each run's requests/s and the lean floor's mean over the floor's: by
how much the table's ratios would shrink over the lean floor.  Loopback
only.  Tests: tests/test_bench_smoke.py.
"""

import argparse
import statistics
import tempfile
from pathlib import Path

from benchmarks.servers import start_floor
from benchmarks.wrk import run_wrk

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floors", description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("event", "batch"), default="event")
    parser.add_argument("--rounds", type=int, default=3, help="of one run of each floor, the floor first")
    parser.add_argument("--seconds", type=float, default=10.0, help="of wrk's load in each run")
    options = parser.parse_args(argv)
    rates: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="floors-") as directory:
        work = Path(directory)
        for _ in range(options.rounds):
            for lean in (False, True):
                floor = start_floor(work, lean=lean)
                try:
                    load = run_wrk(work, floor.port, mode=options.mode, prefix="/floor/b", seconds=options.seconds)
                finally:
                    floor.stop()
                if load.bad or not load.ok:
                    raise SystemExit(f"the {'lean ' * lean}floor answered {load.bad} requests with an error")
                rates[lean].append(load.rate)
    for lean, name in ((False, "floor"), (True, "lean floor")):
        print(f"{options.mode}, requests/s in turn: {name} {', '.join(f'{rate:,.0f}' for rate in rates[lean])}")
    print(f"{options.mode}: lean floor ÷ floor = {statistics.mean(rates[True]) / statistics.mean(rates[False]):.2f}")


if __name__ == "__main__":
    main()
