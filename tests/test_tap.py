"""hiitrack.tap's options: the store and cache defaults README.md documents, and what `postOptions` refuses.

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
    assert options["store"] == "sqlite:hiitrack.db"
    assert options["visitor-cache"] == 100000
    assert options["idle-timeout"] == 60.0
    assert options["cassandra-replication"] == "SimpleStrategy:1"
    assert options["cassandra-consistency"] == "LOCAL_QUORUM"


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
]


@pytest.mark.parametrize("arguments, complaint", [pytest.param(*row, id=" ".join(row[0])) for row in REFUSED])
def test_bad_options_are_refused_with_a_reason(arguments, complaint):
    with pytest.raises(usage.UsageError, match=complaint):
        parsed(*arguments)
