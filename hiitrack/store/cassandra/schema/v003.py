"""Cassandra schema version 3: reserved for the visitor history (the `history` branch).

This branch (exact funnels) adds version 4 and needs the versions numbered
without gaps; the history branch's own v003 replaces this file when both are
merged.  Until then it changes nothing but a table comment, idempotently.
"""

STATEMENTS = [
    "ALTER TABLE schema_versions WITH comment = 'HiiTrack schema versions applied to this keyspace'",
]
