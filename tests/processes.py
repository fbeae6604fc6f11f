"""Real `twistd -n hiitrack` processes for tests that need a whole server:
crash and restart, fuzzing from another process, a cluster behind nginx.
Used by tests/test_durability.py, tests/test_fuzz.py, tests/test_scale_out.py
and tests/test_cluster.py."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TWISTD = shutil.which("twistd", path=str(Path(sys.executable).parent)) or shutil.which("twistd") or "twistd"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TwistdServer:
    """One server process on a loopback port; `kill` is SIGKILL, no goodbye."""

    def __init__(self, store_uri: str, workdir: Path, options: Sequence[str] = ()) -> None:
        self.store_uri = store_uri
        self.workdir = workdir
        self.options = list(options)
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
