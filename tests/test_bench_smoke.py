"""CI's short run of the benchmark: ingest must not lose events.

Runs ``python -m hiitrack.bench --quick`` (seconds, SQLite only) as a
subprocess.  The bench compares wrk's count of 200 answers with the totals
the server reports and exits 1 when they differ, so this fails if an event
answered 200 is not counted.  Needs Debian's ``wrk``.  The full benchmark is
described in docs/performance.md.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
def test_quick_bench_counts_every_event() -> None:
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk", pytrace=False)
    done = subprocess.run(
        [sys.executable, "-m", "hiitrack.bench", "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "every event answered 200 was counted" in done.stdout
