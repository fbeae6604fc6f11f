"""SQLite schema version 3: the visitor history (hiitrack.history).

Every applied hit of a visitor is kept, so that counters can be rebuilt, a
visitor's data exported and a visitor erased exactly.
"""

STATEMENTS = [
    # Keyed as Cassandra's `hits` table is, (bucket, visitor, sequence): the
    # kind column is "hit <visitor id>" and the key the visitor's hit
    # sequence (fixed width, so text order is number order), so reading a
    # visitor's history is one range scan and erasing it one range delete.
    # The columns are those of `records`, so the store runs the same
    # statements on both.  A table of its own, with a rowid, because a hit
    # (events and values as JSON, up to ~70 KB) is much larger than other
    # records: WITHOUT ROWID tables suit rows below ~1/20 of a page, and
    # here the key index stays small while hits fill the rowid b-tree.
    """
    CREATE TABLE hits (
        scope   TEXT NOT NULL,
        kind    TEXT NOT NULL,
        key     TEXT NOT NULL,
        value   BLOB NOT NULL,
        expires INTEGER,
        PRIMARY KEY (scope, kind, key)
    )
    """,
]
