"""Real `twistd -n hiitrack` processes for tests that need a whole server:
crash and restart, fuzzing from another process, a cluster behind nginx,
account changes seen by another process; and a blocking JSON call to one.
Used by tests/test_durability.py, tests/test_fuzz.py, tests/test_scale_out.py,
tests/test_accounts_processes.py and tests/test_cluster.py."""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
TWISTD = shutil.which("twistd", path=str(Path(sys.executable).parent)) or shutil.which("twistd") or "twistd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def call(
    url: str,
    data: dict | None = None,
    *,
    method: str | None = None,
    auth: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict]:
    """One request, the form `data` as its body and `auth` ("user:password") as Basic
    credentials; the status and the JSON answer, errors included ({} for an empty body)."""
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


T = TypeVar("T")

FOLDED_WITHIN = 15.0
"""Seconds within which a process's hits reach the other processes' reports: the process that
journals counters (every Cassandra process, one SQLite process per file) folds them into the
counter cells about once a second, at least every 5 s."""


def settled(read: Callable[[], T], expected: T, seconds: float = FOLDED_WITHIN) -> T:
    """`read()` again until it gives `expected` or `seconds` have passed; what it gave last."""
    deadline = time.monotonic() + seconds
    found = read()
    while found != expected and time.monotonic() < deadline:
        found = read()
    return found


class TwistdServer:
    """One server process on a loopback port; `kill` is SIGKILL, no goodbye."""

    def __init__(self, store_uri: str, workdir: Path, options: Sequence[str] = (), writer: str | None = None) -> None:
        """`writer`: the Cassandra journal's name; a restart of a killed server passes the killed one's."""
        self.store_uri = store_uri
        self.workdir = workdir
        self.options = list(options)
        self.writer = writer or f"test-{uuid.uuid4().hex[:12]}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> "TwistdServer":
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        log = open(self.workdir / f"twistd-{self.port}.log", "ab")
        self.process = subprocess.Popen(
            [
                TWISTD,
                "-n",
                "--pidfile=",
                "hiitrack",
                "--port",
                f"tcp:{self.port}:interface=127.0.0.1",
                "--store",
                self.store_uri,
                "--cassandra-writer",
                self.writer,
                *self.options,
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"twistd exited with {self.process.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=2).read()
                return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"twistd did not answer within {timeout} s; see {log.name}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
