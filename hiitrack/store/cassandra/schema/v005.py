"""Cassandra schema version 5: the visitor history, again, for keyspaces that skipped it.

Exact funnels (v004) were released while v003 was a placeholder for the
history, and keyspaces that applied that placeholder recorded version 3
without the ``hits`` table.  This version creates it there; elsewhere
v003 already did and the statement (IF NOT EXISTS, as every one here) does
nothing.  The table and why it is so are in v003.
"""

from hiitrack.store.cassandra.schema.v003 import STATEMENTS as HISTORY

STATEMENTS = list(HISTORY)
