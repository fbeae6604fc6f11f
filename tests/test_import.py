"""Import of NDJSON hits: the same counts as over HTTP, idempotent with insert ids, bad lines reported.

A bucket fed over HTTP and one fed by importing the same hits (shuffled in
the file) give the same reports, on both stores, also when the hits are
merged in memory and flushed in bulk, as the command does.  The command line runs on
a SQLite file.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest
import pytest_twisted

from hiitrack.app import HiiTrack
from hiitrack.importing import import_hits
from hiitrack.store.buffering import Buffered
from tests.helpers import new_user
from tests.test_history import DAY, EVENTS, VALUES, _history, _hit, _reports, _scenario

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _lines(hits: list[tuple], with_ids: bool = True) -> list[str]:
    lines = []
    for n, (visitor, events, props, when) in enumerate(hits):
        hit = {"visitor_id": visitor, "time": when, "events": events, "properties": dict(props)}
        if with_ids:
            hit["insert_id"] = f"hit-{n}"
        lines.append(json.dumps(hit))
    return lines


@pytest_twisted.ensureDeferred
async def test_an_import_counts_as_the_same_hits_over_http(server, user_name):
    client = server.client
    await new_user(client, user_name)
    hits = [hit for hit in _scenario(7) if len({name for name, _ in hit[2]}) == len(hit[2])]
    for visitor, events, props, when in hits:
        assert (await _hit(client, user_name, "http", visitor, events, props, when)).status == 200
    lines = _lines(hits)
    # Visitors regrouped (each one's hits keep their order: equal times stay in file order).
    shuffled = sorted(lines, key=lambda line: json.loads(line)["visitor_id"], reverse=True)
    report = await import_hits(server.app, user_name, "imported", shuffled, skip_bad=False)
    assert (report.applied, report.duplicates, report.refused) == (len(hits), 0, [])
    assert report.events == sum(len(hit[1]) for hit in hits)
    expected = await _reports(client, user_name, "http", EVENTS, list(VALUES))
    assert await _reports(client, user_name, "imported", EVENTS, list(VALUES)) == expected
    for visitor in ["v0", "v3"]:
        imported = (await _history(client, user_name, "imported", visitor)).json
        assert imported == (await _history(client, user_name, "http", visitor)).json
    again = await import_hits(server.app, user_name, "imported", lines, skip_bad=False)
    assert (again.applied, again.duplicates) == (0, len(hits))
    assert await _reports(client, user_name, "imported", EVENTS, list(VALUES)) == expected
    # The operator's command merges hits in memory and flushes them in bulk (every 5 hits here).
    buffered = Buffered(server.app.store, flush_batches=5)
    bulk = HiiTrack(buffered, clock=server.clock)
    await bulk.accounts.start()
    report = await import_hits(bulk, user_name, "bulk", shuffled, skip_bad=False)
    await buffered.flush()
    assert (report.applied, report.duplicates) == (len(hits), 0)
    assert await _reports(client, user_name, "bulk", EVENTS, list(VALUES)) == expected
    again = await import_hits(bulk, user_name, "bulk", lines, skip_bad=False)
    assert (again.applied, again.duplicates) == (0, len(hits))


BAD = [
    "not json",
    "[1]",
    '{"visitor_id": "v", "time": -1}',
    '{"visitor_id": "v", "time": "soon"}',
    '{"visitor_id": "v", "time": 1e30}',
    '{"visitor_id": 5, "time": 1}',
    '{"visitor_id": "v", "time": 1, "events": "a"}',
    '{"visitor_id": "v", "time": 1, "properties": [["p", 1]]}',
    '{"visitor_id": "v", "time": 1, "colour": "red"}',
    '{"visitor_id": "v", "time": 1, "events": [""]}',
]


@pytest_twisted.ensureDeferred
async def test_a_visitors_hits_are_applied_in_time_order(server, user_name):
    await new_user(server.client, user_name)
    t = 1_600_000_000
    lines = [json.dumps({"visitor_id": "v", "time": t + delay, "events": [f"at {delay}"]}) for delay in (9, 0, 5)]
    report = await import_hits(server.app, user_name, "site", lines, skip_bad=False)
    assert report.applied == 3
    events = (await _history(server.client, user_name, "site", "v")).json["events"]
    assert events == [[t, "at 0"], [t + 5, "at 5"], [t + 9, "at 9"]]


@pytest_twisted.ensureDeferred
async def test_bad_lines_stop_or_are_skipped(server, user_name):
    client = server.client
    await new_user(client, user_name)
    good = json.dumps({"visitor_id": "v", "time": 1_600_000_000, "events": ["a"]})
    lines = [good, *BAD, good]
    stopped = await import_hits(server.app, user_name, "site", lines, skip_bad=False)
    assert (stopped.applied, [line for line, _ in stopped.refused]) == (0, [2])
    assert (await _history(client, user_name, "site", "v")).status == 404
    skipped = await import_hits(server.app, user_name, "site", lines, skip_bad=True)
    assert [line for line, _ in skipped.refused] == list(range(2, 2 + len(BAD)))
    assert all(reason for _, reason in skipped.refused)
    assert skipped.applied == 2
    assert (await _history(client, user_name, "site", "v")).json["events"] == [[1_600_000_000, "a"]] * 2


def test_the_import_command(tmp_path, user_name):
    path = tmp_path / "x.db"
    environment = {**os.environ, "PYTHONPATH": ROOT}
    command = [sys.executable, "-m", "hiitrack.admin", "import", "--store", f"sqlite:{path}", f"{user_name}/b"]
    lines = "\n".join(_lines([("v", ["a", "b"], [], 1_600_000_000)] * 3, with_ids=False)) + "\n"
    missing = subprocess.run([*command, "-"], env=environment, input=lines, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and f"no user {user_name}" in missing.stderr
    make_user = (
        "import sys; from twisted.internet import defer, task; from hiitrack.app import HiiTrack;"
        " from hiitrack.store import open_store\n"
        "async def go(reactor):\n"
        "    app = HiiTrack(open_store(sys.argv[1])); await app.start()\n"
        "    await app.accounts.create_user(sys.argv[2], 'correct horse'); await app.stop()\n"
        "task.react(lambda reactor: defer.ensureDeferred(go(reactor)))\n"
    )
    made = subprocess.run([sys.executable, "-c", make_user, f"sqlite:{path}", user_name], env=environment, timeout=60)
    assert made.returncode == 0
    done = subprocess.run(
        [*command, "-"], env=environment, input=lines + "oops\n", capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "line 4: not valid JSON" in done.stderr
    done = subprocess.run(
        [*command, "--on-error", "skip", "-"],
        env=environment,
        input=lines + "oops\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "3 hits, 6 events applied, 0 duplicates, 1 refused" in done.stderr
    (tmp_path / "hits.ndjson").write_text(lines)
    done = subprocess.run(
        [*command, str(tmp_path / "hits.ndjson")], env=environment, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "3 hits, 6 events applied" in done.stderr


def _many_hits(visitors: int, hits_each: int) -> list[tuple]:
    rng = random.Random(11)
    start = int(time.time()) - 10 * DAY
    return [
        (
            f"v{visitor}",
            [rng.choice(EVENTS) for _ in range(rng.randrange(1, 4))],
            [[prop, rng.choice(values)] for prop, values in VALUES.items() if rng.random() < 0.3],
            start + visitor * 60 + hit,
        )
        for visitor in range(visitors)
        for hit in range(hits_each)
    ]


def _stored(stderr: bytes) -> int:
    """The last "N hits stored" of the command's progress."""
    found = re.findall(rb"(\d+) hits stored", stderr)
    return int(found[-1]) if found else 0


@pytest.mark.parametrize("store_kind", ["sqlite"])
@pytest_twisted.ensureDeferred
async def test_an_import_killed_midway_is_completed_by_importing_again(server, user_name, tmp_path):
    """SQLite: a flush is one transaction, so a killed import leaves whole hits, and insert ids fill the rest."""
    client = server.client
    await new_user(client, user_name)
    hits = _many_hits(400, 8)
    (tmp_path / "hits.ndjson").write_text("\n".join(_lines(hits)) + "\n")
    command = [
        sys.executable,
        "-m",
        "hiitrack.admin",
        "import",
        "--store",
        f"sqlite:{tmp_path}/hiitrack.db",
        "--flush-hits",
        "50",
        f"{user_name}/killed",
        str(tmp_path / "hits.ndjson"),
    ]
    environment = {**os.environ, "PYTHONPATH": ROOT}
    importing = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE)
    assert importing.stderr is not None
    progress = b""
    # A whole flush of hits: making the bucket (a compare-and-set create) flushes what was merged
    # before it, alone, and a kill right after that would leave no hit stored.
    while _stored(progress) < 50:
        more = importing.stderr.read1(4096)
        assert more, f"the import ended before its first flush: {progress!r}"
        progress += more
    importing.send_signal(signal.SIGKILL)
    importing.wait(timeout=60)
    again = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    applied, duplicates = map(
        int, re.search(r"(\d+) hits, \d+ events applied, (\d+) duplicates", again.stderr).groups()
    )
    # Killed midway: some hits were stored before, the rest only now, none twice.
    assert 0 < duplicates < len(hits) and applied + duplicates == len(hits), again.stderr
    whole = await import_hits(server.app, user_name, "whole", _lines(hits), skip_bad=False)
    assert whole.applied == len(hits)
    expected = await _reports(client, user_name, "whole", EVENTS, list(VALUES))
    assert await _reports(client, user_name, "killed", EVENTS, list(VALUES)) == expected
    for visitor in ["v0", "v199", "v399"]:
        killed = (await _history(client, user_name, "killed", visitor)).json
        assert killed == (await _history(client, user_name, "whole", visitor)).json
