"""What saved exact funnels and the visitor history cost at ingest, each measured against its absence.

``scripts/bench --costs`` runs, per store, the ingest of benchmarks/wrk.py
(event hits, then /batch messages; from 1,000 and from 100,000 visitors)
three times with and three times without, alternating, so that other load
on the machine falls on both sides:

- **funnels**: one server, two buckets: one holds 10 saved exact funnels
  (4 of the 8 event names each, split by `plan`, saved before any hit), the
  other none;
- **history**: two servers, one started with ``--no-history``; afterwards
  the SQLite one must hold no history and the other one every hit;
- **access-log**: three servers, the access log going to twistd's log (the
  default), to a file of its own (``--access-log PATH``), and nowhere
  (``--access-log off``); each of the first two against the third.

The figures are the rate with ÷ the rate without, and the requests per
CPU-second of the server with ÷ without (the verdict: it does not swing
with other load); every run's totals must be exact as in the ingest runs.  Tests: tests/test_bench_smoke.py.
"""

import itertools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from benchmarks.client import basic, create_user, http, recorded
from benchmarks.phases import Bench
from benchmarks.servers import Server, cpu_seconds, start_hiitrack
from benchmarks.workload import BATCH_EVENTS, EVENT_NAMES
from benchmarks.wrk import run_wrk
from hiitrack.web.defaults import ACCESS_LOG_OFF, ACCESS_LOG_TWISTD

__all__ = ["COSTS", "TARGETS", "Costs"]

USER = "bench"
FUNNELS = 10
FUNNEL_STEPS = 4
VISITOR_COUNTS = (1_000, 100_000)
REPEATS = 3
TARGETS = {"funnels": 0.8, "history": 0.9}
MODES = (("event", 1), ("batch", BATCH_EVENTS))


@dataclass(frozen=True)
class Run:
    """One ingest run: requests answered 200, over how many seconds, and the CPU seconds the server used."""

    requests: int
    seconds: float
    cpu: float


Ingest = Callable[[str, int, int], Run]
"""One ingest run of a request shape (mode, events per request) from some visitors."""


class Costs:
    """The with/without runs of one benchmark, writing into the bench's report."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.report = bench.report

    def _ingest(self, kind: str, server: Server, bucket: str, mode: str, per_request: int, visitors: int) -> Run:
        """One checked wrk run into `bucket`."""
        before = recorded(server.port, USER, bucket)
        cpu = cpu_seconds(server.process.pid)
        load = run_wrk(
            self.bench.work,
            server.port,
            mode=mode,
            prefix=f"/{USER}/{bucket}",
            visitors=visitors,
            seconds=self.bench.args.duration,
            seed=self.bench.next_seed(),
        )
        cpu = cpu_seconds(server.process.pid) - cpu
        self.report.check(
            f"{kind} {mode} into {bucket}", load, per_request, recorded(server.port, USER, bucket) - before
        )
        return Run(load.ok, load.window, cpu)

    def _compare(
        self,
        what: str,
        target: float | None,
        kind: str,
        with_it: Ingest,
        without: Ingest,
    ) -> None:
        """Alternate runs without and with, per request shape and visitors.

        A row gives each run's requests/s and their ratio, and the requests
        per CPU-second of the server with ÷ without, which the verdict uses:
        on a shared machine the rate swings with the CPU the server gets,
        the CPU it spends per request does not.
        """
        for (mode, per_request), visitors in itertools.product(MODES, VISITOR_COUNTS):
            runs: dict[bool, list[Run]] = {True: [], False: []}
            for _ in range(REPEATS):
                runs[False].append(without(mode, per_request, visitors))
                runs[True].append(with_it(mode, per_request, visitors))
            rate = {
                side: sum(run.requests for run in each) / sum(run.seconds for run in each)
                for side, each in runs.items()
            }
            per_cpu = {
                side: sum(run.requests for run in each) / sum(run.cpu for run in each) for side, each in runs.items()
            }
            ratio = per_cpu[True] / per_cpu[False]
            self.report.row(
                f"{kind} {mode} ingest, {visitors:,} visitors, with {what} ÷ without",
                f"{' '.join(f'{run.requests / run.seconds:,.0f}' for run in runs[True])} ÷ "
                f"{' '.join(f'{run.requests / run.seconds:,.0f}' for run in runs[False])} requests/s"
                f" = {rate[True] / rate[False]:.2f}; per CPU-second {per_cpu[True]:,.0f} ÷ {per_cpu[False]:,.0f}"
                f" = {ratio:.2f}",
                "" if target is None else f"≥ {target} (per CPU-second)",
                None if target is None else ratio >= target,
            )

    def funnels(self, kind: str) -> None:
        print(f"costs on {kind}: ingest with {FUNNELS} saved exact funnels and without", flush=True)
        server = start_hiitrack(self.bench.work, self.bench.store_uri(kind, f"funnels-{kind}"), f"funnels-{kind}")
        try:
            create_user(server.port, USER)
            for bucket in ("plain", "funnels"):
                status, body = http(server.port, "POST", f"/{USER}/{bucket}", {}, auth=basic(USER))
                if status != 201:
                    raise RuntimeError(f"could not create bucket {bucket}: {status} {body}")
            for number in range(FUNNELS):
                steps = [EVENT_NAMES[(number + step) % len(EVENT_NAMES)] for step in range(FUNNEL_STEPS)]
                query = "&".join(f"event={name}" for name in steps)
                path = f"/{USER}/funnels/funnel/f{number}?{query}"
                status, body = http(server.port, "POST", path, {"property": "plan"}, auth=basic(USER))
                if status != 201:
                    raise RuntimeError(f"could not save funnel f{number}: {status} {body}")
            self._compare(
                f"{FUNNELS} saved exact funnels",
                TARGETS["funnels"],
                kind,
                partial(self._ingest, kind, server, "funnels"),
                partial(self._ingest, kind, server, "plain"),
            )
        finally:
            server.stop()

    def history(self, kind: str) -> None:
        print(f"costs on {kind}: ingest with the visitor history and without (--no-history)", flush=True)
        uris = {kept: self.bench.store_uri(kind, f"history-{kind}-{kept}") for kept in (True, False)}
        servers: dict[bool, Server] = {}
        try:
            for kept, uri in uris.items():
                options = [] if kept else ["--no-history"]
                servers[kept] = start_hiitrack(self.bench.work, uri, f"history-{kind}-{kept}", options)
                create_user(servers[kept].port, USER)
            self._compare(
                "the history",
                TARGETS["history"],
                kind,
                partial(self._ingest, kind, servers[True], "site"),
                partial(self._ingest, kind, servers[False], "site"),
            )
        finally:
            for server in servers.values():
                server.stop()
        if kind == "sqlite":
            self._check_history_kept(uris)

    def access_log(self, kind: str) -> None:
        print(f"costs on {kind}: ingest with the access log in twistd's log, in its own file, and off", flush=True)
        destinations = {
            "twistd": ACCESS_LOG_TWISTD,
            "file": str(self.bench.work / f"access-{kind}.log"),
            "off": ACCESS_LOG_OFF,
        }
        servers: dict[str, Server] = {}
        try:
            for name, destination in destinations.items():
                uri = self.bench.store_uri(kind, f"access-{kind}-{name}")
                options = ["--access-log", destination]
                servers[name] = start_hiitrack(self.bench.work, uri, f"access-{kind}-{name}", options)
                create_user(servers[name].port, USER)
            for name, what in (("twistd", "the access log in twistd's log"), ("file", "the access log in a file")):
                self._compare(
                    what,
                    None,
                    kind,
                    partial(self._ingest, kind, servers[name], "site"),
                    partial(self._ingest, kind, servers["off"], "site"),
                )
        finally:
            for server in servers.values():
                server.stop()

    def _check_history_kept(self, uris: dict[bool, str]) -> None:
        for kept, uri in uris.items():
            with sqlite3.connect(Path(uri.removeprefix("sqlite:"))) as connection:
                hits = connection.execute("SELECT COUNT(*) FROM hits").fetchone()[0]
            if bool(hits) != kept:
                self.report.failures.append(
                    f"the server {'with' if kept else 'without'} the history stored {hits} hits"
                )


COSTS: dict[str, Callable[[Costs, str], None]] = {
    "funnels": Costs.funnels,
    "history": Costs.history,
    "access-log": Costs.access_log,
}
"""What ``--costs`` can measure, by name."""
