"""Cassandra schema version 4: exact funnels (docs/api.md, "Exact funnels").

  * funnel_states: each visitor's progress in the bucket's saved funnels
    (hiitrack.conversions), one small record per (bucket, visitor).
  * funnel_levels: the drop-off index, the visitors at each level of each
    funnel version, read a page at a time in visitor id order.

Idempotent (IF NOT EXISTS), as every statement here must be.
"""

STATEMENTS = [
    # Sharded like visitors (shard = crc32(visitor id) mod 64), for the same
    # reasons: an unbounded population, one partition read per lookup, and a
    # bucket deletion that deletes 64 partitions.  Rewritten on every hit
    # that touches a funnel: leveled compaction, as visitors.
    """
    CREATE TABLE IF NOT EXISTS funnel_states (
        scope text,
        shard int,
        key   text,
        value blob,
        PRIMARY KEY ((scope, shard), key)
    ) WITH compaction = {'class': 'LeveledCompactionStrategy'}
      AND comment = 'HiiTrack funnel states: 64 shard partitions per bucket'
    """,
    # Partition key (scope, level) where level is "<funnel version> <level>":
    # one drop-off list is one partition, clustered by visitor id (text,
    # compared byte-wise), so a page is one slice `key > after LIMIT n`.  A
    # visitor moves from one partition to the next when its level rises (a
    # row delete and an insert), at most once per step.
    """
    CREATE TABLE IF NOT EXISTS funnel_levels (
        scope text,
        level text,
        key   text,
        value blob,
        PRIMARY KEY ((scope, level), key)
    ) WITH comment = 'HiiTrack drop-off index: one partition per (bucket, funnel version, level)'
    """,
]
