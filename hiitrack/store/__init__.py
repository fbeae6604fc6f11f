"""The storage interface every backend implements, and the URI that picks one.

HiiTrack keeps two kinds of data: small *records* (users, buckets, event and
property names, values, funnels, visitor state), addressed by a scope (``""``
for the installation, the user name, or ``user/bucket``), a kind and a key;
and *counters*, integer cells addressed by scope, row and column, read back a
row slice at a time.  Stores know nothing of what the rows mean (see
hiitrack.counting); they persist and read.  Every method returns a Deferred
and never blocks the reactor.  The shared contract test is
tests/test_store_contract.py.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from twisted.internet.defer import Deferred

__all__ = ["Store", "StoreUnavailable", "WriteBatch", "open_store"]


class StoreUnavailable(Exception):
    """The store cannot be reached or did not answer in time (HTTP 503)."""


@dataclass
class WriteBatch:
    """One request's changes: applied all together, or not at all."""

    scope: str
    records: dict[tuple[str, str], bytes] = field(default_factory=dict)
    increments: Mapping[tuple[bytes, bytes], int] = field(default_factory=dict)


class Store(Protocol):
    def open(self) -> Deferred:
        """Connect, and create the schema if it is missing."""

    def close(self) -> Deferred:
        """Finish pending writes and release connections."""

    def get(self, scope: str, kind: str, key: str) -> Deferred:
        """The record's value (bytes), or None."""

    def scan(self, scope: str, kind: str) -> Deferred:
        """Every record of a kind in a scope, as ``{key: value}``."""

    def create(self, scope: str, kind: str, key: str, value: bytes) -> Deferred:
        """Store a record only if it does not exist; fire with whether it did not."""

    def replace(self, scope: str, kind: str, key: str, old: bytes, new: bytes) -> Deferred:
        """Store `new` only if the record still holds `old`; fire with whether it did.

        A compare-and-set: an account change racing its deletion cannot
        bring the deleted record back.
        """

    def delete(self, scope: str, kind: str, key: str) -> Deferred:
        """Remove one record."""

    def write(self, batch: WriteBatch) -> Deferred:
        """Put the batch's records and add its increments, atomically.

        Writes arriving while another is in flight are grouped into one
        commit; the Deferred fires once the batch is durable.
        """

    def read_rows(self, scope: str, rows: list[bytes], start: bytes = b"", end: bytes | None = None) -> Deferred:
        """For each row, its cells with ``start <= column < end`` as ``{column: n}``, in column order."""

    def drop(self, scope: str) -> Deferred:
        """Remove every record and counter of a scope."""

    def count(self, scope: str) -> Deferred:
        """How many records and counter cells a scope holds (tests, operators)."""


def open_store(uri: str, **options: object) -> Store:
    """Build the store a ``--store`` URI names (not yet opened)."""
    if uri.startswith("sqlite:"):
        from hiitrack.store.sqlite import SQLiteStore

        return SQLiteStore(uri[len("sqlite:") :])
    if uri.startswith("cassandra://"):
        from hiitrack.store.cassandra import CassandraStore

        return CassandraStore.from_uri(uri, **options)
    raise ValueError(f"unknown store {uri!r}: use sqlite:PATH or cassandra://HOST/KEYSPACE")
