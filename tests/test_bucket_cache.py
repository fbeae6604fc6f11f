"""The tracking path's memory of buckets that exist, against a deletion that races a read.

Tests: hiitrack/accounts.py (`ensure_bucket`, `delete_bucket`).
"""

import pytest_twisted
from twisted.internet.defer import Deferred

from hiitrack.accounts import Accounts
from hiitrack.store.kinds import BUCKET
from hiitrack.store.sqlite import SQLiteStore


@pytest_twisted.ensureDeferred
async def test_a_bucket_read_before_its_deletion_ended_is_not_remembered_after_it(tmp_path):
    store = SQLiteStore(str(tmp_path / "s.db"))
    await store.open()
    try:
        accounts = Accounts(store)
        await accounts.create_user("u", "a-long-password")
        await accounts.create_bucket("u", "b", "")
        accounts._buckets.pop("u/b")
        # A hit's read of the bucket record is held until the bucket is deleted.
        get, held, reads = store.get, Deferred(), []

        async def slow_get(scope, kind, key):
            found = await get(scope, kind, key)
            if kind == BUCKET and not reads:
                reads.append(key)
                await held
            return found

        store.get = slow_get
        racing = Deferred.fromCoroutine(accounts.ensure_bucket("u", "b"))
        await accounts.delete_bucket("u", "b")
        held.callback(None)
        await racing
        # The next hit reads the store again, finds no bucket, and makes it anew.
        assert await store.get("u", BUCKET, "b") is None
        await accounts.ensure_bucket("u", "b")
        assert await store.get("u", BUCKET, "b") is not None
    finally:
        await store.close()
