"""The SQLite store's schema: versions v001, v002, … applied in order at open.

The file records its version in ``PRAGMA user_version``.  Every version not
yet applied runs in one transaction together with the new version number, so
a file is always at exactly one version, and two processes opening the same
file at once cannot apply a version twice.  Tests: tests/test_migrations.py.
"""

import sqlite3

from hiitrack.store.migrations import Version, newer_than_known, versions

__all__ = ["VERSIONS", "migrate"]

VERSIONS: list[Version] = versions(__name__)


def migrate(connection: sqlite3.Connection, upto: int = len(VERSIONS)) -> int:
    """Bring the file to version `upto` (tests stop earlier); the version it was at."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        (found,) = connection.execute("PRAGMA user_version").fetchone()
        if found > len(VERSIONS):
            raise newer_than_known("the SQLite file", found, VERSIONS)
        for version in VERSIONS[found:upto]:
            for statement in version.statements:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {version.number:d}")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return found
