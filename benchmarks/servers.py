"""The processes under test, on free loopback ports: the floor, HiiTrack, nginx.

Each is a subprocess started with this checkout on its PYTHONPATH and logs
in the run's temporary folder, stopped with SIGTERM at the end of its phase.
Tests: tests/test_bench_smoke.py.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from benchmarks.client import METRICS_AUTH
from benchmarks.templates import render
from hiitrack.tap import METRICS_AUTH_VARIABLE

__all__ = [
    "CACHE_ROOT",
    "NODE_PID",
    "Server",
    "cpu_seconds",
    "drop_keyspaces",
    "free_port",
    "scratch_store",
    "seconds_since_start",
    "start_floor",
    "start_hiitrack",
    "start_nginx",
]

ROOT = Path(__file__).resolve().parent.parent
CACHE_ROOT = Path(os.environ.get("HIITRACK_CACHE", Path.home() / ".cache" / "hiitrack"))
"""The cache root of scripts/cassandra (HIITRACK_CACHE): its node and cluster, and the bench's data."""
NODE_PID = CACHE_ROOT / "cassandra" / "cassandra.pid"
"""The pid file of the node of scripts/cassandra."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the process's name: field 3 first."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system, all threads) process `pid` has used so far, from /proc."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def seconds_since_start(pid: int) -> float:
    """How long process `pid` has run, from /proc (field 22: its start, in clock ticks after boot)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return uptime - int(_stat(pid)[19]) / os.sysconf("SC_CLK_TCK")


def _wait_for_port(port: int, process: subprocess.Popen, log: Path, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}):\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the server did not listen on {port} within {seconds:.0f}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return ""


def _env(root: Path = ROOT) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    # The operator's secret for /metrics: never on the command line.
    env[METRICS_AUTH_VARIABLE] = METRICS_AUTH
    return env


class Server:
    """A subprocess listening on a loopback port; stopped on exit."""

    def __init__(self, command: list[str], port: int, log: Path, cwd: Path, root: Path = ROOT) -> None:
        self.port = port
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=_env(root))
        try:
            _wait_for_port(port, self.process, log)
        except BaseException:
            self.stop()
            raise

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_floor(work: Path, lean: bool = False) -> Server:
    """The floor (benchmarks/floor.py); `lean`: without Twisted's form parsing."""
    port = free_port()
    name = "lean-floor" if lean else "floor"
    command = [sys.executable, "-m", "benchmarks.floor", str(port), str(work / f"{name}.log")]
    return Server(command + ["--lean"] * lean, port, work / f"{name}.out", work)


def start_hiitrack(
    work: Path, store: str, name: str, options: Sequence[str] = (), preload: Sequence[str] = (), root: Path = ROOT
) -> Server:
    """`twistd hiitrack` on `store` with more `options`, logging to `name`.log in `work`; the
    modules of `preload` imported first; HiiTrack as the checkout at `root` has it."""
    port = free_port()
    imports = "".join(f"import {module}; " for module in preload)
    command = [
        sys.executable, "-c", f"{imports}from twisted.scripts.twistd import run; run()",
        "-n", "--pidfile=", "-l", str(work / f"{name}.log"),
        "hiitrack", "--port", f"tcp:{port}:interface=127.0.0.1", "--store", store, *options,
    ]  # fmt: skip
    return Server(command, port, work / f"{name}.out", work, root)


def start_nginx(nginx: str, work: Path, upstreams: list[Server]) -> Server:
    """nginx in front of two servers, routing by visitor like nginx.conf.example."""
    first, second = upstreams
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(render("nginx.conf.tmpl", work=work, port=port, a=first.port, b=second.port))
    return Server([nginx, "-p", str(work), "-c", str(conf)], port, work / "nginx.log", work)


def drop_keyspaces(keyspaces: list[str]) -> None:
    """Drop a run's keyspaces from the node of scripts/cassandra: every live one costs the node heap."""
    if not keyspaces:
        return
    try:
        from cassandra.cluster import Cluster

        cluster = Cluster(["127.0.0.1"], connect_timeout=10)
        session = cluster.connect()
        for keyspace in keyspaces:
            session.execute(f"DROP KEYSPACE IF EXISTS {keyspace}", timeout=60)
        cluster.shutdown()
    except Exception as error:  # cleanup only: report and go on
        print(f"could not drop keyspaces {keyspaces}: {error}", file=sys.stderr)


@contextmanager
def scratch_store(kind: str, prefix: str) -> Iterator[tuple[Path, str]]:
    """A temporary folder for a run's logs and a fresh store: a SQLite file in that folder, or a
    new keyspace on the node of scripts/cassandra; both are gone afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    keyspace = f"bench_{secrets.token_hex(4)}"
    try:
        yield work, f"sqlite:{work / 'bench.db'}" if kind == "sqlite" else f"cassandra://127.0.0.1/{keyspace}"
    finally:
        if kind == "cassandra":
            drop_keyspaces([keyspace])
        shutil.rmtree(work, ignore_errors=True)
