"""The Cassandra store: counters and records in a Cassandra cluster.

Selected by ``--store cassandra://HOST[,HOST...][:PORT]/KEYSPACE``.  One job
per module: connect.py (URI, options, driver), bridge.py (driver futures to
Deferreds, paging, bounded concurrency), schema/ (versioned schema, applied
at open), partitions.py (each scope's partitions, for deletes), records.py
(kinds routed to tables), journal.py (each process's commits of
increments, answered once journaled), counters.py (folds of the journal
into per-writer totals, slices, generations) and store.py (the store
composing them).  Tests: tests/test_store_contract.py,
tests/test_cassandra.py, tests/test_migrations.py,
tests/test_cassandra_outage.py, tests/test_write_behind.py.
"""

from hiitrack.store.cassandra.bridge import deferred_from_future
from hiitrack.store.cassandra.connect import REQUEST_TIMEOUT, replication_map
from hiitrack.store.cassandra.store import CassandraStore

__all__ = ["REQUEST_TIMEOUT", "CassandraStore", "deferred_from_future", "replication_map"]
