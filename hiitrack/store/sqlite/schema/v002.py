"""SQLite schema version 2: records expire (insert ids after 30 days).

The expiry of a kind is in the registry (hiitrack.store.kinds); version 1
had no place for it, so insert ids were kept for ever here while Cassandra
let them expire.
"""

STATEMENTS = [
    # When the record stops existing, in Unix seconds; NULL for never (every
    # record written by version 1, and every kind without an expiry).  Reads
    # skip a record whose time has come; commits delete such rows in bounded
    # rounds.
    "ALTER TABLE records ADD COLUMN expires INTEGER",
    # Only expiring records are indexed, so the index costs nothing for the
    # other kinds, and finding what has expired is one range scan of it.
    "CREATE INDEX records_by_expiry ON records (expires) WHERE expires IS NOT NULL",
]
