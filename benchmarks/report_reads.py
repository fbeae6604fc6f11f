"""Each kind of report read over HTTP, one version against another: ``python -m benchmarks.report_reads
[--store sqlite|cassandra] [--against CHECKOUT] [--visitors N] [--requests N] [--rounds N]``.

A server of this checkout loads one bucket (each visitor one batch of 1 to
6 of 6 events, a ``plan`` of 50 values and a ``country`` of 20) and saves a
3-step funnel split by ``plan``; once its backfill is done the server is
stopped.  Then, in rounds, a fresh server reads five reports of that store,
each `--requests` times one after another on one kept-alive connection:
the bucket's overview, an event report split by ``plan``, the ``plan``
property report, the saved funnel (pairwise and exact) and one visitor's
history.  It prints the median milliseconds of each report in each round.
With ``--against`` a server of that checkout (its HiiTrack first on the
module path) takes a turn in each round on the same store, the two in
alternating order: two read paths compared in one run, on a machine whose
speed moves by half within minutes.  The store is removed at the end.  It
exits 1 if a report is not answered 200 or the funnel's first step does
not count the visitors the load gave it.  Loopback only.  Tests:
tests/test_bench_smoke.py.
"""

import argparse
import base64
import random
import statistics
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlencode

import ujson

from benchmarks.client import basic, create_user, http
from benchmarks.servers import ROOT, scratch_store, start_hiitrack

__all__ = ["main"]

USER, BUCKET = "bench", "reads"
EVENTS = ["A", "B", "C", "D", "E", "F"]
FUNNEL = ["A", "B", "C"]
REPORTS = {
    "overview": f"/{USER}/{BUCKET}",
    "event by plan": f"/{USER}/{BUCKET}/event/A?property=plan",
    "property": f"/{USER}/{BUCKET}/property/plan",
    "saved funnel": f"/{USER}/{BUCKET}/funnel/f",
    "visitor": f"/{USER}/{BUCKET}/visitor/v0",
}
WARM_UP = 20
"""Reads of each report before the timed ones: the process's caches filled."""
BACKFILL_SECONDS = 120.0


def load(work: Path, store: str, visitors: int) -> None:
    """The bucket, through a server of this checkout stopped after; raises if the funnel miscounts."""
    rng = random.Random(visitors)
    server = start_hiitrack(work, store, "load")
    try:
        create_user(server.port, USER)
        first_step = 0
        for visitor in range(visitors):
            events = rng.sample(EVENTS, rng.randint(1, len(EVENTS)))
            first_step += FUNNEL[0] in events
            properties = [["plan", f"p{rng.randrange(50)}"], ["country", f"c{rng.randrange(20)}"]]
            message = base64.b64encode(ujson.dumps([events, properties]).encode()).decode()
            form = {"visitor_id": f"v{visitor}", "message": message}
            status, body = http(server.port, "POST", f"/{USER}/{BUCKET}/batch", form)
            if status != 200:
                raise SystemExit(f"a load's batch answered {status}: {body}")
        steps = urlencode([*(("event", step) for step in FUNNEL), ("property", "plan")])
        status, saved = _request(server.port, "POST", f"/{USER}/{BUCKET}/funnel/f", steps)
        if status != 201:
            raise SystemExit(f"saving the funnel answered {status}: {saved!r}")
        deadline = time.monotonic() + BACKFILL_SECONDS
        while True:
            status, report = http(server.port, "GET", REPORTS["saved funnel"], auth=basic(USER))
            if status != 200:
                raise SystemExit(f"the saved funnel answered {status}: {report}")
            conversion = report["conversion"]
            if conversion["backfill"]["state"] == "done":
                break
            if time.monotonic() > deadline:
                raise SystemExit(f"the funnel's backfill was not done in {BACKFILL_SECONDS:.0f} s")
            time.sleep(0.1)
        counted = conversion["visitors"][0]
        if counted != first_step:
            raise SystemExit(f"{first_step:,} visitors did {FUNNEL[0]}, the funnel counts {counted:,}")
    finally:
        server.stop()


def _request(port: int, method: str, path: str, form: str | None = None) -> tuple[int, bytes]:
    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        return _ask(connection, method, path, form)
    finally:
        connection.close()


def _ask(connection: HTTPConnection, method: str, path: str, form: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": basic(USER)}
    if form is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    connection.request(method, path, form, headers)
    answer = connection.getresponse()
    return answer.status, answer.read()


def timed(work: Path, store: str, root: Path, requests: int) -> dict[str, float]:
    """Each report's median ms, read by a fresh server of the checkout at `root`."""
    server = start_hiitrack(work, store, "reads", root=root)
    connection = HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        medians = {}
        for report, path in REPORTS.items():
            times = []
            for at in range(WARM_UP + requests):
                asked = time.perf_counter()
                status, body = _ask(connection, "GET", path)
                if status != 200:
                    raise SystemExit(f"{root}: {report} answered {status}: {body[:300]!r}")
                if at >= WARM_UP:
                    times.append((time.perf_counter() - asked) * 1000)
            medians[report] = statistics.median(times)
        return medians
    finally:
        connection.close()
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report_reads", description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["sqlite", "cassandra"], default="sqlite")
    parser.add_argument("--against", type=Path, help="another checkout, read in turn with this one")
    parser.add_argument("--visitors", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=300, help="timed reads of each report in a turn")
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args(argv)
    versions = {"this": ROOT} | ({"against": options.against.resolve()} if options.against else {})
    medians: dict[str, list[dict[str, float]]] = {name: [] for name in versions}
    with scratch_store(options.store, "report-reads-") as (work, store):
        load(work, store, options.visitors)
        for round_ in range(options.rounds):
            for name in sorted(versions, reverse=round_ % 2 == 1):
                medians[name].append(timed(work, store, versions[name], options.requests))
    print(
        f"report reads, {options.store}, {options.visitors:,} visitors: median ms of {options.requests} reads "
        f"in each of {options.rounds} rounds"
    )
    for report in REPORTS:
        turns = "   ".join(f"{name} " + " / ".join(f"{m[report]:.2f}" for m in medians[name]) for name in versions)
        print(f"{report}: {turns}")


if __name__ == "__main__":
    main()
