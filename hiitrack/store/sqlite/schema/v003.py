"""SQLite schema version 3: the visitor history (hiitrack.history).

A visitor's hits are records of kind ``hit <visitor id>`` keyed by their
fixed-width sequence number, in the records table whose primary key
(scope, kind, key) already orders them: reading a visitor's history is one
range scan, erasing it one range delete, keyed as Cassandra's ``hits``
table is (bucket, visitor, sequence).  No table is needed; the version is
recorded so that both stores number their versions alike.
"""

STATEMENTS: list[str] = []
