"""From the driver's futures to the reactor: statements run, awaited, paged.

`execute_async` answers with a `ResponseFuture` whose callbacks fire on the
thread that reads the connection: the reactor's own for the store's
connections (wire.py), the driver's I/O thread for others.
`deferred_from_future` fires its Deferred on the reactor thread with either
outcome, at once when already there.  `Cql` holds the session and the
statements prepared at open, runs them, pages long results a round trip at
a time (iterating past a page would fetch the next one blocking), and bounds
how many are in flight.  Many statements at once (`Cql.each`) are started
and followed from their callbacks, and end with one callback on the reactor
thread, when the last has ended: over the driver's I/O thread a wake-up per
statement cost an eighth of the reactor's time on a commit-heavy load.
`packed` puts a commit's writes into as few batches as Cassandra takes
without a warning; `logged` makes writes one atomic batch.  A failure of
the cluster (down, overloaded, slow) becomes `StoreUnavailable`.  Tests: tests/test_cassandra.py,
tests/test_cassandra_outage.py.
"""

import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from cassandra import (
    CoordinationFailure,
    OperationTimedOut,
    Timeout,
    Unavailable,
    WriteFailure,
    WriteTimeout,
    WriteType,
)
from cassandra.cluster import NoHostAvailable, ResponseFuture
from cassandra.connection import ConnectionException
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType
from twisted.internet.defer import Deferred, DeferredSemaphore, fail, succeed
from twisted.python.failure import Failure

from hiitrack.gathering import gather
from hiitrack.store.cassandra.connect import idempotent
from hiitrack.store.cassandra.wire import on_reactor
from hiitrack.store.interface import StoreUnavailable

__all__ = [
    "Cql",
    "Write",
    "applied",
    "batch_logged",
    "deferred_from_future",
    "in_doubt",
    "logged",
    "packed",
    "translated",
]

MAX_IN_FLIGHT = 64
"""Statements one commit, read or drop keeps in flight at once."""
BATCH_BYTES = 4096
"""Estimated bytes of a batch over several partitions.  Cassandra logs a warning for each one
over ``batch_size_warn_threshold`` (5 KiB by default in Cassandra 5; the driver logs it again)
and refuses one over ``batch_size_fail_threshold`` (50 KiB).  A batch of one partition is one
mutation, which neither threshold checks: a partition larger than this goes alone."""
BATCH_PARTITIONS = 10
"""Partitions of one unlogged batch: Cassandra warns past
``unlogged_batch_across_partitions_warn_threshold`` (10 by default)."""
PARTITION_BATCH_BYTES = 64 * 1024
"""Estimated bytes of one partition's writes in one batch, so that a huge commit is several
requests of bounded size, far below Cassandra's largest mutation (half a commit log segment)."""
PARTITION_BYTES = 32
ROW_BYTES = 56
"""What Cassandra counts for a partition and for a row, beyond its clustering key and values.
Measured from its warnings (29 and 41 bytes), rounded up: a row's expiry adds to it."""

# Failures that mean "Cassandra cannot answer now" rather than a bug in a statement.
UNAVAILABLE = (
    NoHostAvailable,
    Unavailable,
    Timeout,
    CoordinationFailure,
    OperationTimedOut,
    ConnectionException,
    OverloadedErrorMessage,
    IsBootstrappingErrorMessage,
)


CAS_WRITE_UNKNOWN = 0x1700
"""Protocol v5's error for a lightweight transaction whose outcome is unknown (contended, or
replicas lost); the driver has no class for it.  Two processes creating one bucket at once on a
cluster meet it: a transient failure, not a bug."""


def translated(error: BaseException) -> BaseException:
    """`StoreUnavailable` for a failure of the cluster, the error itself for anything else."""
    if isinstance(error, UNAVAILABLE) or getattr(error, "code", None) == CAS_WRITE_UNKNOWN:
        unavailable = StoreUnavailable(f"cassandra: {type(error).__name__}: {error}")
        unavailable.__cause__ = error
        return unavailable
    return error


def batch_logged(error: BaseException) -> bool:
    """Whether `error` is a logged batch's timeout once its batchlog is stored on a node:
    Cassandra applies such a batch whole, later if not now (the coordinator, or the node that
    holds the batchlog, replays it)."""
    cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
    if not isinstance(cause, WriteTimeout):
        return False
    write_type = getattr(cause, "write_type", None)
    # BATCH: the batchlog was written.  BATCH_LOG: its write timed out, but a node that
    # acknowledged it holds it (seen as two nodes chose one that had just died).
    return write_type == WriteType.BATCH or (
        write_type == WriteType.BATCH_LOG and (getattr(cause, "received_responses", 0) or 0) >= 1
    )


def in_doubt(error: BaseException) -> bool:
    """Whether a failed write may have been applied, or be applied later: a coordinator took it
    and did not answer in time, or its replicas failed it midway.  A logged batch in a batchlog
    that no node acknowledged is such a write.  A refusal (too few replicas alive, overloaded)
    leaves nothing applied, and so does a closed connection as far as the server can tell: the
    driver's retry policy sends an idempotent write whose connection broke to the next host.
    """
    cause = error.__cause__ if isinstance(error, StoreUnavailable) else error
    if isinstance(cause, NoHostAvailable):
        return any(in_doubt(tried) for tried in cause.errors.values())
    return isinstance(cause, (WriteTimeout, WriteFailure, OperationTimedOut))


def _unavailable(failure: Failure) -> Failure:
    return failure if failure.value is None else Failure(translated(failure.value))


def deferred_from_future(reactor: Any, future: ResponseFuture) -> Deferred:
    """A Deferred that fires on the reactor thread with the future's ResultSet.

    The ResultSet holds one page: use its ``current_rows`` and
    ``paging_state``, never iterate past the page.
    """
    done: Deferred = Deferred()

    def settled(fire: Callable[[Any], object], outcome: Any) -> None:
        _let_go(future)
        fire(outcome)

    future.add_callbacks(
        lambda _rows: on_reactor(reactor, settled, done.callback, future),
        lambda error: on_reactor(reactor, settled, done.errback, error),
    )
    return done.addCallbacks(lambda finished: finished.result(), _unavailable)


def _let_go(future: ResponseFuture) -> None:
    """Drop the callbacks of a future that has ended.

    They refer to the future (or to what holds it), and the driver keeps
    them: each future, its statement and its rows would be a reference cycle
    left to Python's collector.  Under saturated batch load that was 400,000
    objects or more in 10 s, and full collections of up to 127 ms
    (docs/performance.md, "Session 39").
    """
    future.clear_callbacks()


def applied(result: Any) -> bool:
    """Whether a lightweight transaction was applied: the first column of its answer,
    ``[applied]``.  (The driver's `was_applied` refuses row factories not its own, such as
    connect.rows_as_named_tuples.)"""
    return bool(result.one()[0])


def chunks(items: list, size: int) -> Iterable[list]:
    return (items[at : at + size] for at in range(0, len(items), size))


class Write(NamedTuple):
    """A statement of a commit, the partition it writes, and its size as Cassandra counts a batch."""

    partition: Hashable
    statement: Any
    parameters: tuple
    size: int


def packed(writes: Iterable[Write], batch_type: BatchType) -> list[tuple[Any, Any]]:
    """`writes` in as few statements as possible: each partition's writes together, several
    partitions per batch up to `BATCH_PARTITIONS` and `BATCH_BYTES`; a lone write goes unbatched."""
    by_partition: dict[Hashable, list[Write]] = {}
    for write in writes:
        by_partition.setdefault(write.partition, []).append(write)
    groups: list[list[Write]] = []
    group: list[Write] = []
    partitions = size = 0
    for partition in by_partition.values():
        for piece, piece_size in _pieces(partition):
            if group and (partitions == BATCH_PARTITIONS or size + piece_size > BATCH_BYTES):
                groups.append(group)
                group, partitions, size = [], 0, 0
            group.extend(piece)
            partitions += 1
            size += piece_size
    if group:
        groups.append(group)
    return [_sent_as(group, batch_type) for group in groups]


def logged(writes: list[Write]) -> tuple[Any, Any]:
    """`writes` as one statement that Cassandra applies whole or not at all: a logged batch (or the write itself)."""
    return one_statement(writes, BatchType.LOGGED)


def _pieces(partition: list[Write]) -> Iterable[tuple[list[Write], int]]:
    """One partition's writes in pieces of at most `PARTITION_BATCH_BYTES` (or one write), with their sizes."""
    piece: list[Write] = []
    size = PARTITION_BYTES
    for write in partition:
        if piece and size + write.size > PARTITION_BATCH_BYTES:
            yield piece, size
            piece, size = [], PARTITION_BYTES
        piece.append(write)
        size += write.size
    if piece:
        yield piece, size


@dataclass(frozen=True)
class Unbound:
    """A batch of writes, bound into a `BatchStatement` only as it is sent (`Cql`'s every way of running one).

    Binding costs the driver about 12 µs a row: a fold of 25,000 cells bound
    at once held the reactor thread for 0.4 s, every request waiting.  Bound
    as sent, the first `MAX_IN_FLIGHT` at the start and each later one as an
    earlier one is answered, it is shorter steps (docs/performance.md,
    "Session 38").
    """

    writes: list[Write]
    batch_type: BatchType

    def bound(self) -> BatchStatement:
        batch = BatchStatement(batch_type=self.batch_type)
        # A batch may be sent again (connect.IdempotentRetries) when each of its statements may.
        batch.is_idempotent = all(write.statement.is_idempotent for write in self.writes)
        for write in self.writes:
            batch.add(write.statement, write.parameters)
        return batch


def _sent_as(group: list[Write], batch_type: BatchType) -> tuple[Any, Any]:
    """`group` as one statement: a batch of `batch_type` bound when sent, or the write itself when it is alone."""
    if len(group) == 1:
        return group[0].statement, group[0].parameters
    return Unbound(group, batch_type), None


def one_statement(group: list[Write], batch_type: BatchType) -> tuple[Any, Any]:
    """`group` as one statement, bound now: a batch of `batch_type`, or the write itself when it is alone."""
    statement, parameters = _sent_as(group, batch_type)
    return _sendable(statement), parameters


def _sendable(statement: Any) -> Any:
    """`statement` as the driver takes it: an `Unbound` batch is bound here, as it is sent."""
    return statement.bound() if isinstance(statement, Unbound) else statement


class _Phase:
    """Statements run `MAX_IN_FLIGHT` at a time, each started from the callback of one that ended;
    once every one has ended, one call on the reactor thread with each one's result or failure,
    in order."""

    def __init__(self, reactor: Any, session: Any, statements: list[tuple[Any, Any]]) -> None:
        self._reactor = reactor
        self._session = session
        self._statements = statements
        self._futures: list[Any] = [None] * len(statements)
        self._errors: dict[int, BaseException] = {}
        self._lock = threading.Lock()
        self._started = 0
        self._ended = 0
        # Starts asked for while another thread is starting: it does them (no recursion).
        self._wanted = 0
        self._starting = False
        self.done: Deferred = Deferred()

    def start(self) -> Deferred:
        for _ in range(min(MAX_IN_FLIGHT, len(self._statements))):
            self._start_next()
        return self.done

    def _start_next(self) -> None:
        with self._lock:
            self._wanted += 1
            if self._starting:
                return
            self._starting = True
        while True:
            with self._lock:
                if not self._wanted or self._started == len(self._statements):
                    self._starting = False
                    return
                self._wanted -= 1
                at = self._started
                self._started += 1
            statement, parameters = self._statements[at]
            try:
                future = self._session.execute_async(_sendable(statement), parameters)
            except Exception as error:
                self._end(at, error)
                continue
            self._futures[at] = future
            future.add_callbacks(self._succeeded, self._failed, callback_args=(at,), errback_args=(at,))

    def _succeeded(self, _rows: Any, at: int) -> None:
        self._end(at, None)

    def _failed(self, error: BaseException, at: int) -> None:
        self._end(at, error)

    def _end(self, at: int, error: BaseException | None) -> None:
        with self._lock:
            if error is not None:
                self._errors[at] = error
            self._ended += 1
            last = self._ended == len(self._statements)
        if last:
            on_reactor(self._reactor, self._finish)
        else:
            self._start_next()

    def _finish(self) -> None:
        outcomes = [
            translated(self._errors[at]) if at in self._errors else future.result()
            for at, future in enumerate(self._futures)
        ]
        for future in self._futures:
            if future is not None:
                _let_go(future)
        self.done.callback(outcomes)


def _all_succeeded(outcomes: list) -> list:
    """The results, or the first failure raised."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


class Cql:
    """The session and its prepared statements, by name; closed until `connected`."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._session: Any = None
        self._prepared: dict[str, Any] = {}

    def connected(self, session: Any, statements: dict[str, str]) -> None:
        """Use `session` from now on; prepare `statements` (blocking: call it off the reactor)."""
        self._prepared = {name: session.prepare(cql) for name, cql in statements.items()}
        for name, prepared in self._prepared.items():
            prepared.is_idempotent = idempotent(statements[name])
        self._session = session

    def closed(self) -> None:
        self._session, self._prepared = None, {}

    @property
    def session(self) -> Any:
        return self._session

    def statement(self, name: str) -> Any:
        if self._session is None:
            raise StoreUnavailable("cassandra: the store is not open")
        return self._prepared[name]

    def execute(self, statement: Any, parameters: Any = None, paging_state: bytes | None = None) -> Deferred:
        """One statement (prepared, a batch, or a name of a prepared one)."""
        try:
            if isinstance(statement, str):
                statement = self.statement(statement)
            if self._session is None:
                raise StoreUnavailable("cassandra: the store is not open")
            future = self._session.execute_async(_sendable(statement), parameters, paging_state=paging_state)
        except Exception as error:
            return fail(translated(error))
        return deferred_from_future(self._reactor, future)

    async def rows(self, statement: Any, parameters: Any) -> list:
        """Every row of a query, a page per round trip."""
        rows: list = []
        paging_state = None
        while True:
            result = await self.execute(statement, parameters, paging_state)
            rows.extend(result.current_rows)
            paging_state = result.paging_state
            if not paging_state:
                return rows

    def each(self, statements: Iterable[tuple[Any, Any]]) -> Deferred:
        """Run every (statement, parameters), a bounded number in flight; their results in order,
        or the first failure once all have ended."""
        return self.outcomes(statements).addCallback(_all_succeeded)

    def outcomes(self, statements: Iterable[tuple[Any, Any]]) -> Deferred:
        """Run every (statement, parameters) as `each` does; each one's result or failure, in order."""
        pending = list(statements)
        if not pending:
            return succeed([])
        if self._session is None:
            error = StoreUnavailable("cassandra: the store is not open")
            return succeed([error for _ in pending])
        return _Phase(self._reactor, self._session, pending).start()

    async def each_rows(self, queries: Iterable[tuple[Any, Any]]) -> list[list]:
        """Every row of every query, a bounded number in flight; per query, in order."""
        limit = DeferredSemaphore(MAX_IN_FLIGHT)

        def query(statement: Any, parameters: Any) -> Deferred:
            return Deferred.fromCoroutine(self.rows(statement, parameters))

        return await gather(limit.run(query, statement, parameters) for statement, parameters in queries)
