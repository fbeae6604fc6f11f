"""SQLite schema version 1: two tables hold everything.

records   small values addressed by (scope, kind, key): users, buckets,
          names of events and properties, values, funnels, visitor state,
          insert ids, the installation secret;
counters  integer cells addressed by (scope, row, col); a report reads a
          slice of columns of a few rows.
"""

STATEMENTS = [
    # Both tables are WITHOUT ROWID so the primary key is the table's only
    # b-tree: a row slice is one range scan, and deleting a scope is one
    # range delete.  `kind` is the kind's name, followed by a space and the
    # part for kinds partitioned by part ("value <property id>"), so that a
    # scan of one property's values is one range too.
    """
    CREATE TABLE records (
        scope TEXT NOT NULL,
        kind  TEXT NOT NULL,
        key   TEXT NOT NULL,
        value BLOB NOT NULL,
        PRIMARY KEY (scope, kind, key)
    ) WITHOUT ROWID
    """,
    # Columns are blobs compared byte-wise (memcmp), as Cassandra compares
    # its blob clustering column: both stores order a row's cells alike.
    """
    CREATE TABLE counters (
        scope TEXT NOT NULL,
        row   BLOB NOT NULL,
        col   BLOB NOT NULL,
        n     INTEGER NOT NULL,
        PRIMARY KEY (scope, row, col)
    ) WITHOUT ROWID
    """,
]
