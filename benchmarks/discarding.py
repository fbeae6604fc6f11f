"""A ceiling for the write path: ``twistd hiitrack`` whose store commits nothing.

Imported before twistd runs (``benchmarks.profile --discard-commits``), it
replaces both stores' group commit with one that answers at once and writes
nothing: every request still parses, checks, reads its visitor's state and
counts as usual, then is answered 200 as if its hit were durable.  The rate
that leaves is what the server can reach whatever its store does.  Never
for anything but measuring: the hits are lost.
"""

from hiitrack.store.cassandra.store import CassandraStore
from hiitrack.store.grouping import MergedWrite
from hiitrack.store.sqlite.store import SQLiteStore


async def _discard(self: object, units: list[MergedWrite]) -> None:
    """Write nothing: the group commit answers its requests at once."""


SQLiteStore._commit = _discard  # type: ignore[method-assign]
CassandraStore._commit = _discard  # type: ignore[method-assign]
