"""Cassandra schema version 3: the visitor history (hiitrack.history).

Every applied hit of a visitor is kept, so that counters can be rebuilt, a
visitor's data exported and a visitor erased exactly.
"""

STATEMENTS = [
    # One partition per (bucket, visitor), clustered by the visitor's hit
    # sequence (a fixed-width decimal, so text order is number order).
    # Reading a visitor's history (export, erase, replay) is then one ordered
    # slice of one partition, paged by `key > after`, and erasing a visitor
    # is one partition tombstone rather than a tombstone per hit.  Partitions
    # cannot grow without bound: a visitor keeps at most `visitor-hits`
    # (default 100,000) hits, a few MB; a hit past the cap is refused (422),
    # counted in a metric and reported in the visitor's answer.  Written
    # once per hit and read rarely: size-tiered compaction.  Each partition
    # is listed in scope_partitions, so deleting the bucket deletes it.
    """
    CREATE TABLE IF NOT EXISTS hits (
        scope   text,
        visitor text,
        key     text,
        value   blob,
        PRIMARY KEY ((scope, visitor), key)
    ) WITH comment = 'HiiTrack visitor history: one partition per (bucket, visitor), by hit sequence'
    """,
]
