"""The SQLite store's commits, on the writer thread, and its point reads, on the reactor thread.

The batches written in one turn of the reactor go out as one commit, made on
the writer thread: the reactor goes on meanwhile, also while the commit
waits for another process's write lock.  Commits never checkpoint: the
writer thread's tick does.  A point read is answered at once, without a
thread, and so are a plain report's counter rows (at most
`AT_ONCE_READ_ROWS`, no column range); a series' rows are read on the reader
thread.  An error on the reactor thread's connection is a
`StoreUnavailable`, as on the threads.
"""

import sqlite3

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, gatherResults
from twisted.internet.task import deferLater

from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.kinds import VISITOR
from hiitrack.store.sqlite import SQLiteStore
from hiitrack.store.sqlite.store import AT_ONCE_READ_ROWS, CHECKPOINT_SECONDS
from hiitrack.store.write_behind import FOLD_SECONDS

SCOPE = "u/b"


@pytest.fixture
def store(tmp_path):
    """An opened SQLite store on tmp_path/s.db; closed after the test."""
    opened = SQLiteStore(str(tmp_path / "s.db"))
    pytest_twisted.blockon(defer.ensureDeferred(opened.open()))
    yield opened
    pytest_twisted.blockon(defer.ensureDeferred(opened.close()))


@pytest_twisted.ensureDeferred
async def test_the_batches_of_one_reactor_turn_are_one_commit(store):
    before = store._group.commits
    values = {f"v{n}": bytes([n]) * (n + 1) for n in range(5)}
    writes = [
        Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, key): value})))
        for key, value in values.items()
    ]
    await gatherResults(writes)
    assert store._group.commits - before == 1
    assert await store.scan(SCOPE, VISITOR) == values


@pytest_twisted.ensureDeferred
async def test_a_commit_waits_for_another_process_s_write_lock_off_the_reactor(store, tmp_path):
    other = sqlite3.connect(tmp_path / "s.db", isolation_level=None)
    try:
        await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, "before"): b"1"})))
        other.execute("BEGIN IMMEDIATE")
        written = Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, "during"): b"2"})))
        # The turn in which the commit is tried ends; a read still goes through meanwhile.
        await deferLater(reactor, 0, lambda: None)
        assert await store.get(SCOPE, VISITOR, "before") == b"1"
        assert not written.called
        other.execute("COMMIT")
        await written
        assert await store.get(SCOPE, VISITOR, "during") == b"2"
    finally:
        other.close()


@pytest_twisted.ensureDeferred
async def test_every_commit_is_made_on_the_writer_thread(store, tmp_path):
    """The reactor thread's connection, opened by the first read made there, is never opened by a
    commit: of one record, of a journaled thousand cells, or of a process that does not journal."""
    many = {b"c%d" % n: n + 1 for n in range(1000)}
    await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, "one"): b"y"})))
    await Deferred.fromCoroutine(
        store.write(WriteBatch(SCOPE, records={(VISITOR, "v"): b"s"}, increments={b"row": many}))
    )
    other = SQLiteStore(str(tmp_path / "s.db"))
    await other.open()
    try:
        await Deferred.fromCoroutine(other.write(WriteBatch(SCOPE, increments={b"other": many})))
        assert other._at_once is None
    finally:
        await other.close()
    assert store._at_once is None
    assert await store.get(SCOPE, VISITOR, "one") == b"y"
    assert store._at_once is not None
    assert await store.read_rows(SCOPE, [b"row", b"other"]) == [many, many]


@pytest_twisted.ensureDeferred
async def test_commits_leave_the_checkpoint_to_the_writer_thread_s_tick(store, tmp_path):
    """SQLite checkpoints by default once the WAL holds 1,000 pages (4 MB here); these commits
    put about 6 MB in it, and the file itself grows only at the checkpoint."""
    # The test checkpoints itself, below: a tick of the loop meanwhile would too.
    assert store._checkpoints_from.active()
    store._checkpoints_from.cancel()
    database = tmp_path / "s.db"
    before = database.stat().st_size
    state = b"x" * 100_000
    for n in range(60):
        await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, f"v{n}"): state})))
    assert database.stat().st_size == before
    await store.checkpoint()
    assert database.stat().st_size > 60 * len(state)


@pytest_twisted.ensureDeferred
async def test_checkpoints_fall_halfway_between_folds(store):
    """A fold and a checkpoint each hold the file for some ms: a commit that meets one waits for
    that one alone, not for a fold and then a checkpoint queued behind it."""
    assert FOLD_SECONDS == CHECKPOINT_SECONDS
    next_fold = store._behind.loop.call.getTime()
    first_checkpoint = store._checkpoints_from.getTime()
    assert next_fold - first_checkpoint == pytest.approx(CHECKPOINT_SECONDS / 2, abs=0.05)
    checkpointed: Deferred[float] = Deferred()
    checkpoint = store.checkpoint

    async def timed() -> None:
        if not checkpointed.called:
            checkpointed.callback(reactor.seconds())
        await checkpoint()

    store.checkpoint = timed
    at = await checkpointed
    assert store._checkpointing.running
    assert store._checkpointing.interval == CHECKPOINT_SECONDS
    assert store._behind.loop.call.getTime() - at == pytest.approx(CHECKPOINT_SECONDS / 2, abs=0.05)


@pytest_twisted.ensureDeferred
async def test_a_point_read_is_answered_at_once(store):
    await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, "v"): b"state"})))
    read = Deferred.fromCoroutine(store.get(SCOPE, VISITOR, "v"))
    assert read.called
    assert await read == b"state"
    assert await store.get(SCOPE, VISITOR, "other") is None


@pytest_twisted.ensureDeferred
async def test_a_plain_report_s_rows_are_read_at_once_and_a_series_on_the_reader_thread(store):
    rows = [b"r%d" % n for n in range(AT_ONCE_READ_ROWS + 1)]
    cells = {b"a": 1, b"b": 2, b"c": 3}
    await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, increments={row: dict(cells) for row in rows})))
    await store.fold()
    # One more, not folded yet: each read adds it to the cells it reads.
    await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, increments={rows[0]: {b"b": 5}})))
    plain = Deferred.fromCoroutine(store.read_rows(SCOPE, rows[:AT_ONCE_READ_ROWS]))
    assert plain.called
    assert await plain == [{b"a": 1, b"b": 7, b"c": 3}] + [cells] * (AT_ONCE_READ_ROWS - 1)
    series = Deferred.fromCoroutine(store.read_rows(SCOPE, rows[:1], b"b", b"c"))
    many = Deferred.fromCoroutine(store.read_rows(SCOPE, rows))
    assert not series.called and not many.called
    assert await series == [{b"b": 7}]
    assert await many == [{b"a": 1, b"b": 7, b"c": 3}] + [cells] * AT_ONCE_READ_ROWS


@pytest_twisted.ensureDeferred
async def test_an_error_on_the_reactor_thread_s_connection_is_a_store_error(store):
    await Deferred.fromCoroutine(store.write(WriteBatch(SCOPE, records={(VISITOR, "v"): b"state"})))
    assert await store.get(SCOPE, VISITOR, "v") == b"state"
    store._at_once.close()
    with pytest.raises(StoreUnavailable):
        await store.get(SCOPE, VISITOR, "v")
