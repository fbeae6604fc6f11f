"""Cassandra schema version 1: counters, records by kind, and the scope index.

What the tables hold (see hiitrack/store/interface.py, hiitrack/store/kinds.py
and hiitrack/counting.py):
  * counters: integer cells addressed by (scope, row, column).  A report
    reads a slice of columns of a few rows.
  * records: small values addressed by (scope, kind, key), one table per
    kind (the registry names it): users, buckets, events, properties,
    property_values, funnels, visitors, insert_ids, and `records` for the
    installation secret.
  * scope_partitions: which partitions of the tables above a scope has
    written, so that deleting a user or bucket can find them.
  * scope_generations: the generation of a scope's counters, so that a scope
    deleted and used again does not reuse deleted counters.

A scope is "" for the installation, "user" or "user/bucket".  Cassandra
rejects an empty partition key, so the installation scope is stored as "."
(user and bucket names never start with ".").

Compaction: tables that are updated over and over (counters, visitor state)
use LeveledCompactionStrategy: each increment or state update is a new
version of a cell, and a read has to merge every SSTable holding a version;
leveling keeps that to about one SSTable per level, which is what makes a
report a cheap slice read.  It costs more compaction I/O, which is the right
trade for read-your-counters workloads.  The tables written once and read
often but rarely updated (names, values, users, buckets) keep the default
SizeTieredCompactionStrategy.

TTL and gc_grace_seconds: analytics keep their history until the bucket is
deleted, so only insert ids expire (after 30 days: in this version by the
table's default_time_to_live, from version 2 by the TTL of each write, taken
from the kind registry).  Deletes are whole partitions when a bucket or user
is deleted; they leave one partition tombstone each, so the default
gc_grace_seconds (10 days, the window in which a repair must run) is kept.

Every statement is IF NOT EXISTS: two servers starting at once may both
apply it, and keyspaces made before schema versions were recorded already
hold these tables.
"""

STATEMENTS = [
    # Counter cells.  Partition key (scope, generation, row): a row is the
    # unit hiitrack.counting designs to stay bounded (an event's totals and
    # paths, a segment, the holders of a property, or one time shard of a
    # series), so no partition grows without bound, and the scope in the key
    # keeps buckets apart.  The generation (see scope_generations) makes a
    # scope that was deleted and is used again start from fresh partitions.
    # Clustered by column (blob, compared byte-wise like the SQLite store), so
    # a report's `start <= col < end` is one contiguous slice of one
    # partition.  A counter table can hold nothing but counters beside its
    # key, which is why records live elsewhere.  Increments to one partition
    # are sent together as a single-partition COUNTER batch.
    """
    CREATE TABLE IF NOT EXISTS counters (
        scope      text,
        generation uuid,
        row        blob,
        col        blob,
        n          counter,
        PRIMARY KEY ((scope, generation, row), col)
    ) WITH compaction = {'class': 'LeveledCompactionStrategy'}
      AND comment = 'HiiTrack counter cells: one partition per (scope, generation, counter row)'
    """,
    # The current counter generation of each scope.  Cassandra cannot reuse
    # a deleted counter: an increment after a delete may bring the old value
    # back (the replica adds to its cached local count; the CQL documentation
    # says counter removal is "for definitive removal only").  So a scope's
    # counters live under a random generation, created with a lightweight
    # transaction (INSERT ... IF NOT EXISTS, so concurrent writers agree) on
    # the scope's first increment; deleting the scope deletes its generation
    # (DELETE ... IF EXISTS), and the next increment starts a new one.  One
    # small partition per scope; read once and cached by each process (for a
    # few seconds, so that a delete made by another process is seen soon).
    """
    CREATE TABLE IF NOT EXISTS scope_generations (
        scope      text,
        generation uuid,
        PRIMARY KEY ((scope))
    ) WITH comment = 'HiiTrack counter generation of each scope'
    """,
    # Users, in the installation scope.  Partition key scope: listing users
    # is one partition read; their number is that of accounts on one
    # installation (small).
    """
    CREATE TABLE IF NOT EXISTS users (
        scope text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), key)
    ) WITH comment = 'HiiTrack users: one partition for the installation'
    """,
    # Buckets of a user.  Partition key scope (the user name): a user's
    # bucket list is one partition, bounded by how many buckets one user makes.
    """
    CREATE TABLE IF NOT EXISTS buckets (
        scope text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), key)
    ) WITH comment = 'HiiTrack buckets: one partition per user'
    """,
    # Event names of a bucket, keyed by event id.  Partition key scope: the
    # catalog of one bucket is read whole by reports, and the number of
    # distinct event names is what the bucket's counter rows already scale with.
    """
    CREATE TABLE IF NOT EXISTS events (
        scope text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), key)
    ) WITH comment = 'HiiTrack event names: one partition per bucket'
    """,
    # Property names of a bucket, keyed by property id (same reasoning as events).
    """
    CREATE TABLE IF NOT EXISTS properties (
        scope text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), key)
    ) WITH comment = 'HiiTrack property names: one partition per bucket'
    """,
    # Values of one property, keyed by value id.  Partition key (scope,
    # property): a property may take many values (plans, countries,
    # campaigns), so they get a partition per property instead of sharing the
    # bucket's; a report on a property reads exactly that partition.
    """
    CREATE TABLE IF NOT EXISTS property_values (
        scope    text,
        property text,
        key      text,
        value    blob,
        PRIMARY KEY ((scope, property), key)
    ) WITH comment = 'HiiTrack property values: one partition per (bucket, property)'
    """,
    # Saved funnels of a bucket, by name.  Partition key scope: a handful per bucket.
    """
    CREATE TABLE IF NOT EXISTS funnels (
        scope text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), key)
    ) WITH comment = 'HiiTrack funnels: one partition per bucket'
    """,
    # Visitor state (the per-visitor event-ordering columns), by visitor id.
    # Visitors are the one unbounded population, so a bucket's visitors are
    # spread over 64 partitions by shard = crc32(visitor id) mod 64: a lookup
    # is one partition read; 10 million visitors make ~160k small rows per
    # partition, and deleting a bucket deletes at most 64 partitions instead
    # of one per visitor.  Rewritten on every tracked request: leveled compaction.
    """
    CREATE TABLE IF NOT EXISTS visitors (
        scope text,
        shard int,
        key   text,
        value blob,
        PRIMARY KEY ((scope, shard), key)
    ) WITH compaction = {'class': 'LeveledCompactionStrategy'}
      AND comment = 'HiiTrack visitor state: 64 shard partitions per bucket'
    """,
    # Insert ids of tracked hits (a retried hit with a known id counts once).
    # Sharded like visitors, since every hit may bring one; each row expires
    # after 30 days (the API promises at least 24 hours), so a bucket's
    # partitions stay bounded by its traffic of the last month.  Written
    # once, read on each hit with an id: size-tiered compaction, and gc_grace
    # shorter than the TTL is harmless because rows are never deleted by hand.
    """
    CREATE TABLE IF NOT EXISTS insert_ids (
        scope text,
        shard int,
        key   text,
        value blob,
        PRIMARY KEY ((scope, shard), key)
    ) WITH default_time_to_live = 2592000
      AND comment = 'HiiTrack insert ids: 64 shard partitions per bucket, 30-day TTL'
    """,
    # Kinds without a table of their own (today the installation secret).
    # Partition key scope, clustered by (kind, key): a scan of a kind is one
    # slice, and dropping the scope deletes one partition.
    """
    CREATE TABLE IF NOT EXISTS records (
        scope text,
        kind  text,
        key   text,
        value blob,
        PRIMARY KEY ((scope), kind, key)
    ) WITH comment = 'HiiTrack other records: one partition per scope'
    """,
    # The partitions a scope has written in the tables whose partition key is
    # not the scope alone (counters, property_values, visitors, insert_ids):
    # Cassandra cannot delete by a prefix of a partition key, so deleting a
    # bucket reads this index and deletes each partition it lists.  Written
    # before the data it indexes (once per partition per process, through a
    # bounded cache), so a partition is never stored without being findable.
    # Partition key scope: one bucket's entries scale with its counter rows,
    # i.e. with its catalog and its age in series shards.  Clustered by
    # (tbl, part), part being the partition key after the scope: the counter
    # generation (16 bytes) and row, the property id (UTF-8) or the shard
    # (4-byte big-endian).
    """
    CREATE TABLE IF NOT EXISTS scope_partitions (
        scope text,
        tbl   text,
        part  blob,
        PRIMARY KEY ((scope), tbl, part)
    ) WITH comment = 'HiiTrack index: partitions written per scope, for deletes'
    """,
]
