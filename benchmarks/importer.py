"""The operator's import, as the benchmarks run it: ``python -m hiitrack.admin import``, timed whole.

A subprocess, as an operator runs it: the time includes its start-up and
the reading and checking of the file.  Tests: tests/test_history_cost.py.
"""

import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Imported", "import_file"]


@dataclass(frozen=True)
class Imported:
    """One import: its seconds, the events it applied and its last progress line."""

    seconds: float
    events: int
    summary: str

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def import_file(uri: str, user: str, bucket: str, path: Path) -> Imported:
    """Apply the NDJSON hits of `path` to USER/BUCKET of the store at `uri`; exits if the import fails."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "hiitrack.admin", "import", "--store", uri, f"{user}/{bucket}", str(path)],
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    summary = (done.stderr.replace("\r", "\n").strip().splitlines()[-1:] or [""])[0]
    if done.returncode != 0:
        raise SystemExit(f"import failed ({done.returncode}): {done.stderr[-2000:]}")
    applied = re.search(r"(\d+) events applied", summary)
    return Imported(elapsed, int(applied.group(1)) if applied else 0, summary)
