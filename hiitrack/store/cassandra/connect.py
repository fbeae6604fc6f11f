"""Where the Cassandra store connects, and how: the URI, its options, the driver.

Parses ``cassandra://HOST[,HOST...][:PORT]/KEYSPACE`` and the replication and
consistency options into `Settings`, and builds the driver's `Cluster` with
the execution profile every statement runs under.  Tests:
tests/test_cassandra.py.
"""

import re
import socket
import uuid
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any

from cassandra import ConsistencyLevel, ProtocolVersion
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, DefaultConnection, ExecutionProfile
from cassandra.connection import Connection
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, RetryPolicy, TokenAwarePolicy
from cassandra.query import named_tuple_factory

__all__ = [
    "PORT",
    "REQUEST_TIMEOUT",
    "SOCKET_OPTIONS",
    "IdempotentRetries",
    "Settings",
    "cluster",
    "idempotent",
    "one_off_writer",
    "replication_map",
    "rows_as_named_tuples",
]

PORT = 9042
REQUEST_TIMEOUT = 5.0
"""Seconds a statement may take before the request fails with 503."""
CONNECT_TIMEOUT = 5.0
SOCKET_OPTIONS = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
"""Nagle's algorithm off: with it, a request of 4 KB or more (a visitor state of a dozen events)
waited for the node's delayed ACK, about 40 ms, instead of going out at once."""


@lru_cache(maxsize=256)
def _row_class(columns: tuple[str, ...]) -> Any:
    return namedtuple("Row", columns)


def rows_as_named_tuples(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Any]:
    """Rows as named tuples, as the driver's default factory gives them, from one class per set of
    columns: the default makes a new class for every result, which was a sixth of the driver's
    I/O thread (holding the GIL) under an event load."""
    try:
        row = _row_class(tuple(columns))
    except ValueError:  # a column name that is no identifier: the driver cleans it
        return named_tuple_factory(columns, rows)
    # tuple.__new__ makes each row in C; the class's own __new__ is a Python function, a frame per
    # row, and a report's read is thousands of rows.  The driver gives every row all the columns.
    return list(map(partial(tuple.__new__, row), rows))


def idempotent(cql: str) -> bool:
    """Whether running a statement twice leaves what running it once does.

    Counter increments add again; a lightweight transaction run again answers
    "not applied" to the request that applied it.  Everything else HiiTrack
    runs (reads, upserts, deletes) can be sent again safely.
    """
    return re.search(r"\bIF\b|=\s*\w+\s*\+", cql, re.IGNORECASE) is None


class IdempotentRetries(RetryPolicy):
    """The driver's retries, but a statement whose first attempt may have been applied is sent
    again only if it is idempotent.

    The driver's default sends a statement to the next node after a broken
    connection or a server error, whatever it was: when a node died under
    load, a counter batch (schema versions 1 to 4) it had already forwarded
    to the other replicas was applied twice.  Such a failure of a
    lightweight transaction now reaches its caller (503).  Timeouts and
    unavailable replicas keep the default.
    """

    def on_request_error(self, query: Any, consistency: Any, error: Any, retry_num: int) -> tuple[int, Any]:
        if query is None or not query.is_idempotent:
            return self.RETHROW, None
        return super().on_request_error(query, consistency, error, retry_num)


def one_off_writer() -> str:
    """A writer name no other process uses: for a store that folds its whole journal when it closes."""
    return f"{socket.gethostname()}/{uuid.uuid4().hex[:12]}"


def replication_map(spec: str) -> str:
    """The CQL replication map of ``SimpleStrategy:N`` or ``NetworkTopologyStrategy:dc1=3,dc2=2``."""
    strategy, _, factors = spec.partition(":")
    if strategy == "SimpleStrategy" and factors.isdigit() and int(factors) >= 1:
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {int(factors)}}}"
    if strategy == "NetworkTopologyStrategy" and factors:
        pairs = [factor.partition("=") for factor in factors.split(",")]
        if all(re.fullmatch(r"[A-Za-z0-9_.\-]+", dc) and n.isdigit() for dc, _, n in pairs):
            return "{'class': 'NetworkTopologyStrategy', " + ", ".join(f"'{dc}': {int(n)}" for dc, _, n in pairs) + "}"
    raise ValueError(
        f"bad Cassandra replication {spec!r}: use SimpleStrategy:N or NetworkTopologyStrategy:DC=N[,DC=N...]"
    )


def _consistency(name: str) -> int:
    try:
        return ConsistencyLevel.name_to_value[name.upper()]
    except KeyError:
        raise ValueError(f"bad Cassandra consistency {name!r}: use e.g. ONE, LOCAL_QUORUM, QUORUM") from None


@dataclass(frozen=True)
class Settings:
    hosts: list[str]
    keyspace: str
    port: int = PORT
    replication: str = replication_map("SimpleStrategy:1")
    """The CQL replication map used when the keyspace is created."""
    consistency: int = ConsistencyLevel.LOCAL_QUORUM
    request_timeout: float = REQUEST_TIMEOUT
    """Seconds the driver waits for a statement; longer for bulk commands (the import's flushes)."""
    writer: str = field(default_factory=one_off_writer)
    """Whose journal and counter cells this process writes (hiitrack/store/cassandra/journal.py):
    at most one process at a time, the same one again after a restart."""

    @classmethod
    def of(
        cls,
        hosts: list[str],
        keyspace: str,
        port: int = PORT,
        replication: str | None = None,
        consistency: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        writer: str | None = None,
    ) -> "Settings":
        """Checked settings; `replication` and `consistency` as the command line gives them."""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", keyspace):
            raise ValueError(f"bad Cassandra keyspace {keyspace!r}: use 1-48 letters, digits and _")
        if writer is not None and not re.fullmatch(r"[\x21-\x7e]{1,200}", writer):
            raise ValueError(f"bad Cassandra writer {writer!r}: use 1-200 printable ASCII characters, no spaces")
        return cls(
            hosts,
            # CQL folds unquoted names to lower case; the schema metadata has them so.
            keyspace.lower(),
            port,
            replication_map(replication or "SimpleStrategy:1"),
            _consistency(consistency or "LOCAL_QUORUM"),
            request_timeout,
            writer or one_off_writer(),
        )

    @classmethod
    def from_uri(
        cls,
        uri: str,
        replication: str | None = None,
        consistency: str | None = None,
        request_timeout: float = REQUEST_TIMEOUT,
        writer: str | None = None,
    ) -> "Settings":
        """Settings for ``cassandra://HOST[,HOST...][:PORT]/KEYSPACE``."""
        match = re.fullmatch(r"cassandra://([^/:]+(?:,[^/:]+)*)(?::(\d+))?/(\w+)/?", uri)
        if match is None:
            raise ValueError(f"bad Cassandra store {uri!r}: use cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
        hosts, port, keyspace = match.groups()
        return cls.of(hosts.split(","), keyspace, int(port or PORT), replication, consistency, request_timeout, writer)

    def __str__(self) -> str:
        return f"cassandra://{','.join(self.hosts)}:{self.port}/{self.keyspace}"


def cluster(settings: Settings, connection_class: type[Connection] | None = None) -> Cluster:
    """The driver's cluster for `settings` (not connected yet), its connections of `connection_class`
    (the driver's default, on its own I/O thread, if None)."""
    profile = ExecutionProfile(
        # Explicit, so the driver does not warn about a default policy.
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        consistency_level=settings.consistency,
        # Lightweight transactions (new users and buckets, a scope's counter
        # generation) agree across data centers: LOCAL_SERIAL would let two
        # data centers each create "the" generation of a new scope at once.
        serial_consistency_level=ConsistencyLevel.SERIAL,
        request_timeout=settings.request_timeout,
        retry_policy=IdempotentRetries(),
        row_factory=rows_as_named_tuples,
    )
    return Cluster(
        settings.hosts,
        port=settings.port,
        # Cassandra 4.0 and newer speak v5; naming it spares a negotiation
        # that logs a warning on every connection.
        protocol_version=ProtocolVersion.V5,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        connect_timeout=CONNECT_TIMEOUT,
        sockopts=SOCKET_OPTIONS,
        connection_class=connection_class or DefaultConnection,
        control_connection_timeout=CONNECT_TIMEOUT,
        # Retry a node that went down every few seconds at most, so service
        # resumes soon after it is back (the default backs off to 10 minutes).
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
    )


_UNITS = {"B": 1, "KiB": 1024, "MiB": 1024 * 1024}


def batch_warn_bytes(session: Any) -> int | None:
    """The node's ``batch_size_warn_threshold`` in bytes, None if it does not say (blocking)."""
    row = session.execute("SELECT value FROM system_views.settings WHERE name = 'batch_size_warn_threshold'").one()
    match = re.fullmatch(r"(\d+)(B|KiB|MiB)", row.value if row else "")
    return int(match[1]) * _UNITS[match[2]] if match else None
