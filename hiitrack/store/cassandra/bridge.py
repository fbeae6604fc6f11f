"""From the driver's futures to the reactor: statements run, awaited, paged.

`execute_async` answers with a `ResponseFuture` whose callbacks fire on the
driver's I/O thread; `deferred_from_future` hands both outcomes to the
reactor thread.  `Cql` holds the session and the statements prepared at
open, runs them, pages long results a round trip at a time (iterating past a
page would fetch the next one blocking), and bounds how many are in flight.
A failure of the cluster (down, overloaded, slow) becomes `StoreUnavailable`.
Tests: tests/test_cassandra.py, tests/test_cassandra_outage.py.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from cassandra import CoordinationFailure, OperationTimedOut, Timeout, Unavailable
from cassandra.cluster import NoHostAvailable, ResponseFuture
from cassandra.connection import ConnectionException
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, fail
from twisted.python.failure import Failure

from hiitrack.store.interface import StoreUnavailable

__all__ = ["BATCH_SIZE", "Cql", "deferred_from_future", "gather", "translated"]

MAX_IN_FLIGHT = 64
"""Statements one commit, read or drop keeps in flight at once."""
BATCH_SIZE = 64
"""Statements per batch: well under Cassandra's batch size limits."""

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


def _unavailable(failure: Failure) -> Failure:
    return failure if failure.value is None else Failure(translated(failure.value))


def deferred_from_future(reactor: Any, future: ResponseFuture) -> Deferred:
    """A Deferred that fires on the reactor thread with the future's ResultSet.

    The ResultSet holds one page: use its ``current_rows`` and
    ``paging_state``, never iterate past the page.
    """
    done: Deferred = Deferred()
    future.add_callbacks(
        lambda _rows: reactor.callFromThread(done.callback, future),
        lambda error: reactor.callFromThread(done.errback, error),
    )
    return done.addCallbacks(lambda finished: finished.result(), _unavailable)


async def gather(deferreds: Iterable[Deferred]) -> list:
    """Every result in order, once all have ended; the first failure if any."""
    results = await DeferredList(list(deferreds), consumeErrors=True)
    for succeeded, value in results:
        if not succeeded:
            value.raiseException()
    return [value for _, value in results]


def chunks(items: list, size: int) -> Iterable[list]:
    return (items[at : at + size] for at in range(0, len(items), size))


class Cql:
    """The session and its prepared statements, by name; closed until `connected`."""

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._session: Any = None
        self._prepared: dict[str, Any] = {}

    def connected(self, session: Any, statements: dict[str, str]) -> None:
        """Use `session` from now on; prepare `statements` (blocking: call it off the reactor)."""
        self._prepared = {name: session.prepare(cql) for name, cql in statements.items()}
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
            future = self._session.execute_async(statement, parameters, paging_state=paging_state)
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

    async def each(self, statements: Iterable[tuple[Any, Any]]) -> list:
        """Run every (statement, parameters), a bounded number in flight; their results in order."""
        limit = DeferredSemaphore(MAX_IN_FLIGHT)
        return await gather(limit.run(self.execute, statement, parameters) for statement, parameters in statements)

    async def each_rows(self, queries: Iterable[tuple[Any, Any]]) -> list[list]:
        """Every row of every query, a bounded number in flight; per query, in order."""
        limit = DeferredSemaphore(MAX_IN_FLIGHT)

        def query(statement: Any, parameters: Any) -> Deferred:
            return Deferred.fromCoroutine(self.rows(statement, parameters))

        return await gather(limit.run(query, statement, parameters) for statement, parameters in queries)

    def batches(self, name: str, entries: Sequence[tuple]) -> list[tuple[Any, Any]]:
        """Statement `name` for each of `entries` (best when they share a partition), in unlogged batches."""
        statement = self.statement(name)
        batches = []
        for chunk in chunks(list(entries), BATCH_SIZE):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for entry in chunk:
                batch.add(statement, entry)
            batches.append((batch, None))
        return batches
