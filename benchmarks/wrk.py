"""wrk, the load generator: one run of load.lua.tmpl and what it counted.

The Lua script stops sending tracking requests at its deadline (or quota),
keeps its connections on a cheap ``GET /`` until every tracking request in
flight is answered, then prints its counts and stops: so its count of 200
answers is exact, and the run's rate covers the tracking window only.
Tests: tests/test_bench_smoke.py.
"""

import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from benchmarks.templates import render
from benchmarks.workload import BATCH_EVENTS, EVENT_NAMES, message_pool

__all__ = ["CONNECTIONS", "Load", "combined", "run_wrk"]

CONNECTIONS = 16
# Line prefixes of the script's output: one thread's counts, and wrk's summary.
DONE = "THREAD-DONE"
RESULT = "BENCH-RESULT "


@dataclass
class Load:
    """What one wrk run did, from its Lua script's counts."""

    sent: int = 0
    answered: int = 0
    ok: int = 0
    bad: int = 0
    window: float = 0.0
    requests: int = 0
    duration_us: int = 0
    p50_us: int = 0
    p99_us: int = 0
    all_done: bool = False

    @property
    def rate(self) -> float:
        """Answered 200s per second over the tracking window."""
        return self.ok / self.window if self.window > 0 else 0.0

    @property
    def report_rate(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0


def combined(loads: list[Load]) -> Load:
    """Several runs on one bucket as one, for the exact-count check of their total."""
    return Load(
        sent=sum(load.sent for load in loads),
        answered=sum(load.answered for load in loads),
        ok=sum(load.ok for load in loads),
        bad=sum(load.bad for load in loads),
        window=sum(load.window for load in loads),
        all_done=all(load.all_done for load in loads),
    )


def _lua_strings(items: list[str]) -> str:
    return ", ".join(json.dumps(item) for item in items)


def run_wrk(
    work: Path,
    port: int,
    *,
    mode: str,
    prefix: str = "",
    visitors: int = 1000,
    seconds: float = 10.0,
    quota: int = 0,
    connections: int = CONNECTIONS,
    report: str = "",
    auth: str = "",
    seed: int = 1,
    cap: float = 120.0,
    events_per_message: int = BATCH_EVENTS,
    visitor_in_query: bool = False,
    insert_ids: bool = False,
) -> Load:
    """One wrk run against 127.0.0.1:port, bounded by `cap` seconds past its work."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    pool = message_pool(seed, events_per_message)
    script = render(
        "load.lua.tmpl",
        mode=mode,
        prefix=prefix,
        visitors=visitors,
        seconds=f"{seconds:f}",
        quota=quota,
        names=_lua_strings([quote(name, safe="") for name in EVENT_NAMES]),
        messages=", ".join("{" + _lua_strings(messages) + "}" for messages in pool),
        report=report,
        auth=auth,
        seed=seed,
        in_query="true" if visitor_in_query else "false",
        insert_ids="true" if insert_ids else "false",
        done=DONE,
        result=RESULT,
    )
    path = work / f"{mode}-{seed}.lua"
    path.write_text(script)
    # wrk sleeps for its whole -d whatever its threads do: each thread of the
    # script reports when its tracking requests are all answered, and wrk is
    # stopped then.
    limit = (seconds if quota == 0 else cap) + cap
    threads = 1
    duration = f"{max(1, round(seconds))}s" if mode == "report" else f"{int(limit)}s"
    command = [
        wrk, "-t", str(threads), "-c", str(connections), "-d", duration, "--timeout", "30s",
        "-s", str(path), f"http://127.0.0.1:{port}/",
    ]  # fmt: skip
    finished, lines = _watch(command, threads, limit + 30)
    if len(finished) == threads:
        return Load(
            sent=sum(item["sent"] for item in finished),
            answered=sum(item["answered"] for item in finished),
            ok=sum(item["ok"] for item in finished),
            bad=sum(item["bad"] for item in finished),
            window=max(item["last"] for item in finished) - min(item["started"] for item in finished),
            all_done=True,
        )
    results = [line[len(RESULT) :] for line in lines if line.startswith(RESULT)]
    if not results:
        raise RuntimeError("wrk printed no result:\n" + "\n".join(lines[-20:]))
    data = json.loads(results[-1])
    return Load(
        sent=data["sent"],
        answered=data["answered"],
        ok=data["ok"],
        bad=data["bad"],
        window=data["window"],
        requests=data["requests"],
        duration_us=data["duration_us"],
        p50_us=data["p50_us"],
        p99_us=data["p99_us"],
    )


def _watch(command: list[str], threads: int, seconds: float) -> tuple[list[dict], list[str]]:
    """Run wrk until each of its `threads` reported done (then stop it) or it ends.

    Returns the threads' reports and all of wrk's output lines.
    """
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    finished: list[dict] = []
    output = b""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    give_up = time.monotonic() + seconds
    try:
        while time.monotonic() < give_up and len(finished) < threads:
            if not selector.select(timeout=1.0):
                if process.poll() is not None:
                    break
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                break
            output += chunk
            finished = [json.loads(line[len(DONE) :]) for line in output.decode().splitlines() if line.startswith(DONE)]
    finally:
        selector.close()
        if len(finished) == threads and process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=max(1.0, give_up - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        output += process.stdout.read()
        process.stdout.close()
    return finished, output.decode(errors="replace").splitlines()
