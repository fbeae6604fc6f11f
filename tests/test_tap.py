"""hiitrack.tap's options: the defaults README.md documents, and what `postOptions` refuses.

Where the server listens (a bare port: loopback only), its request deadlines,
and where the operator's metrics secret comes from (never the command line,
which every local user can read in /proc/PID/cmdline).  Mostly option
parsing: the service it builds runs in the tests that start a real
`twistd -n hiitrack` (tests/processes.py); one test starts it here, for
what it does to Python's collector.
"""

import gc

import pytest
import pytest_twisted
from twisted.python import usage

from hiitrack.tap import METRICS_AUTH_VARIABLE, Options, makeService
from tests.http import Client
from tests.processes import free_port


def parsed(*arguments: str) -> Options:
    options = Options()
    options.parseOptions(list(arguments))
    return options


@pytest.fixture(autouse=True)
def no_metrics_variable(monkeypatch):
    monkeypatch.delenv(METRICS_AUTH_VARIABLE, raising=False)


def test_defaults_are_the_documented_ones():
    options = parsed()
    assert options["store"] == "sqlite:hiitrack.db"
    assert options["visitor-cache"] == 100000
    assert options["idle-timeout"] == 60.0
    assert options["cassandra-replication"] == "SimpleStrategy:1"
    assert options["cassandra-consistency"] == "LOCAL_QUORUM"
    assert not options["no-history"]


def test_the_history_is_kept_unless_no_history_is_given():
    assert parsed("--no-history")["no-history"]


@pytest.mark.parametrize("store", ["sqlite:/var/lib/hiitrack.db", "cassandra://10.0.0.1,10.0.0.2:9042/hiitrack"])
def test_both_store_kinds_are_accepted(store):
    assert parsed("--store", store)["store"] == store
    assert parsed("-s", store)["store"] == store


def test_numbers_are_parsed():
    options = parsed("--visitor-cache", "5", "--idle-timeout", "2.5")
    assert (options["visitor-cache"], options["idle-timeout"]) == (5, 2.5)


REFUSED = [
    (["--store", "mysql://db/hiitrack"], "--store must be"),
    (["--store", "hiitrack.db"], "--store must be"),
    (["--visitor-cache", "0"], "--visitor-cache must be at least 1"),
    (["--visitor-cache", "many"], "Parameter type enforcement failed"),
    (["--idle-timeout", "soon"], "Parameter type enforcement failed"),
    (["--no-such-option"], "no-such-option"),
    (["--backfill-through", "nginx:8080"], "--backfill-through must be an http:// URL"),
    (["--backfill-through", "https://127.0.0.1"], "--backfill-through must be an http:// URL"),
    (["--access-log", ""], "--access-log must be twistd, off, or a file"),
    (["--access-log", "/no/such/folder/access.log"], "--access-log must be twistd, off, or a file"),
]


@pytest.mark.parametrize("arguments, complaint", [pytest.param(*row, id=" ".join(row[0])) for row in REFUSED])
def test_bad_options_are_refused_with_a_reason(arguments, complaint):
    with pytest.raises(usage.UsageError, match=complaint):
        parsed(*arguments)


def test_a_port_number_listens_on_loopback_only():
    """nginx (or another proxy) is in front: a bare port is not for the world."""
    assert parsed()["port"] == "tcp:8080:interface=127.0.0.1"
    assert parsed("--port", "9000")["port"] == "tcp:9000:interface=127.0.0.1"
    assert parsed("--port", "tcp:9000:interface=0.0.0.0")["port"] == "tcp:9000:interface=0.0.0.0"
    assert parsed("-p", "tcp6:9000")["port"] == "tcp6:9000"


def test_request_deadlines():
    options = parsed()
    assert (options["header-timeout"], options["body-timeout"]) == (10.0, 30.0)
    options = parsed("--header-timeout", "2.5", "--body-timeout", "7")
    assert (options["header-timeout"], options["body-timeout"]) == (2.5, 7.0)
    for bad in (["--header-timeout", "0"], ["--body-timeout", "-1"], ["--idle-timeout", "0"]):
        with pytest.raises(usage.UsageError):
            parsed(*bad)


def test_metrics_auth_on_the_command_line_is_refused():
    with pytest.raises(usage.UsageError, match="--metrics-auth-file"):
        parsed("--metrics-auth", "ops:secret")


def test_metrics_auth_from_a_file(tmp_path):
    secret = tmp_path / "metrics-auth"
    secret.write_text("ops:pass:with:colons\n")
    assert parsed("--metrics-auth-file", str(secret)).metrics_auth == ("ops", "pass:with:colons")
    assert parsed().metrics_auth is None


def test_metrics_auth_from_the_environment(monkeypatch):
    monkeypatch.setenv(METRICS_AUTH_VARIABLE, "ops:s3cret")
    assert parsed().metrics_auth == ("ops", "s3cret")


@pytest.mark.parametrize("text", ["nocolon", ":pass", "ops:", "", "\n", "ops:a\nsecond:line\n"])
def test_malformed_metrics_auth_is_refused(tmp_path, monkeypatch, text):
    secret = tmp_path / "metrics-auth"
    secret.write_text(text)
    with pytest.raises(usage.UsageError, match="USER:PASS"):
        parsed("--metrics-auth-file", str(secret))
    if text:
        monkeypatch.setenv(METRICS_AUTH_VARIABLE, text)
        with pytest.raises(usage.UsageError, match="USER:PASS"):
            parsed()


def test_metrics_auth_file_errors(tmp_path, monkeypatch):
    with pytest.raises(usage.UsageError, match="cannot read"):
        parsed("--metrics-auth-file", str(tmp_path / "missing"))
    secret = tmp_path / "metrics-auth"
    secret.write_text("ops:a")
    monkeypatch.setenv(METRICS_AUTH_VARIABLE, "ops:b")
    with pytest.raises(usage.UsageError, match="not both"):
        parsed("--metrics-auth-file", str(secret))


@pytest_twisted.ensureDeferred
async def test_the_started_service_leaves_its_startup_objects_out_of_the_collector(tmp_path):
    made_before = [object()]
    assert gc.get_freeze_count() == 0
    assert any(tracked is made_before for tracked in gc.get_objects())
    port = free_port()
    service = makeService(parsed("--store", f"sqlite:{tmp_path}/h.db", "--port", str(port)))
    service.startService()
    try:
        await service.started
        assert gc.get_freeze_count() > 0
        assert not any(tracked is made_before for tracked in gc.get_objects())
        # What is made from now on is collected as before, and the service answers.
        made_after = [object()]
        assert any(tracked is made_after for tracked in gc.get_objects())
        client = Client(f"http://127.0.0.1:{port}")
        try:
            assert (await client.get("/")).json == {"service": "hiitrack"}
        finally:
            await client.close()
    finally:
        await service.stopService()
        gc.unfreeze()
