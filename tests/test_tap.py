"""hiitrack.tap's options: the defaults README.md documents, and what `postOptions` refuses.

Only option parsing: the service it builds runs in the tests that start a
real `twistd -n hiitrack` (tests/processes.py).
"""

import pytest
from twisted.python import usage

from hiitrack.tap import Options


def parsed(*arguments: str) -> Options:
    options = Options()
    options.parseOptions(list(arguments))
    return options


def test_defaults_are_the_documented_ones():
    options = parsed()
    assert options["port"] == "tcp:8080"
    assert options["store"] == "sqlite:hiitrack.db"
    assert options["visitor-cache"] == 100000
    assert options["idle-timeout"] == 60.0
    assert options["metrics-auth"] is None
    assert options["cassandra-replication"] == "SimpleStrategy:1"
    assert options["cassandra-consistency"] == "LOCAL_QUORUM"


@pytest.mark.parametrize(
    "port, endpoint",
    [
        ("9000", "tcp:9000"),
        ("tcp:9000:interface=127.0.0.1", "tcp:9000:interface=127.0.0.1"),
        ("unix:/tmp/hiitrack.sock", "unix:/tmp/hiitrack.sock"),
    ],
)
def test_a_port_number_becomes_a_tcp_endpoint_and_endpoints_stay(port, endpoint):
    assert parsed("--port", port)["port"] == endpoint
    assert parsed("-p", port)["port"] == endpoint


@pytest.mark.parametrize("store", ["sqlite:/var/lib/hiitrack.db", "cassandra://10.0.0.1,10.0.0.2:9042/hiitrack"])
def test_both_store_kinds_are_accepted(store):
    assert parsed("--store", store)["store"] == store


def test_numbers_are_parsed():
    options = parsed("--visitor-cache", "5", "--idle-timeout", "2.5")
    assert (options["visitor-cache"], options["idle-timeout"]) == (5, 2.5)


def test_metrics_credentials_may_hold_a_colon_in_the_password():
    assert parsed("--metrics-auth", "ops:s3:cret")["metrics-auth"] == "ops:s3:cret"


REFUSED = [
    (["--store", "mysql://db/hiitrack"], "--store must be"),
    (["--store", "hiitrack.db"], "--store must be"),
    (["--visitor-cache", "0"], "--visitor-cache must be at least 1"),
    (["--visitor-cache", "many"], "Parameter type enforcement failed"),
    (["--idle-timeout", "soon"], "Parameter type enforcement failed"),
    (["--metrics-auth", "ops"], "--metrics-auth must be USER:PASS"),
    (["--metrics-auth", ":s3cret"], "--metrics-auth must be USER:PASS"),
    (["--metrics-auth", "ops:"], "--metrics-auth must be USER:PASS"),
    (["--no-such-option"], "no-such-option"),
]


@pytest.mark.parametrize("arguments, complaint", [pytest.param(*row, id=" ".join(row[0])) for row in REFUSED])
def test_bad_options_are_refused_with_a_reason(arguments, complaint):
    with pytest.raises(usage.UsageError, match=complaint):
        parsed(*arguments)
