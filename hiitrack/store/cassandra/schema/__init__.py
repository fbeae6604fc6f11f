"""The Cassandra store's schema: versions v001, v002, … applied in order at open.

Before any version: the keyspace (with the replication of the command line;
an existing keyspace is left as it is, change it with ALTER KEYSPACE and a
repair) and ``schema_versions``, which holds one row per version applied.
Each version missing there is applied statement by statement and then
recorded.  Two servers starting at once may apply the same version, so every
statement must be idempotent (IF NOT EXISTS, or an ALTER to a fixed value).
To build the schema by hand, run the bootstrap and each version's statements
with cqlsh in the keyspace.  Tests: tests/test_migrations.py.
"""

from typing import Any

from hiitrack.store.migrations import Version, newer_than_known, versions

__all__ = ["VERSIONS", "migrate"]

VERSIONS: list[Version] = versions(__name__)

SCHEMA_TIMEOUT = 60.0
"""Seconds one schema statement may take (DDL waits for schema agreement)."""

CREATE_KEYSPACE = "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}"
# One row per applied version; a handful of rows, read once per start.
CREATE_VERSIONS = """
    CREATE TABLE IF NOT EXISTS {keyspace}.schema_versions (
        version int,
        applied timestamp,
        PRIMARY KEY ((version))
    ) WITH comment = 'HiiTrack schema versions applied to this keyspace'
"""
APPLIED_VERSIONS = "SELECT version FROM schema_versions"
RECORD_VERSION = "INSERT INTO schema_versions (version, applied) VALUES (%s, toTimestamp(now()))"


def migrate(session: Any, keyspace: str, replication: str, upto: int = len(VERSIONS)) -> list[int]:
    """Bring `keyspace` to version `upto` (tests stop earlier); the versions applied now.

    Blocking: run it off the reactor.  Leaves `session` in the keyspace.
    """
    known = session.cluster.metadata.keyspaces.get(keyspace)
    if known is None or "schema_versions" not in known.tables:
        session.execute(CREATE_KEYSPACE.format(keyspace=keyspace, replication=replication), timeout=SCHEMA_TIMEOUT)
        session.execute(CREATE_VERSIONS.format(keyspace=keyspace), timeout=SCHEMA_TIMEOUT)
    session.set_keyspace(keyspace)
    recorded = {row.version for row in session.execute(APPLIED_VERSIONS)}
    if max(recorded, default=0) > len(VERSIONS):
        raise newer_than_known(f"keyspace {keyspace}", max(recorded), VERSIONS)
    applied = []
    for version in VERSIONS[:upto]:
        if version.number not in recorded:
            for statement in version.statements:
                session.execute(statement, timeout=SCHEMA_TIMEOUT)
            session.execute(RECORD_VERSION, (version.number,))
            applied.append(version.number)
    return applied
