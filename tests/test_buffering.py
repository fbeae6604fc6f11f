"""The bulk import's store (hiitrack/store/buffering.py), over each real backend.

Writes are answered before they are stored, reads see them, a flush commits
them merged, and a failed flush stops everything after it.  That an import
through it counts exactly as over HTTP is in tests/test_import.py.
"""

import uuid

import pytest
import pytest_twisted

from hiitrack.store import WriteBatch
from hiitrack.store.buffering import Buffered, FlushFailed
from hiitrack.store.kinds import EVENT, HIT, VISITOR


def _scope(user_name: str) -> str:
    return f"{user_name}/b{uuid.uuid4().hex[:8]}"


@pytest_twisted.ensureDeferred
async def test_reads_see_what_is_merged_and_a_flush_stores_it_merged(store, user_name):
    scope = _scope(user_name)
    buffered = Buffered(store, flush_batches=1000)
    await store.write(WriteBatch(scope, records={(EVENT, "old"): b"o", (EVENT, "gone"): b"g"}))
    await buffered.write(WriteBatch(scope, records={(VISITOR, "v"): b"1"}, increments={b"r": {b"c": 2}}))
    await buffered.write(
        WriteBatch(
            scope,
            records={(VISITOR, "v"): b"2", (EVENT, "new"): b"n"},
            increments={b"r": {b"c": 3, b"d": 1}},
            deletions={(EVENT, "gone")},
        )
    )
    assert await store.get(scope, VISITOR, "v") is None
    assert await buffered.get(scope, VISITOR, "v") == b"2"
    assert await buffered.get(scope, EVENT, "gone") is None
    assert await buffered.get(scope, EVENT, "old") == b"o"
    assert await buffered.scan(scope, EVENT) == {"old": b"o", "new": b"n"}
    assert await store.read_rows(scope, [b"r"]) == [{}]
    # A counter read cannot be overlaid: it flushes first.
    assert await buffered.read_rows(scope, [b"r"]) == [{b"c": 5, b"d": 1}]
    assert buffered.flushed == 2
    assert await store.get(scope, VISITOR, "v") == b"2"
    assert await store.scan(scope, EVENT) == {"old": b"o", "new": b"n"}


@pytest_twisted.ensureDeferred
async def test_a_cleared_part_reads_empty_until_put_again(store, user_name):
    scope = _scope(user_name)
    buffered = Buffered(store)
    history = HIT.of("v")
    await store.write(WriteBatch(scope, records={(history, "1"): b"a", (history, "2"): b"b"}))
    await buffered.write(WriteBatch(scope, cleared={history}))
    assert await buffered.get(scope, history, "1") is None
    await buffered.write(WriteBatch(scope, records={(history, "2"): b"c"}))
    assert await buffered.get(scope, history, "1") is None
    assert await buffered.get(scope, history, "2") == b"c"
    assert await buffered.page(scope, history) == [("2", b"c")]


@pytest_twisted.ensureDeferred
async def test_every_flush_batches_writes_wait_for_a_flush(store, user_name):
    scope = _scope(user_name)
    buffered = Buffered(store, flush_batches=3)
    for _ in range(7):
        await buffered.write(WriteBatch(scope, increments={b"r": {b"c": 1}}))
    assert buffered.flushed == 6
    assert await store.read_rows(scope, [b"r"]) == [{b"c": 6}]
    await buffered.flush()
    assert await store.read_rows(scope, [b"r"]) == [{b"c": 7}]


class _Failing:
    """A store whose writes fail: what a node timeout looks like to a flush."""

    def __init__(self, store: object) -> None:
        self._store = store

    async def write(self, batch: WriteBatch) -> None:
        raise OSError("the node did not answer")

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest_twisted.ensureDeferred
async def test_after_a_failed_flush_nothing_more_is_taken(store, user_name):
    scope = _scope(user_name)
    buffered = Buffered(_Failing(store), flush_batches=2)  # type: ignore[arg-type]
    await buffered.write(WriteBatch(scope, records={(VISITOR, "v"): b"1"}))
    with pytest.raises(FlushFailed, match="the node did not answer"):
        await buffered.write(WriteBatch(scope, records={(VISITOR, "w"): b"1"}))
    with pytest.raises(FlushFailed):
        await buffered.write(WriteBatch(scope, records={(VISITOR, "x"): b"1"}))
    with pytest.raises(FlushFailed):
        await buffered.flush()
    assert await store.get(scope, VISITOR, "v") is None
