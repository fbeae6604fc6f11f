"""What the batchlog costs: ``twistd hiitrack`` whose commits are unlogged batches.

Imported before twistd runs (``benchmarks.profile --store cassandra
--unlogged``), it makes the Cassandra store send each commit's unit (its
records and its journal entry) as an unlogged batch instead of a logged one.
Cassandra then writes no batchlog, and a node that dies mid-batch may leave
part of a unit applied: the guarantee docs/cassandra.md gives ("land
together or not at all") no longer holds.  Never for anything but measuring.
"""

from typing import Any

from cassandra.query import BatchStatement, BatchType

from hiitrack.store.cassandra import bridge, store


def _unlogged(writes: list[bridge.Write]) -> tuple[Any, Any]:
    """`writes` as one unlogged batch (or the write itself, as `bridge.logged` sends it)."""
    if len(writes) == 1:
        return bridge.logged(writes)
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    for write in writes:
        batch.add(write.statement, write.parameters)
    return batch, None


store.logged = _unlogged  # type: ignore[assignment]
