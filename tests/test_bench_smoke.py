"""CI's short run of the benchmark: ingest must not lose events.

Runs ``python -m benchmarks --quick`` (benchmarks/, seconds, SQLite only) as
a subprocess.  The bench compares wrk's count of 200 answers with the totals
the server reports and exits 1 when they differ, so this fails if an event
answered 200 is not counted (that check is also tested alone, below); the
hits timed one at a time (the light load) are checked so too.
``--costs --exact --quick`` runs the same way: its exact funnel must equal
ClickHouse's ``windowFunnel`` (chdb) on the same events, and every ingest
run's totals must be exact.  Needs Debian's ``wrk``.  The full benchmark is
described in docs/performance.md.
"""

import random
import re
import shutil
import subprocess
import sys
from http.client import HTTPConnection
from pathlib import Path
from unittest import mock

import pytest
from cassandra.cluster import Cluster
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.web import http as twisted_http

from benchmarks.client import create_user, http, recorded
from benchmarks.floor import floor_site
from benchmarks.machine_speed import SLOW, by_speed
from benchmarks.profile import innermost_summary, spy_summary
from benchmarks.report import Report
from benchmarks.servers import start_floor, start_hiitrack
from benchmarks.tail import Span, taken_apart
from benchmarks.wrk import Load, run_wrk
from hiitrack.native import build

ROOT = Path(__file__).resolve().parent.parent


def ran(module: str, *arguments: str, timeout: float = 150) -> str:
    """The output of ``python -m module arguments`` from the checkout's root; it must exit 0."""
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.timeout(180)
def test_quick_bench_counts_every_event() -> None:
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk", pytrace=False)
    output = ran("benchmarks", "--quick")
    assert "every event answered 200 was counted" in output
    assert "sqlite light load, one hit at a time (200 hits" in output
    # The report says which build of the hot path its servers ran (setup.py).
    assert f"the hot path {build()}" in output
    # Each ingest figure's floor, lean floor and store runs alternate (ABBA), and each ratio is of
    # their means.
    for mode in ("event", "batch"):
        line = next(line for line in output.splitlines() if f"sqlite {mode} 1,000 visitors: requests/s" in line)
        found = re.fullmatch(
            r".*: ([\d,]+) \([\d,]+\) ÷ ([\d,]+) = ([\d.]+) \(÷ the lean floor's ([\d,]+) = ([\d.]+)\); "
            r"[\d.]+ requests/commit; runs in turn: ((?:(?:, )?(?:floor|lean floor|store) [\d,]+)+)(?:  \(target .*)?",
            line.strip(),
        )
        assert found, line
        store, floor, ratio, lean, lean_ratio = (float(number.replace(",", "")) for number in found.groups()[:5])
        runs = [run.rsplit(" ", 1) for run in found.group(6).split(", ")]
        assert [which for which, _ in runs] == ["floor", "lean floor", "store", "store", "lean floor", "floor"], line
        rates = {which: [float(rate.replace(",", "")) for its, rate in runs if its == which] for which, _ in runs}
        for which, mean in (("store", store), ("floor", floor), ("lean floor", lean)):
            assert abs(mean - sum(rates[which]) / 2) <= 1, line
        assert abs(ratio - store / floor) <= 0.01 and abs(lean_ratio - store / lean) <= 0.01, line


@pytest.mark.timeout(120)
def test_the_cell_path_counts_every_event_into_the_layers() -> None:
    """`python -m benchmarks.cell_path`: CPU per hit and its parts, and every event counted is in the
    unfolded layers."""
    for mode, events_per_hit in (("batch", 5), ("event", 1)):
        output = ran("benchmarks.cell_path", "--mode", mode, "--commits", "20")
        found = re.fullmatch(
            rf"cell path, {mode}: ([\d.]+) µs CPU per hit \(320 hits measured; all ([\d,]+) events in the layers\): "
            r"counting ([\d.]+), the commit's merge ([\d.]+), the layer's ([\d.]+); "
            r"pickling the journal entry ([\d.]+) more",
            output.strip(),
        )
        assert found, output
        assert float(found.group(1)) > 0
        assert int(found.group(2).replace(",", "")) == 640 * events_per_hit
        # The total is the sum of the path's three parts (each printed to a tenth).
        parts = [float(found.group(group)) for group in (3, 4, 5)]
        assert abs(float(found.group(1)) - sum(parts)) <= 0.2
        assert parts[0] > 0 and float(found.group(6)) >= 0


@pytest.mark.timeout(180)
def test_report_reads_times_each_report_of_two_checkouts_in_turn() -> None:
    """`python -m benchmarks.report_reads`: the saved funnel counts what the load gave it (else it exits 1),
    then each report's median, each checkout in each round."""
    output = ran("benchmarks.report_reads", "--visitors", "60", "--requests", "3", "--rounds", "2", "--against", ".")
    lines = output.strip().splitlines()
    assert lines[0] == "report reads, sqlite, 60 visitors: median ms of 3 reads in each of 2 rounds"
    reports = ["overview", "event by plan", "property", "saved funnel", "visitor"]
    for line, report in zip(lines[1:], reports, strict=True):
        found = re.fullmatch(rf"{report}: this ([\d.]+) / ([\d.]+)   against ([\d.]+) / ([\d.]+)", line)
        assert found and all(float(ms) > 0 for ms in found.groups()), line


@pytest.mark.timeout(120)
def test_report_cpu_times_the_funnel_report_of_an_exactly_counted_load() -> None:
    """`python -m benchmarks.report_cpu`: an exactly counted load (else it exits 1), then CPU and time per report."""
    output = ran("benchmarks.report_cpu", "--events", "2000", "--reports", "3", "--rounds", "2")
    found = re.fullmatch(
        r"funnel report, sqlite, 2,000 events: CPU per report, min / median of 2 rounds of 3: "
        r"([\d.]+) / ([\d.]+) ms; asked to encoded, p50 ([\d.]+) ms \(([\d,]+) bytes of JSON\); "
        r"at the machine's fast speed ([\d.]+) ms \((\d+) of 6\), at its slow speed (none|[\d.]+ ms)",
        output.strip(),
    )
    assert found, output
    assert 0 < float(found.group(1)) <= float(found.group(2))
    assert float(found.group(3)) > 0
    # Every plan's funnel is in the answer: 50 values of 4 steps, far more than an empty report.
    assert int(found.group(4).replace(",", "")) > 100_000
    # The report after the fastest probe is at the fast speed, whatever the machine does.
    assert float(found.group(5)) > 0 and 1 <= int(found.group(6)) <= 6


def test_by_speed_splits_samples_at_the_slow_factor_of_the_fastest_probe() -> None:
    """A sample is slow when its probe took `SLOW` times the fastest probe or more, checked against
    a brute-force split of random samples (the fastest probe's own sample is always fast)."""
    rng = random.Random(7)
    for _ in range(200):
        samples = [(rng.uniform(1, 3), float(index)) for index in range(rng.randint(1, 20))]
        fastest = min(took for took, _ in samples)
        fast, slow = by_speed(samples)
        assert fast == [value for took, value in samples if took / fastest < SLOW]
        assert slow == [value for took, value in samples if took / fastest >= SLOW]
        assert fast and len(fast) + len(slow) == len(samples)
    assert by_speed([]) == ([], [])


def test_machine_speed_prints_the_probe_s_times_over_a_while() -> None:
    """`python -m benchmarks.machine_speed`: how many probes, their min <= p50 <= max, the slow share."""
    output = ran("benchmarks.machine_speed", "--seconds", "1", "--every", "0.2", "--loops", "2000")
    found = re.fullmatch(
        r"2,000 loops, (\d+) probes over 1 s: CPU min / p50 / max ([\d.]+) / ([\d.]+) / ([\d.]+) ms; "
        r"slow \(≥ 1.3 × the fastest\) (\d+) %(, their p50 [\d.]+ × the fast ones')?",
        output.strip(),
    )
    assert found, output
    assert 4 <= int(found.group(1)) <= 6
    assert float(found.group(2)) <= float(found.group(3)) <= float(found.group(4))
    assert 0 <= int(found.group(5)) < 100
    assert (found.group(6) is None) == (found.group(5) == "0")


@pytest.mark.timeout(180)
def test_funnel_only_reads_the_funnel_and_nothing_else() -> None:
    """`--funnel-only`: the pairwise funnel's load and reads (checked exact), without the floor or ingest:
    a store of each size, loaded on its own, then both read in turn for the speed ratio."""
    output = ran("benchmarks", "--quick", "--funnel-only")
    for events in ("1,000", "10,000"):
        assert f"sqlite loaded {events} events" in output
        assert f"sqlite funnel at {events} events: p50 / p99 (1 connection)" in output
    speed = re.search(r"sqlite funnel speed at 10,000 ÷ at 1,000, in turn \(16 connections; 1 connection\): .+", output)
    assert speed, output
    # At each number of connections: the smaller store, the larger twice, then the smaller again.
    order = re.findall(r"([\d,]+): [\d,]+/s", speed[0])
    assert order == ["1,000", "10,000", "10,000", "1,000"] * 2, speed[0]
    assert "every event answered 200 was counted" in output
    assert "floor" not in output and "ingest" not in output, output


@pytest.mark.timeout(180)
def test_the_light_load_alone_gives_each_kind_of_hit_and_counts_them_all() -> None:
    """`python -m benchmarks.light_load`: p50 <= p90 <= p99 for all hits and each kind, every hit counted,
    also with the fold off (the hits then counted from the unfolded journal) and with insert_ids;
    with new visitors only, every hit is a first; after a batch load, still every hit counted."""
    for option in ([], ["--fold-off"], ["--insert-ids"]):
        output = ran("benchmarks.light_load", "--hits", "300", *option)
        figures = re.findall(r"^(all|first|large|other)(?: \(([\d,]+) hits\))?: p50 / p90 / p99 (.+) ms$", output, re.M)
        assert [kind for kind, _, _ in figures] == ["all", "first", "large", "other"], output
        # 300 hits: every tenth the large visitor's, the first of each of 100 visitors (90 among the rest).
        assert [hits for _, hits, _ in figures[1:]] == ["90", "30", "180"], output
        for _, _, cuts in figures:
            p50, p90, p99 = (float(cut) for cut in cuts.split(" / "))
            assert 0 < p50 <= p90 <= p99
        assert "counted 300 of 300 answered 200" in output
        assert ("(fold off)" in output) == (option == ["--fold-off"])
        assert ("(insert_ids)" in output) == (option == ["--insert-ids"])
    output = ran("benchmarks.light_load", "--hits", "300", "--insert-ids", "--new-visitors")
    assert re.search(r"^first \(300 hits\): p50 / p90 / p99 ", output, re.M), output
    assert "(insert_ids, new visitors)" in output
    assert "counted 300 of 300 answered 200" in output
    # After a batch load on the same server: its hits are in another bucket, the light load's all counted.
    output = ran("benchmarks.light_load", "--hits", "300", "--after-load", "2")
    assert "(after 2 s of batch load)" in output
    assert "counted 300 of 300 answered 200" in output


@pytest.mark.timeout(180)
def test_the_light_load_traced_takes_its_slowest_hits_apart() -> None:
    """`--trace`: the server's trace read back, one line for each of the slowest 1 %, whose parts add
    up to no more than the hit's time."""
    output = ran("benchmarks.light_load", "--hits", "300", "--trace")
    lines = re.findall(r"^  ([\d.]+) / ([\d.]+) / ([\d.]+) / ([\d.]+) \((first|large|other)\)", output, re.M)
    assert len(lines) == 3, output
    for total, before, served, commit, _ in lines:
        assert float(commit) <= float(served) <= float(total) + 0.1 and float(before) <= float(total), output
    assert re.search(r"^of the slowest 3: \d waited over 2 ms", output, re.M), output
    assert "counted 300 of 300 answered 200" in output


def test_the_tail_is_split_into_the_wait_the_server_and_the_commit() -> None:
    """The slowest two of 200 hits: one of 20 ms read by the server after 12 (a reactor step of 11 ms,
    during a fold), served in 8, a read of the store 2 of them and its commit 3; one of 10 ms, 9 of
    them its commit, during a checkpoint."""
    spans = [
        Span("fold", 99.0, 100.5),
        Span("step", 100.0005, 100.0115),
        Span("request", 100.012, 100.020),
        Span("read", 100.0121, 100.0141),
        Span("commit", 100.014, 100.017),
        Span("request", 200.0003, 200.0098),
        Span("commit", 200.0005, 200.0095),
        Span("checkpoint", 199.999, 200.007),
        Span("collection", 300.0, 300.001),
    ]
    starts = [100.0, 200.0] + [300.0 + n for n in range(198)]
    took = [0.020, 0.010] + [0.001] * 198
    lines = taken_apart(spans, starts, took, ["large"] + ["other"] * 199, [0, 1])
    assert lines[1:] == [
        "  20.0 / 12.0 / 8.0 / 3.0 (large); fold of 1500.0, a read of 2.0, a reactor step of 11.0",
        "  10.0 / 0.3 / 9.5 / 9.0 (other); a checkpoint of 8.0",
        "of the slowest 2: 1 waited over 2 ms before the server read them, 1 spent over half their time in "
        "their commit, 1 overlapped a fold, 1 a checkpoint, 0 a full collection",
    ]


def test_the_check_fails_on_a_lost_event_an_error_or_an_unanswered_request() -> None:
    report = Report()
    report.check("exact", Load(sent=3, answered=3, ok=3, all_done=True), 5, 15)
    assert report.failures == []
    report.check("lost", Load(sent=3, answered=3, ok=3, all_done=True), 5, 14)
    report.check("error", Load(sent=3, answered=3, ok=2, bad=1, all_done=True), 1, 2)
    report.check("unanswered", Load(sent=3, answered=2, ok=2, all_done=False), 1, 2)
    assert report.failures == [
        "lost: server counted 14 events, wrk got 3 × 5 = 15",
        "error: 1 answers were not 200",
        "unanswered: 1 requests unanswered when wrk stopped",
    ]


@pytest.mark.parametrize("lean", [False, True])
def test_the_floor_answers_tracking_requests_without_an_access_log(tmp_path: Path, lean: bool) -> None:
    """Issue 14 defines the floor without an access log: a line per request would slow it, flattering every ratio."""
    floor = start_floor(tmp_path, lean=lean)
    try:
        assert http(floor.port, "POST", "/u/b/event/signup", {"visitor_id": "v1"}) == (200, {})
        assert http(floor.port, "POST", "/u/b/event/bad%00name", {"visitor_id": "v1"})[0] == 400
        # A malformed multipart body: Twisted's form parsing refuses it with a bare 400 before the
        # resource sees it; the lean floor's resource answers it itself.
        connection = HTTPConnection("127.0.0.1", floor.port, timeout=60)
        headers = {"Content-Type": "multipart/form-data; boundary=zz"}
        connection.request("POST", "/u/b/event/signup", body=b"garbage", headers=headers)
        answer = connection.getresponse()
        assert (answer.status, answer.read()) == (400, b'{"error":"bad request"}' if lean else b"")
        connection.close()
    finally:
        floor.stop()
    log = (tmp_path / ("lean-floor.log" if lean else "floor.log")).read_text()
    assert "Site starting" in log  # the log is written: it just holds no request
    assert "POST" not in log, log


def test_only_the_lean_floor_leaves_twisted_s_form_parsing_out() -> None:
    """The lean floor differs from the floor in that alone: Twisted's `Site` parses a POST form's
    Content-Type through the email package unless told not to, as HiiTrack's site is."""
    parsed = []
    original = twisted_http._parseContentType

    def counted(line: bytes) -> bytes:
        parsed.append(line)
        return original(line)

    body = b"visitor_id=v1"
    request = b"POST /u/b/event/signup HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded"
    request += b"\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    answers = []
    with mock.patch.object(twisted_http, "_parseContentType", counted):
        for lean in (False, True):
            channel = floor_site(lean).buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
            transport = StringTransport()
            channel.makeConnection(transport)
            channel.dataReceived(request)
            answers.append(transport.value().split(b"\r\n", 1)[0])
            transport.loseConnection()
            channel.connectionLost(Failure(ConnectionDone()))
    assert answers == [b"HTTP/1.1 200 OK"] * 2
    assert parsed == [b"application/x-www-form-urlencoded"]


@pytest.mark.timeout(120)
def test_the_floors_run_in_turn_and_give_the_lean_one_s_ratio() -> None:
    """`python -m benchmarks.floors`: a rate for each run of each floor, and the ratio of their means."""
    output = ran("benchmarks.floors", "--rounds", "1", "--seconds", "2")
    found = re.fullmatch(
        r"event, requests/s in turn: floor ([\d,]+)\n"
        r"event, requests/s in turn: lean floor ([\d,]+)\n"
        r"event: lean floor ÷ floor = (\d+\.\d\d)",
        output.strip(),
    )
    assert found, output
    floor, lean = (int(found.group(n).replace(",", "")) for n in (1, 2))
    assert floor > 0 and lean > 0
    assert float(found.group(3)) == pytest.approx(lean / floor, abs=0.01)


@pytest.mark.timeout(300)
def test_quick_costs_and_exact_funnel_runs_agree_with_clickhouse() -> None:
    """`--costs --exact --quick`: exact totals, and HiiTrack's exact funnel equals ClickHouse's windowFunnel."""
    if shutil.which("wrk") is None:
        pytest.fail("the benchmark needs wrk: apt-get install -y wrk", pytrace=False)
    output = ran("benchmarks", "--costs", "--exact", "--quick", timeout=280)
    assert "ClickHouse windowFunnel at 3,000 events" in output
    assert "sqlite batch ingest, 100,000 visitors, with the history ÷ without" in output
    assert "sqlite event ingest, 1,000 visitors, with the access log in a file ÷ without" in output


def test_the_profile_summary_counts_each_function_once_per_sample(tmp_path: Path) -> None:
    raw = tmp_path / "spy.raw"
    raw.write_text(
        "thread (1): MainThread;run (a/app.py:1);f (a/x.py:3);f (a/x.py:7) 30\n"
        "thread (1): MainThread;run (a/app.py:1);g (b/y.py:2) 10\n"
        "thread (2): writer;commit (c/store.py:9) 100\n"
    )
    lines = spy_summary(raw, 1.0).splitlines()
    assert lines[:2] == ["thread (2): writer: busy 50%", "thread (1): MainThread: busy 20%"]
    assert lines[2:] == ["  100.0% run (app.py)", "   75.0% f (x.py)", "   25.0% g (y.py)"]


def test_the_profile_gives_each_sample_to_its_innermost_hiitrack_function(tmp_path: Path) -> None:
    raw = tmp_path / "spy.raw"
    raw.write_text(
        "thread (1): MainThread;run (t/app.py:1);answer (/x/hiitrack/web/render.py:9);write (t/http.py:3) 30\n"
        "thread (1): MainThread;run (t/app.py:1);track (/x/hiitrack/tracking.py:5);count (/x/hiitrack/counting.py:7)"
        " 10\n"
        "thread (1): MainThread;run (t/app.py:1);poll (t/epoll.py:2) 60\n"
        "thread (2): writer;commit (/x/hiitrack/store/sqlite/store.py:9) 100\n"
    )
    assert innermost_summary(raw).splitlines()[1:] == [
        "   60.0% -",
        "   30.0% answer (hiitrack/web/render.py)",
        "   10.0% count (hiitrack/counting.py)",
    ]


@pytest.mark.cassandra
@pytest.mark.timeout(180)
def test_the_node_latency_probe_times_each_shape_and_leaves_no_keyspace() -> None:
    """`python -m benchmarks.node_latency`: the node's own p50 <= p90 <= p99 for each shape a hit uses."""
    output = ran("benchmarks.node_latency", "--requests", "100")
    lines = output.splitlines()
    assert re.fullmatch(r"node of scripts/cassandra: up \d+ minutes", lines[0]), output
    shapes = {}
    for line in lines[1:]:
        name, _, figures = line.partition(": p50 / p90 / p99 ")
        shapes[name] = [float(figure) for figure in figures.split(" ms")[0].split(" / ")]
    assert list(shapes) == ["one-row insert", "logged batch over 3 partitions", "one-row read"], output
    for p50, p90, p99 in shapes.values():
        assert 0 < p50 <= p90 <= p99
    cluster = Cluster(["127.0.0.1"], protocol_version=5)
    try:
        keyspaces = cluster.connect().execute("SELECT keyspace_name FROM system_schema.keyspaces")
        assert not [row.keyspace_name for row in keyspaces if row.keyspace_name.startswith("node_latency_")]
    finally:
        cluster.shutdown()


@pytest.mark.cassandra
@pytest.mark.timeout(280)
def test_a_quick_cassandra_run_warms_the_node_first_and_counts_every_event() -> None:
    """`--node-warmup`: load through a HiiTrack of its own before the runs measured, whose
    keyspace is gone by then; the runs after it are exact as ever."""
    output = ran("benchmarks", "--quick", "--stores", "cassandra", "--node-warmup", "4", timeout=260)
    warmed = output.index("cassandra node, before its runs: warmed with 4 s of event and batch load")
    assert warmed < output.index("ingest on cassandra"), output
    assert "every event answered 200 was counted" in output


def test_the_unlogged_variant_sends_each_unit_as_an_unlogged_batch() -> None:
    """benchmarks/unlogged.py, imported before the store runs, turns its logged batches unlogged,
    with the same statements; a lone write stays a plain statement."""
    check = """
from cassandra.query import BatchType, SimpleStatement
from hiitrack.store.cassandra import store
from hiitrack.store.cassandra.bridge import Write

insert = SimpleStatement("INSERT INTO t (k) VALUES (%s)", is_idempotent=True)
writes = [Write(("t", n), insert, (n,), 10) for n in range(3)]
assert store.logged(writes)[0].batch_type == BatchType.LOGGED
import benchmarks.unlogged
batch, parameters = store.logged(writes)
assert batch.batch_type == BatchType.UNLOGGED and parameters is None
assert len(batch._statements_and_parameters) == 3
assert store.logged(writes[:1]) == (writes[0].statement, (0,))
"""
    done = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.mark.timeout(120)
def test_the_saturated_load_with_insert_ids_sends_each_request_its_own(tmp_path: Path) -> None:
    """`benchmarks.profile --insert-ids`: wrk's requests carry insert_ids, one per request, the same for
    the same seed; so a second run of the same load is all duplicates and the total does not move."""
    server = start_hiitrack(tmp_path, f"sqlite:{tmp_path}/ids.db", "ids")
    try:
        create_user(server.port, "bench")
        totals = []
        for _ in range(2):
            load = run_wrk(tmp_path, server.port, mode="event", prefix="/bench/ids", quota=200, seed=5, insert_ids=True)
            assert (load.sent, load.ok) == (200, 200)
            totals.append(recorded(server.port, "bench", "ids"))
        assert totals == [200, 200]
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_the_profile_times_report_reads_through_the_load() -> None:
    """`benchmarks.profile --report-reads`: reads answered through the whole run, their cuts in order."""
    output = ran("benchmarks.profile", "--seconds", "3", "--report-reads")
    found = re.search(r"report reads meanwhile \(([\d,]+), one at a time\): p50 / p90 / p99 / longest (.+) ms", output)
    assert found, output
    cuts = [float(cut) for cut in found[2].split(" / ")]
    assert int(found[1].replace(",", "")) >= 5 and cuts == sorted(cuts), output


@pytest.mark.timeout(120)
def test_the_funnel_is_read_while_events_arrive_and_every_event_is_counted() -> None:
    """`python -m benchmarks.funnel_ingest`: exits 1 unless every event answered 200 was counted."""
    output = ran("benchmarks.funnel_ingest", "--events", "2000", "--seconds", "2")
    found = re.fullmatch(
        r"funnel report, sqlite, ([\d,]+) events: while ([\d,]+) events/s arrive, p50 / p99 ([\d.]+) / ([\d.]+) ms "
        r"\(([\d,]+) reports\); alone after, ([\d.]+) / ([\d.]+) ms \(([\d,]+) reports\)",
        output.strip(),
    )
    assert found, output
    # The events sent while the funnel was read are in the total, on top of the 2,000 loaded.
    assert int(found.group(1).replace(",", "")) > 2_000 and int(found.group(2).replace(",", "")) > 0
    assert 0 < float(found.group(3)) <= float(found.group(4))
    assert int(found.group(5).replace(",", "")) > 0 and int(found.group(8).replace(",", "")) > 0


@pytest.mark.timeout(120)
def test_hits_are_timed_to_the_other_process_while_batches_load_the_first() -> None:
    """`python -m benchmarks.staleness_under_load`: each hit reaches the other process, within the
    longest gap between folds and a little more."""
    output = ran("benchmarks.staleness_under_load", "--seconds", "6", "--hits", "2")
    found = re.fullmatch(
        r"batch load ([\d,]+) requests/s; 2 hits, 200 to the other's report: p50 ([\d,]+) ms, max ([\d,]+) ms",
        output.strip(),
    )
    assert found, output
    assert int(found.group(1).replace(",", "")) > 0
    assert 0 < int(found.group(2).replace(",", "")) <= int(found.group(3).replace(",", "")) <= 10_000
