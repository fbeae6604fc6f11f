"""The embedded store: one SQLite file, the default for a single machine.

store.py is the store; schema/ its versioned schema.  Tests:
tests/test_store_contract.py, tests/test_migrations.py.
"""

from hiitrack.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
