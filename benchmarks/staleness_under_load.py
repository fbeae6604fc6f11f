"""Another process's view under load: ``python -m benchmarks.staleness_under_load``.

The full run times a hit's 200 on the process that journals a SQLite file
to its count in another process's reports at light load, where folds are
short and come every second.  Under saturated batch load folds take long
and come less often (hiitrack/store/write_behind.py), so the other process
falls further behind.  This starts two processes on one file, sends
``wrk``'s batch load to the first for ``--seconds``, and meanwhile times
``--hits`` hits one at a time as the full run does (benchmarks/client.py,
`seen_elsewhere`).  Another version runs from its own checkout, so two
versions compare in alternating runs.
Tests: tests/test_bench_smoke.py.
"""

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.client import create_user, seen_elsewhere
from benchmarks.servers import start_hiitrack
from benchmarks.wrk import Load, run_wrk
from hiitrack.store.write_behind import FOLD_SECONDS

__all__ = ["main"]

USER = "bench"
WARM_SECONDS = 3.0
"""Of the load before the first timed hit."""


def _timed_under_load(work: Path, seconds: float, hits: int) -> tuple[list[float], Load]:
    """Two processes on one file in `work`, `seconds` of batch load on the first, `hits` timed to
    the other meanwhile: their delays in seconds, and the load."""
    store = f"sqlite:{work / 'beside.db'}"
    # The first opens the file first, so it holds the journal lock.
    servers = [start_hiitrack(work, store, "journaling")]
    try:
        servers.append(start_hiitrack(work, store, "beside"))
        create_user(servers[0].port, USER)
        loads: list[Load] = []

        def send_batches() -> None:
            loads.append(run_wrk(work, servers[0].port, mode="batch", prefix=f"/{USER}/load", seconds=seconds))

        sender = threading.Thread(target=send_batches)
        sender.start()
        time.sleep(WARM_SECONDS)
        delays = seen_elsewhere(servers[0].port, servers[1].port, USER, "seen", hits, FOLD_SECONDS)
        sender.join()
    finally:
        for server in servers:
            server.stop()
    (load,) = loads
    return delays, load


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.staleness_under_load", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--seconds", type=float, default=40.0, help="of wrk's batch load on the first process")
    parser.add_argument("--hits", type=int, default=15, help="timed hits, one at a time, during the load")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="staleness-") as directory:
        delays, load = _timed_under_load(Path(directory), options.seconds, options.hits)
    cuts = statistics.quantiles(delays, n=100) if len(delays) > 1 else [delays[0]] * 99
    print(
        f"batch load {load.rate:,.0f} requests/s; {len(delays)} hits, 200 to the other's report:"
        f" p50 {cuts[49] * 1000:,.0f} ms, max {max(delays) * 1000:,.0f} ms"
    )


if __name__ == "__main__":
    main()
