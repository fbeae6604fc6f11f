"""Cassandra's write-behind counters: journaled, folded, replayed, exact.

A store here is "killed" by shutting its driver down without its closing
fold: what it held in memory is gone, as after a SIGKILL, and only the
journal and the cells remain.  A store of the same writer opened after it
must then count every journaled increment exactly once, however far the
killed one had folded.  (A real SIGKILL of a real twistd under load is
tests/test_durability.py, on both stores.)
"""

import gc
import pickle
import uuid
from collections.abc import Callable, Iterable

import pytest
import pytest_twisted
from cassandra import OperationTimedOut, Unavailable, WriteFailure, WriteTimeout, WriteType
from cassandra.cluster import NoHostAvailable
from cassandra.connection import ConnectionException
from cassandra.query import BatchStatement, BatchType
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred

from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.cassandra import CassandraStore, counters
from hiitrack.store.cassandra import store as cassandra_store
from hiitrack.store.cassandra.bridge import in_doubt
from hiitrack.store.cassandra.journal import ENTRY_CELLS
from hiitrack.store.interface import in_parts
from hiitrack.store.kinds import VISITOR
from hiitrack.store.write_behind import Unfolded
from tests.conftest import CASSANDRA_URI
from tests.journaling import ROWS, added, hits, reads_in_column_order

pytestmark = pytest.mark.cassandra


async def opened(writer: str) -> CassandraStore:
    store = CassandraStore.from_uri(CASSANDRA_URI, writer=writer)
    await store.open()
    return store


async def folded_by_hand(user_name: str) -> tuple[str, str, CassandraStore]:
    """A bucket scope, a new writer, and a store of it that folds only when told."""
    scope, writer = f"{user_name}/b", f"w-{uuid.uuid4().hex}"
    store = await opened(writer)
    store._behind.stop()
    return scope, writer, store


async def read_by_a_new_writer(scope: str) -> list[dict[bytes, int]]:
    """`ROWS` as a process of another writer, just started, reads them."""
    other = await opened(f"w-{uuid.uuid4().hex}")
    try:
        return await other.read_rows(scope, ROWS)
    finally:
        await other.close()


async def killed(store: CassandraStore) -> None:
    """Stop `store` as a SIGKILL would: no fold, nothing more written."""
    await threads.deferToThread(store._cluster.shutdown)


@pytest_twisted.ensureDeferred
async def test_unfolded_increments_are_read_from_memory_and_folded_by_the_next_start(user_name):
    scope, writer, first = await folded_by_hand(user_name)
    totals = await hits(first, scope, 30)
    assert await first.read_rows(scope, ROWS) == added(totals)
    await killed(first)

    # Another process sees nothing of the killed one's unfolded hits...
    other = await opened(f"w-{uuid.uuid4().hex}")
    try:
        assert await other.read_rows(scope, ROWS) == [{}, {}]
        # ...until its writer starts again and folds its journal.
        again = await opened(writer)
        try:
            assert await again.read_rows(scope, ROWS) == added(totals)
            assert await other.read_rows(scope, ROWS) == added(totals)
            more = await hits(again, scope, 5)
        finally:
            await again.close()
        assert await other.read_rows(scope, ROWS) == added(totals, more)
    finally:
        await other.close()


@pytest_twisted.ensureDeferred
async def test_a_fold_killed_midway_is_finished_once(user_name):
    """The killed fold set the first row's cells and not the second's: the replay sets only the second."""
    scope, writer, first = await folded_by_hand(user_name)
    folded = await hits(first, scope, 20)
    await first.fold()
    totals = await hits(first, scope, 25)
    layer = first._behind.layers[-1]
    await first._journal.folding(layer.upto)
    half = Unfolded(layer.after)
    half.upto = layer.upto
    half.rows = {key: cells for key, cells in layer.rows.items() if key[1] == ROWS[0]}
    await first._counters.fold(half)
    later = await hits(first, scope, 3)
    await killed(first)

    again = await opened(writer)
    try:
        assert await again.read_rows(scope, ROWS) == added(folded, totals, later)
    finally:
        await again.close()
    reopened = await opened(writer)
    try:
        assert await reopened.read_rows(scope, ROWS) == added(folded, totals, later)
    finally:
        await reopened.close()


@pytest_twisted.ensureDeferred
async def test_a_fold_sent_again_changes_nothing(user_name):
    """After a timeout a fold is tried again, with this process's cache of totals or without it."""
    scope, writer, store = await folded_by_hand(user_name)
    try:
        totals = await hits(store, scope, 10)
        layer = store._behind.layers[-1]
        for _ in range(2):
            await store._counters.fold(layer)
            store._counters._totals.forget_where(lambda _: True)
        store._behind.layers = [Unfolded(layer.upto)]
        assert await store.read_rows(scope, ROWS) == added(totals)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_large_fold_is_worked_out_and_written_part_after_part(user_name, monkeypatch):
    """Each part's cells are written before the next part is worked out, and each is set once."""
    monkeypatch.setattr(counters, "FOLD_PART", 3)
    scope, _, store = await folded_by_hand(user_name)
    try:
        totals = await hits(store, scope, 10)
        each, put = store._cql.each, store._cql.statement("tallies put")
        parts: list[int] = []

        def recorded(statements: Iterable[tuple[object, object]]) -> Deferred:
            statements = list(statements)
            # A batch is bound only as it is sent: until then it holds its writes.
            writes = [write for statement, _ in statements for write in getattr(statement, "writes", [])]
            cells = sum(statement is put for statement, _ in statements)
            cells += sum(write.statement is put for write in writes)
            if cells:
                parts.append(cells)
            return each(statements)

        store._cql.each = recorded
        await store.fold()
        assert sum(parts) == 2 * 7 and max(parts) <= 3 and len(parts) >= 5
    finally:
        await store.close()
    assert await read_by_a_new_writer(scope) == added(totals)


@pytest_twisted.ensureDeferred
async def test_a_fold_reads_no_totals_its_process_wrote_and_the_collector_does_not_track_them(user_name):
    """A process's next fold of the same cells adds to the totals it cached, reading none.  The
    cache's keys are of strings and bytes only: Python's collector stops tracking them."""
    scope, _, store = await folded_by_hand(user_name)
    try:
        totals = await hits(store, scope, 10)
        await store.fold()
        totals = await hits(store, scope, 10, totals)
        each_rows, read = store._cql.each_rows, []

        def recorded(queries: Iterable[tuple[object, object]]) -> object:
            queries = list(queries)
            read.extend(queries)
            return each_rows(queries)

        store._cql.each_rows = recorded
        await store.fold()
        assert read == []
        gc.collect()
        keys = list(store._counters._totals._entries)
        assert len(keys) == 2 * 7 and not any(gc.is_tracked(key) for key in keys)
    finally:
        await store.close()
    assert await read_by_a_new_writer(scope) == added(totals)


@pytest_twisted.ensureDeferred
async def test_writers_add_up_and_each_reads_its_own_unfolded_hits(user_name):
    scope = f"{user_name}/b"
    first, second = await opened(f"w-{uuid.uuid4().hex}"), await opened(f"w-{uuid.uuid4().hex}")
    try:
        for store in (first, second):
            store._behind.stop()
        one = await hits(first, scope, 12)
        two = await hits(second, scope, 9)
        await second.fold()
        assert await first.read_rows(scope, ROWS) == added(one, two)
        assert await second.read_rows(scope, ROWS) == added(two)
        # A slice of columns, across writers and memory.
        assert await first.read_rows(scope, ROWS, b"c2", b"c5") == [
            {column: n for column, n in row.items() if b"c2" <= column < b"c5"} for row in added(one, two)
        ]
        await first.fold()
        assert await second.read_rows(scope, ROWS) == added(one, two)
    finally:
        await first.close()
        await second.close()


@pytest_twisted.ensureDeferred
async def test_a_row_reads_in_column_order_with_unfolded_columns_in_their_place(user_name):
    scope, _, store = await folded_by_hand(user_name)
    try:
        await reads_in_column_order(store, scope)
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_failed_fold_is_kept_and_tried_again(user_name):
    """While folds fail, commits merge into one layer (memory stays bounded); the next fold that
    works sets every cell once."""
    scope, writer, store = await folded_by_hand(user_name)
    fold = store._counters.fold

    async def failing(layer: Unfolded) -> int:
        raise StoreUnavailable("cassandra: a node timed out")

    try:
        totals = [await hits(store, scope, 10)]
        store._counters.fold = failing
        for _ in range(3):
            with pytest.raises(StoreUnavailable):
                await store.fold()
            totals.append(await hits(store, scope, 4))
            assert len(store._behind.layers) == 2
            assert await store.read_rows(scope, ROWS) == added(*totals)
        store._counters.fold = fold
        await store.fold()
        assert len(store._behind.layers) == 1 and not store._behind.layers[0]
        assert await store.read_rows(scope, ROWS) == added(*totals)
    finally:
        await store.close()
    again = await opened(writer)
    try:
        assert await again.read_rows(scope, ROWS) == added(*totals)
    finally:
        await again.close()


def logged_batches(
    store: CassandraStore, outcome: Callable[[BatchStatement], tuple[bool, BaseException | None]]
) -> list[BatchStatement]:
    """From now on `outcome` says of each logged batch the store sends whether it reaches
    Cassandra, and the failure it is answered with instead of its result, if any.  The logged
    batches that reached Cassandra, each time."""
    sent: list[BatchStatement] = []
    outcomes = store._cql.outcomes

    async def replaced(statements: Iterable[tuple[object, object]]) -> list[object]:
        statements = list(statements)
        given = [
            outcome(statement)
            if isinstance(statement, BatchStatement) and statement.batch_type == BatchType.LOGGED
            else (True, None)
            for statement, _ in statements
        ]
        sent.extend(
            statement
            for (statement, _), (reaches, _) in zip(statements, given, strict=True)
            if reaches and isinstance(statement, BatchStatement) and statement.batch_type == BatchType.LOGGED
        )
        real = iter(await outcomes(write for write, (reaches, _) in zip(statements, given, strict=True) if reaches))
        results = [next(real) if reaches else None for reaches, _ in given]
        return [result if error is None else error for (_, error), result in zip(given, results, strict=True)]

    store._cql.outcomes = lambda statements: Deferred.fromCoroutine(replaced(statements))
    return sent


def holds(batch: BatchStatement, value: bytes) -> bool:
    return any(value in parameter for _, _, parameters in batch._statements_and_parameters for parameter in parameters)


async def counted_before_and_after_a_kill(
    user_name: str, outcome: Callable[[BatchStatement], tuple[bool, BaseException | None]]
) -> list[BatchStatement]:
    """One hit written with `outcome` answering its logged batches (see `logged_batches`):
    counted, and counted and its visitor's state found by the next store of the writer after a
    kill.  The logged batches that reached Cassandra."""
    scope, writer, store = await folded_by_hand(user_name)
    try:
        sent = logged_batches(store, outcome)
        await store.write(WriteBatch(scope, {(VISITOR, "v"): b"state"}, {row: {b"c": 2} for row in ROWS}))
        assert await store.read_rows(scope, ROWS) == [{b"c": 2}] * 2
    finally:
        await killed(store)
    again = await opened(writer)
    try:
        assert await again.read_rows(scope, ROWS) == [{b"c": 2}] * 2
        assert await again.get(scope, VISITOR, "v") == b"state"
    finally:
        await again.close()
    return sent


def unavailable(cause: BaseException) -> StoreUnavailable:
    error = StoreUnavailable(f"cassandra: {cause}")
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    "timeout",
    [
        WriteTimeout("replicas timed out", write_type=WriteType.BATCH),
        # Two batchlog nodes were asked, one answered: it replays the batch.
        WriteTimeout("batchlog timed out", write_type=WriteType.BATCH_LOG, received_responses=1),
    ],
)
@pytest_twisted.ensureDeferred
async def test_a_batch_timed_out_after_its_batchlog_is_counted_and_not_sent_again(user_name, timeout):
    """Cassandra applies a logged batch once its batchlog is stored: its timeout then is not a
    failure, and sending it again as a logged batch would only load the cluster.  Its writes are
    sent again unlogged, so that a restart, or the visitor's next hit, before Cassandra replays
    the batch finds them."""
    # The batch waits in a batchlog: nothing of it is in the tables yet.
    sent = await counted_before_and_after_a_kill(user_name, lambda batch: (False, unavailable(timeout)))
    assert sent == []


@pytest_twisted.ensureDeferred
async def test_a_failed_commit_counts_the_units_that_landed(user_name):
    """A commit of two units, one of which Cassandra refuses on every attempt: it is answered 503,
    and the unit that landed is counted (its retried hits will be seen as applied), the other not."""
    scope, writer, store = await folded_by_hand(user_name)
    store._group._unit_weight = 1
    try:
        # The coordinator refused it: nothing of it can be applied later.
        lost = unavailable(Unavailable("not enough replicas", consistency=6, required_replicas=2, alive_replicas=1))
        logged_batches(store, lambda batch: (False, lost) if holds(batch, b"fails") else (True, None))
        # Written in one reactor turn, the two go out in one commit (it starts at the turn's end), as two units.
        failing = Deferred.fromCoroutine(
            store.write(WriteBatch(scope, {(VISITOR, "failing"): b"fails"}, {ROWS[0]: {b"c": 1}}))
        )
        landing = Deferred.fromCoroutine(
            store.write(WriteBatch(scope, {(VISITOR, "landing"): b"ok"}, {ROWS[0]: {b"b": 1}}))
        )
        for write in [failing, landing]:
            with pytest.raises(StoreUnavailable):
                await write
        assert await store.read_rows(scope, ROWS) == [{b"b": 1}, {}]
    finally:
        await killed(store)
    again = await opened(writer)
    try:
        assert await again.read_rows(scope, ROWS) == [{b"b": 1}, {}]
        assert await again.get(scope, VISITOR, "landing") == b"ok"
        assert await again.get(scope, VISITOR, "failing") is None
    finally:
        await again.close()


IN_DOUBT = WriteTimeout("batchlog timed out", write_type=WriteType.BATCH_LOG, received_responses=0)


def failing_in_turn(failures: list[BaseException]) -> Callable[[BatchStatement], tuple[bool, BaseException | None]]:
    """For `logged_batches`: the first logged batches sent fail with `failures`, in turn, without
    reaching Cassandra; those after reach it."""
    left = list(failures)

    def outcome(batch: BatchStatement) -> tuple[bool, BaseException | None]:
        return (False, unavailable(left.pop(0))) if left else (True, None)

    return outcome


@pytest.mark.parametrize(
    ("error", "doubt"),
    [
        (IN_DOUBT, True),
        (OperationTimedOut("no answer in time"), True),
        (WriteFailure("a replica failed", write_type=WriteType.BATCH_LOG), True),
        (NoHostAvailable("the last host timed out", {"127.0.0.2": IN_DOUBT}), True),
        (Unavailable("not enough replicas", consistency=6, required_replicas=2, alive_replicas=1), False),
        (NoHostAvailable("no host to try", {}), False),
        (NoHostAvailable("every connection closed", {"127.0.0.2": ConnectionException("closed")}), False),
    ],
)
def test_a_write_is_in_doubt_when_a_coordinator_took_it_and_did_not_answer(error, doubt):
    assert in_doubt(unavailable(error)) is doubt


@pytest_twisted.ensureDeferred
async def test_a_batch_in_doubt_is_sent_again_until_it_lands_and_counted_once(user_name, monkeypatch):
    """No node answered the batchlog's write in time: a node may hold it and apply it later.
    Answered 503, its hit would be retried, found applied (its insert id) and left uncounted.
    The batch is sent again until it lands instead, and its hit answered once it has."""
    monkeypatch.setattr(cassandra_store, "DOUBT_PAUSE", 0.01)
    sent = await counted_before_and_after_a_kill(user_name, failing_in_turn([IN_DOUBT] * 3))
    assert len(sent) == 1


@pytest_twisted.ensureDeferred
async def test_a_batch_in_doubt_stays_in_doubt_when_later_attempts_are_refused(user_name, monkeypatch):
    """A refusal of a later attempt says nothing of the first, which a batchlog may hold."""
    monkeypatch.setattr(cassandra_store, "DOUBT_PAUSE", 0.01)
    scope, _, store = await folded_by_hand(user_name)
    refusal = Unavailable("not enough replicas", consistency=6, required_replicas=2, alive_replicas=1)
    try:
        sent = logged_batches(store, failing_in_turn([IN_DOUBT, refusal, refusal]))
        await store.write(WriteBatch(scope, {(VISITOR, "v"): b"state"}, {ROWS[0]: {b"c": 1}}))
        assert len(sent) == 1
        assert await store.read_rows(scope, ROWS) == [{b"c": 1}, {}]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_batch_in_doubt_for_doubt_seconds_is_answered_503(user_name, monkeypatch):
    monkeypatch.setattr(cassandra_store, "DOUBT_PAUSE", 0.01)
    monkeypatch.setattr(cassandra_store, "DOUBT_SECONDS", 0.2)
    scope, _, store = await folded_by_hand(user_name)
    attempts = []
    try:
        logged_batches(store, lambda batch: attempts.append(batch) or (False, unavailable(IN_DOUBT)))
        started = reactor.seconds()  # the clock the store measures doubt on
        with pytest.raises(StoreUnavailable):
            await store.write(WriteBatch(scope, {(VISITOR, "v"): b"state"}, {ROWS[0]: {b"c": 1}}))
        assert reactor.seconds() - started >= 0.2
        assert len(attempts) > cassandra_store.WRITE_ATTEMPTS
        assert await store.read_rows(scope, ROWS) == [{}, {}]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_entries_journaled_flat_before_rows_were_grouped_still_replay(user_name):
    """Journals written by the first version of write-behind hold (scope, row, column) keys."""
    scope, writer = f"{user_name}/b", f"w-{uuid.uuid4().hex}"
    other = await opened(f"w-{uuid.uuid4().hex}")
    try:
        flat = {(scope, ROWS[0], b"a"): 3, (scope, ROWS[1], b"b"): 1}
        await other._cql.execute("journal add", (writer, 0, 1, pickle.dumps(flat)))
    finally:
        await other.close()
    store = await opened(writer)
    try:
        assert await store.read_rows(scope, ROWS) == [{b"a": 3}, {b"b": 1}]
    finally:
        await store.close()


def test_a_commit_larger_than_an_entry_is_several_entries_holding_every_cell_once():
    rows = {
        ("u/b", b"long"): {b"c%05d" % n: n + 1 for n in range(ENTRY_CELLS + 5)},
        ("u/b", b"short"): {b"x": 1, b"y": 2},
    }
    entries = list(in_parts(rows, ENTRY_CELLS))
    assert len(entries) == 2
    assert all(sum(len(columns) for columns in entry.values()) <= ENTRY_CELLS for entry in entries)
    joined: dict = {}
    for entry in entries:
        for key, columns in entry.items():
            assert not set(columns) & set(joined.get(key, {}))
            joined.setdefault(key, {}).update(columns)
    assert joined == rows
