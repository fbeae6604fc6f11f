"""Storage: the interfaces (interface.py), the record kinds (kinds.py) and the
URI that picks a backend (sqlite/, cassandra/).  Tests:
tests/test_store_contract.py.
"""

from typing import Any

from hiitrack.store.interface import Store, StoreUnavailable, WriteBatch
from hiitrack.store.kinds import KINDS, Kinds

__all__ = ["Store", "StoreUnavailable", "WriteBatch", "open_store"]


def open_store(uri: str, kinds: Kinds = KINDS, **options: Any) -> Store:
    """Build the store a ``--store`` URI names (not yet opened), for the kinds of `kinds`."""
    if uri.startswith("sqlite:"):
        from hiitrack.store.sqlite import SQLiteStore

        return SQLiteStore(uri[len("sqlite:") :], kinds=kinds)
    if uri.startswith("cassandra://"):
        from hiitrack.store.cassandra import CassandraStore

        return CassandraStore.from_uri(uri, kinds=kinds, **options)
    raise ValueError(f"unknown store {uri!r}: use sqlite:PATH or cassandra://HOST/KEYSPACE")
