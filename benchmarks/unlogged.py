"""What the batchlog costs: ``twistd hiitrack`` whose commits are unlogged batches.

Imported before twistd runs (``benchmarks.profile --store cassandra
--unlogged``), it makes the Cassandra store send each commit's unit (its
records and its journal entry) as an unlogged batch instead of a logged one.
Cassandra then writes no batchlog, and a node that dies mid-batch may leave
part of a unit applied: the guarantee docs/cassandra.md gives ("land
together or not at all") no longer holds.  Never for anything but measuring.
"""

from functools import partial

from cassandra.query import BatchType

from hiitrack.store.cassandra import store
from hiitrack.store.cassandra.bridge import one_statement

store.logged = partial(one_statement, batch_type=BatchType.UNLOGGED)
