"""Cassandra schema version 2: the kind registry is the one place of expiry.

Every record is now written with ``USING TTL`` its kind's expiry
(hiitrack.store.kinds; 0, none, for kinds that do not expire), so the table
default of insert_ids would be a second, silent definition of the same 30
days: a change of the registry would not reach rows written without a TTL.
Idempotent, as every statement here must be.
"""

STATEMENTS = [
    # Rows already written keep the TTL they were written with.
    """
    ALTER TABLE insert_ids WITH default_time_to_live = 0
      AND comment = 'HiiTrack insert ids: 64 shard partitions per bucket, expiry from the kind registry'
    """,
]
