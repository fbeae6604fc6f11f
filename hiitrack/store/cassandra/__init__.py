"""The Cassandra store: counters and records in a Cassandra cluster.

Selected by ``--store cassandra://HOST[,HOST...][:PORT]/KEYSPACE``.  The
schema is ``schema/v001.cql`` (read it for why each table is keyed the way it
is); it is created at open when a table is missing.  Every statement is
prepared at open and run with ``execute_async``, whose callbacks fire on the
driver's I/O thread and are handed to the reactor by `deferred_from_future`;
only connecting and creating the schema, which the driver does blocking, run
in a thread.  Writes go through the shared `GroupCommitter`: a commit sends
each counter partition's increments as one single-partition COUNTER batch and
each record as one statement, a bounded number in flight at a time.  A node
that is down, overloaded or slow turns into `StoreUnavailable` (HTTP 503)
within `REQUEST_TIMEOUT`; the driver reconnects by itself.  Tests:
tests/test_store_contract.py, tests/test_cassandra.py,
tests/test_cassandra_outage.py.
"""

import re
import struct
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from cassandra import ConsistencyLevel, CoordinationFailure, OperationTimedOut, ProtocolVersion, Timeout, Unavailable
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResponseFuture
from cassandra.connection import ConnectionException
from cassandra.policies import DCAwareRoundRobinPolicy, ExponentialReconnectionPolicy, TokenAwarePolicy
from cassandra.protocol import IsBootstrappingErrorMessage, OverloadedErrorMessage
from cassandra.query import BatchStatement, BatchType
from twisted.internet import reactor as default_reactor
from twisted.internet.defer import Deferred, DeferredList, DeferredSemaphore, fail
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure

from hiitrack.caching import LRU
from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.grouping import GroupCommitter, MergedWrite

__all__ = ["CassandraStore", "deferred_from_future", "replication_map"]

SCHEMA = Path(__file__).parent / "schema" / "v001.cql"

PORT = 9042
REQUEST_TIMEOUT = 5.0
"""Seconds a statement may take before the request fails with 503."""
CONNECT_TIMEOUT = 5.0
SCHEMA_TIMEOUT = 60.0
"""Seconds one schema statement may take (DDL waits for schema agreement)."""
OPEN_TIMEOUT = 180.0
"""A backstop for the whole open, should the driver itself hang."""
MAX_IN_FLIGHT = 64
"""Statements one commit, read or drop keeps in flight at once."""
BATCH_CELLS = 64
"""Counter cells per COUNTER batch: well under Cassandra's batch size limits."""
SHARDS = 64
INDEX_CACHE = 200_000
"""Partitions remembered as already written to scope_partitions."""
GENERATION_CACHE = 100_000
GENERATION_SECONDS = 10.0
"""How long a scope's counter generation is trusted before it is read again."""

INSTALLATION = "."
"""How the installation scope "" is stored: Cassandra rejects empty partition keys."""

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

UPSERT_RECORD = "INSERT INTO {table} ({columns}, value) VALUES ({marks}, ?)"
CREATE_RECORD = UPSERT_RECORD + " IF NOT EXISTS"
REPLACE_RECORD = "UPDATE {table} SET value = ? WHERE {record} IF value = ?"
GET_RECORD = "SELECT value FROM {table} WHERE {record}"
SCAN_RECORDS = "SELECT key, value FROM {table} WHERE {kind}"
DELETE_RECORD = "DELETE FROM {table} WHERE {record}"
DROP_PARTITION = "DELETE FROM {table} WHERE {partition}"
COUNT_PARTITION = "SELECT count(*) FROM {table} WHERE {partition}"

ADD_COUNTER = "UPDATE counters SET n = n + ? WHERE scope = ? AND generation = ? AND row = ? AND col = ?"
READ_ROW = "SELECT col, n FROM counters WHERE scope = ? AND generation = ? AND row = ? AND col >= ?"
READ_ROW_BEFORE = READ_ROW + " AND col < ?"
DROP_ROW = "DELETE FROM counters WHERE scope = ? AND generation = ? AND row = ?"
COUNT_ROW = "SELECT count(*) FROM counters WHERE scope = ? AND generation = ? AND row = ?"

GET_GENERATION = "SELECT generation FROM scope_generations WHERE scope = ?"
NEW_GENERATION = "INSERT INTO scope_generations (scope, generation) VALUES (?, ?) IF NOT EXISTS"
END_GENERATION = "DELETE FROM scope_generations WHERE scope = ? IF EXISTS"

ADD_PARTITION = "INSERT INTO scope_partitions (scope, tbl, part) VALUES (?, ?, ?)"
LIST_PARTITIONS = "SELECT tbl, part FROM scope_partitions WHERE scope = ?"
UNLIST_PARTITION = "DELETE FROM scope_partitions WHERE scope = ? AND tbl = ? AND part = ?"

COUNTERS = "counters"


@dataclass(frozen=True)
class _Table:
    """A records table: ``scope``, an optional `part` column, ``key``, ``value``.

    `part` is in the partition key when `indexed` (the scope's partitions are
    then listed in scope_partitions), else a clustering column or absent.
    """

    name: str
    part: str | None = None
    indexed: bool = False
    shards: int = 0

    def columns(self, with_key: bool = True) -> list[str]:
        return ["scope"] + ([self.part] if self.part else []) + (["key"] if with_key else [])

    def cql(self, template: str) -> str:
        partition = ["scope", self.part] if self.indexed else ["scope"]
        return template.format(
            table=self.name,
            columns=", ".join(self.columns()),
            marks=", ".join("?" for _ in self.columns()),
            record=" AND ".join(f"{column} = ?" for column in self.columns()),
            kind=" AND ".join(f"{column} = ?" for column in self.columns(with_key=False)),
            partition=" AND ".join(f"{column} = ?" for column in partition),
        )

    def encode_part(self, part: object) -> bytes:
        return struct.pack(">i", part) if isinstance(part, int) else str(part).encode("utf-8")

    def decode_part(self, raw: bytes) -> object:
        return struct.unpack(">i", raw)[0] if self.part == "shard" else raw.decode("utf-8")


USERS = _Table("users")
BUCKETS = _Table("buckets")
EVENTS = _Table("events")
PROPERTIES = _Table("properties")
PROPERTY_VALUES = _Table("property_values", "property", indexed=True)
FUNNELS = _Table("funnels")
VISITORS = _Table("visitors", "shard", indexed=True, shards=SHARDS)
INSERT_IDS = _Table("insert_ids", "shard", indexed=True, shards=SHARDS)
RECORDS = _Table("records", "kind")
TABLES = [USERS, BUCKETS, EVENTS, PROPERTIES, PROPERTY_VALUES, FUNNELS, VISITORS, INSERT_IDS, RECORDS]
SHARDED = {"visitor": VISITORS, "insert": INSERT_IDS}
BY_KIND = {"user": USERS, "bucket": BUCKETS, "event": EVENTS, "property": PROPERTIES, "funnel": FUNNELS}
VALUE_KIND = "value "


def _locate(kind: str, key: str) -> tuple[_Table, object]:
    """The table of a record kind, and the value of its `part` column."""
    table = BY_KIND.get(kind)
    if table is not None:
        return table, None
    if kind.startswith(VALUE_KIND):
        return PROPERTY_VALUES, kind[len(VALUE_KIND) :]
    if kind in SHARDED:
        table = SHARDED[kind]
        return table, zlib.crc32(key.encode("utf-8", "surrogatepass")) % table.shards
    return RECORDS, kind


def _stored(scope: str) -> str:
    return scope or INSTALLATION


def _address(table: _Table, scope: str, part: object, *rest: object) -> tuple:
    return (_stored(scope), *([] if table.part is None else [part]), *rest)


def replication_map(spec: str) -> str:
    """The CQL replication map of ``SimpleStrategy:N`` or ``NetworkTopologyStrategy:dc1=3,dc2=2``."""
    strategy, _, factors = spec.partition(":")
    if strategy == "SimpleStrategy" and factors.isdigit() and int(factors) >= 1:
        return f"{{'class': 'SimpleStrategy', 'replication_factor': {int(factors)}}}"
    if strategy == "NetworkTopologyStrategy" and factors:
        pairs = [factor.partition("=") for factor in factors.split(",")]
        if all(re.fullmatch(r"[A-Za-z0-9_.\-]+", dc) and n.isdigit() for dc, _, n in pairs):
            return "{'class': 'NetworkTopologyStrategy', " + ", ".join(f"'{dc}': {int(n)}" for dc, _, n in pairs) + "}"
    raise ValueError(
        f"bad Cassandra replication {spec!r}: use SimpleStrategy:N or NetworkTopologyStrategy:DC=N[,DC=N...]"
    )


def _consistency(name: str) -> int:
    try:
        return ConsistencyLevel.name_to_value[name.upper()]
    except KeyError:
        raise ValueError(f"bad Cassandra consistency {name!r}: use e.g. ONE, LOCAL_QUORUM, QUORUM") from None


def _translated(error: BaseException) -> BaseException:
    """`StoreUnavailable` for a failure of the cluster, the error itself for anything else."""
    if isinstance(error, UNAVAILABLE):
        unavailable = StoreUnavailable(f"cassandra: {type(error).__name__}: {error}")
        unavailable.__cause__ = error
        return unavailable
    return error


def _unavailable(failure: Failure) -> Failure:
    return Failure(_translated(failure.value))


def deferred_from_future(reactor: Any, future: ResponseFuture) -> Deferred:
    """A Deferred that fires on the reactor thread with the future's ResultSet.

    The driver runs callbacks on its I/O thread, so both outcomes hop to the
    reactor with ``callFromThread``.  The ResultSet holds one page: use its
    ``current_rows`` and ``paging_state``, never iterate past the page (that
    fetches the next one blocking).
    """
    done: Deferred = Deferred()
    future.add_callbacks(
        lambda _rows: reactor.callFromThread(done.callback, future),
        lambda error: reactor.callFromThread(done.errback, error),
    )
    return done.addCallbacks(lambda finished: finished.result(), _unavailable)


async def _gather(deferreds: Iterable[Deferred]) -> list:
    """Every result in order, once all have ended; the first failure if any."""
    results = await DeferredList(list(deferreds), consumeErrors=True)
    for succeeded, value in results:
        if not succeeded:
            value.raiseException()
    return [value for _, value in results]


class _Prepared(dict):
    """The prepared statements by (table, operation); empty until the store is open."""

    def __missing__(self, key: tuple[str, str]) -> Any:
        raise StoreUnavailable("cassandra: the store is not open")


class CassandraStore:
    def __init__(
        self,
        hosts: list[str],
        keyspace: str,
        port: int = PORT,
        replication: str | None = None,
        consistency: str | None = None,
        reactor: Any = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,47}", keyspace):
            raise ValueError(f"bad Cassandra keyspace {keyspace!r}: use 1-48 letters, digits and _")
        self.hosts = hosts
        self.port = port
        # CQL folds unquoted names to lower case; the schema metadata has them so.
        self.keyspace = keyspace.lower()
        self.replication = replication_map(replication or "SimpleStrategy:1")
        self.consistency = _consistency(consistency or "LOCAL_QUORUM")
        self._reactor = reactor or default_reactor
        self._cluster: Cluster | None = None
        self._session: Any = None
        self._prepared = _Prepared()
        self._group = GroupCommitter(lambda merged: Deferred.fromCoroutine(self._commit(merged)))
        # (stored scope, table, part) already in scope_partitions: a bounded set.
        self._indexed: LRU[tuple[str, str, bytes], bool] = LRU(INDEX_CACHE)
        # Stored scope -> (counter generation, when it was read).
        self._generations: LRU[str, tuple[uuid.UUID, float]] = LRU(GENERATION_CACHE)

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> "CassandraStore":
        """A store for ``cassandra://HOST[,HOST...][:PORT]/KEYSPACE``."""
        match = re.fullmatch(r"cassandra://([^/:]+(?:,[^/:]+)*)(?::(\d+))?/(\w+)/?", uri)
        if match is None:
            raise ValueError(f"bad Cassandra store {uri!r}: use cassandra://HOST[,HOST...][:PORT]/KEYSPACE")
        hosts, port, keyspace = match.groups()
        return cls(hosts.split(","), keyspace, int(port or PORT), **options)

    def __repr__(self) -> str:
        return f"cassandra://{','.join(self.hosts)}:{self.port}/{self.keyspace}"

    # Opening and closing: the driver connects blocking, so in a thread.

    def open(self) -> Deferred:
        opening = deferToThreadPool(self._reactor, self._reactor.getThreadPool(), self._connect)
        opening.addTimeout(OPEN_TIMEOUT, self._reactor)

        def failed(failure: Failure) -> Failure:
            if isinstance(failure.value, StoreUnavailable):
                return failure
            return Failure(StoreUnavailable(f"cassandra: could not open {self!r}: {failure.value!r}"))

        return opening.addErrback(failed)

    def _connect(self) -> None:
        profile = ExecutionProfile(
            # Explicit, so the driver does not warn about a default policy.
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=self.consistency,
            # Lightweight transactions (new users and buckets, a scope's counter
            # generation) agree across data centers: LOCAL_SERIAL would let two
            # data centers each create "the" generation of a new scope at once.
            serial_consistency_level=ConsistencyLevel.SERIAL,
            request_timeout=REQUEST_TIMEOUT,
        )
        cluster = Cluster(
            self.hosts,
            port=self.port,
            # Cassandra 4.0 and newer speak v5; naming it spares a negotiation
            # that logs a warning on every connection.
            protocol_version=ProtocolVersion.V5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=CONNECT_TIMEOUT,
            control_connection_timeout=CONNECT_TIMEOUT,
            # Retry a node that went down every few seconds at most, so service
            # resumes soon after it is back (the default backs off to 10 minutes).
            reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
        )
        try:
            session = cluster.connect()
            if not self._schema_present(cluster):
                schema = Template(SCHEMA.read_text()).substitute(keyspace=self.keyspace, replication=self.replication)
                for statement in _statements(schema):
                    session.execute(statement, timeout=SCHEMA_TIMEOUT)
            session.set_keyspace(self.keyspace)
            self._prepared = _Prepared((key, session.prepare(cql)) for key, cql in _cql().items())
        except BaseException as error:
            cluster.shutdown()
            translated = _translated(error)
            if translated is error:
                raise
            raise translated from error
        self._cluster, self._session = cluster, session

    def _schema_present(self, cluster: Cluster) -> bool:
        keyspace = cluster.metadata.keyspaces.get(self.keyspace)
        wanted = {table.name for table in TABLES} | {COUNTERS, "scope_partitions", "scope_generations"}
        return keyspace is not None and wanted <= set(keyspace.tables)

    def close(self) -> Deferred:
        def shut_down(_: object) -> Deferred | None:
            cluster, self._cluster = self._cluster, None
            self._session, self._prepared = None, _Prepared()
            if cluster is None:
                return None
            return deferToThreadPool(self._reactor, self._reactor.getThreadPool(), cluster.shutdown)

        return self._group.drain().addBoth(shut_down)

    # Statements.

    def _execute(self, statement: Any, parameters: Any = None, paging_state: bytes | None = None) -> Deferred:
        if self._session is None:
            return fail(StoreUnavailable("cassandra: the store is not open"))
        try:
            future = self._session.execute_async(statement, parameters, paging_state=paging_state)
        except Exception as error:
            return fail(_translated(error))
        return deferred_from_future(self._reactor, future)

    async def _rows(self, statement: Any, parameters: Any) -> list:
        """Every row of a query, a page per round trip."""
        rows: list = []
        paging_state = None
        while True:
            result = await self._execute(statement, parameters, paging_state)
            rows.extend(result.current_rows)
            paging_state = result.paging_state
            if not paging_state:
                return rows

    async def _run_all(self, statements: Iterable[tuple[Any, Any]]) -> None:
        limit = DeferredSemaphore(MAX_IN_FLIGHT)
        await _gather(limit.run(self._execute, statement, parameters) for statement, parameters in statements)

    def _record(self, table: _Table, operation: str) -> Any:
        return self._prepared[table.name, operation]

    # Records.

    def get(self, scope: str, kind: str, key: str) -> Deferred:
        table, part = _locate(kind, key)

        async def get() -> bytes | None:
            row = (await self._execute(self._record(table, "get"), _address(table, scope, part, key))).one()
            return None if row is None else row.value

        return Deferred.fromCoroutine(get())

    def scan(self, scope: str, kind: str) -> Deferred:
        table, part = _locate(kind, "")
        parts = range(table.shards) if table.shards else [part]

        async def scan() -> dict[str, bytes]:
            limit = DeferredSemaphore(MAX_IN_FLIGHT)
            statement = self._record(table, "scan")
            pages = await _gather(
                limit.run(lambda p: Deferred.fromCoroutine(self._rows(statement, _address(table, scope, p))), p)
                for p in parts
            )
            return {row.key: row.value for rows in pages for row in rows}

        return Deferred.fromCoroutine(scan())

    def create(self, scope: str, kind: str, key: str, value: bytes) -> Deferred:
        table, part = _locate(kind, key)

        async def create() -> bool:
            if table.indexed:
                await self._index({(_stored(scope), table.name, table.encode_part(part))})
            result = await self._execute(self._record(table, "create"), _address(table, scope, part, key, value))
            return bool(result.was_applied)

        return Deferred.fromCoroutine(create())

    def replace(self, scope: str, kind: str, key: str, old: bytes, new: bytes) -> Deferred:
        table, part = _locate(kind, key)

        async def replace() -> bool:
            statement = self._record(table, "replace")
            result = await self._execute(statement, (new, *_address(table, scope, part, key), old))
            return bool(result.was_applied)

        return Deferred.fromCoroutine(replace())

    def delete(self, scope: str, kind: str, key: str) -> Deferred:
        table, part = _locate(kind, key)

        async def delete() -> None:
            await self._execute(self._record(table, "delete"), _address(table, scope, part, key))

        return Deferred.fromCoroutine(delete())

    # Writes.

    def write(self, batch: WriteBatch) -> Deferred:
        return self._group.write(batch)

    async def _index(self, entries: set[tuple[str, str, bytes]]) -> None:
        """Add partitions to scope_partitions unless this process already did."""
        new = [entry for entry in entries if self._indexed.get(entry) is None]
        if not new:
            return
        await self._run_all(self._same_partition(self._prepared[COUNTERS, "index"], new))
        for entry in new:
            self._indexed.put(entry, True)

    def _same_partition(self, statement: Any, entries: list[tuple]) -> list[tuple[Any, Any]]:
        """`statement` for each of `entries`, which share a partition, in unlogged batches."""
        batches = []
        for chunk in _chunks(entries, BATCH_CELLS):
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            for entry in chunk:
                batch.add(statement, entry)
            batches.append((batch, None))
        return batches

    async def _generation(self, stored: str, create: bool) -> uuid.UUID | None:
        """The scope's counter generation; a new one if it has none and `create`."""
        cached = self._generations.get(stored)
        now = self._reactor.seconds()
        if cached is not None and now - cached[1] < GENERATION_SECONDS:
            return cached[0]
        row = (await self._execute(self._prepared[COUNTERS, "generation"], (stored,))).one()
        generation = None if row is None else row.generation
        if generation is None and create:
            candidate = uuid.uuid4()
            result = await self._execute(self._prepared[COUNTERS, "new generation"], (stored, candidate))
            # A lightweight transaction that lost answers with the winner's row.
            generation = candidate if result.was_applied else result.one().generation
        if generation is not None:
            self._generations.put(stored, (generation, now))
        return generation

    async def _commit(self, merged: MergedWrite) -> None:
        index: set[tuple[str, str, bytes]] = set()
        records: list[tuple[Any, Any]] = []
        statements: list[tuple[Any, Any]] = []
        for (scope, kind, key), value in merged.records.items():
            table, part = _locate(kind, key)
            if table.indexed:
                index.add((_stored(scope), table.name, table.encode_part(part)))
            records.append((self._record(table, "upsert"), _address(table, scope, part, key, value)))
        rows: defaultdict[tuple[str, bytes], list[tuple[bytes, int]]] = defaultdict(list)
        for (scope, row, column), amount in merged.increments.items():
            rows[_stored(scope), row].append((column, amount))
        scopes = sorted({scope for scope, _ in rows})
        generations = dict(zip(scopes, await _gather(self._generation_of(scope) for scope in scopes), strict=True))
        add = self._prepared[COUNTERS, "add"]
        for (scope, row), cells in rows.items():
            generation = generations[scope]
            index.add((scope, COUNTERS, generation.bytes + row))
            for chunk in _chunks(cells, BATCH_CELLS):
                if len(chunk) == 1:
                    statements.append((add, (chunk[0][1], scope, generation, row, chunk[0][0])))
                    continue
                # Counter updates cannot share a batch with other writes; one
                # partition per batch keeps it a single mutation on one replica set.
                batch = BatchStatement(batch_type=BatchType.COUNTER)
                for column, amount in chunk:
                    batch.add(add, (amount, scope, generation, row, column))
                statements.append((batch, None))
        # The index first: a partition is never written without being findable by drop.
        await self._index(index)
        # Records (visitor state, insert ids) before counters: Cassandra cannot
        # make both one atomic write, and if the process dies between them a
        # retried hit is then seen as applied (an undercount at worst), never
        # counted twice.
        await self._run_all(records)
        await self._run_all(statements)

    def _generation_of(self, stored: str) -> Deferred:
        return Deferred.fromCoroutine(self._generation(stored, create=True))

    # Counters.

    def read_rows(self, scope: str, rows: list[bytes], start: bytes = b"", end: bytes | None = None) -> Deferred:
        bounds = (start,) if end is None else (start, end)
        limit = DeferredSemaphore(MAX_IN_FLIGHT)

        async def read_all() -> list[dict[bytes, int]]:
            statement = self._prepared[COUNTERS, "read" if end is None else "read before"]
            generation = await self._generation(_stored(scope), create=False)
            if generation is None:
                return [{} for _ in rows]

            def read(row: bytes) -> Deferred:
                return Deferred.fromCoroutine(self._rows(statement, (_stored(scope), generation, row, *bounds)))

            slices = await _gather(limit.run(read, row) for row in rows)
            return [{cell.col: cell.n for cell in cells} for cells in slices]

        return Deferred.fromCoroutine(read_all())

    # Whole scopes.

    async def _partitions(self, scope: str) -> tuple[list[tuple[str, tuple]], list[tuple]]:
        """The scope's partitions as (table, partition key), and its scope_partitions entries."""
        stored = _stored(scope)
        found: list[tuple[str, tuple]] = [(table.name, (stored,)) for table in TABLES if not table.indexed]
        by_name = {table.name: table for table in TABLES}
        entries = await self._rows(self._prepared[COUNTERS, "list"], (stored,))
        for entry in entries:
            if entry.tbl == COUNTERS:
                found.append((COUNTERS, (stored, uuid.UUID(bytes=entry.part[:16]), entry.part[16:])))
            else:
                table = by_name[entry.tbl]
                found.append((table.name, (stored, table.decode_part(entry.part))))
        return found, [(stored, entry.tbl, entry.part) for entry in entries]

    def drop(self, scope: str) -> Deferred:
        stored = _stored(scope)

        async def drop() -> None:
            # Writes already accepted land first, so their index entries are read below.
            await self._group.drain()
            # Ending the generation first: increments from now on go to new partitions.
            await self._execute(self._prepared[COUNTERS, "end generation"], (stored,))
            self._generations.pop(stored)
            partitions, entries = await self._partitions(scope)
            await self._run_all((self._prepared[name, "drop"], key) for name, key in partitions)
            await self._run_all(self._same_partition(self._prepared[COUNTERS, "unlist"], entries))
            for entry in entries:
                self._indexed.pop(entry)

        return Deferred.fromCoroutine(drop())

    def count(self, scope: str) -> Deferred:
        async def count() -> int:
            partitions, _ = await self._partitions(scope)
            limit = DeferredSemaphore(MAX_IN_FLIGHT)
            results = await _gather(
                limit.run(self._execute, self._prepared[name, "count"], key) for name, key in partitions
            )
            return sum(result.one()[0] for result in results)

        return Deferred.fromCoroutine(count())


def _chunks(items: list, size: int) -> Iterable[list]:
    return (items[at : at + size] for at in range(0, len(items), size))


def _statements(schema: str) -> list[str]:
    """The statements of a schema file: comments dropped, split at semicolons."""
    code = "\n".join(line for line in schema.splitlines() if not line.lstrip().startswith("--"))
    return [statement.strip() for statement in code.split(";") if statement.strip()]


def _cql() -> dict[tuple[str, str], str]:
    """Every statement the store prepares, by (table, operation)."""
    cql = {
        (COUNTERS, "add"): ADD_COUNTER,
        (COUNTERS, "read"): READ_ROW,
        (COUNTERS, "read before"): READ_ROW_BEFORE,
        (COUNTERS, "drop"): DROP_ROW,
        (COUNTERS, "count"): COUNT_ROW,
        (COUNTERS, "generation"): GET_GENERATION,
        (COUNTERS, "new generation"): NEW_GENERATION,
        (COUNTERS, "end generation"): END_GENERATION,
        (COUNTERS, "index"): ADD_PARTITION,
        (COUNTERS, "list"): LIST_PARTITIONS,
        (COUNTERS, "unlist"): UNLIST_PARTITION,
    }
    for table in TABLES:
        for operation, template in [
            ("upsert", UPSERT_RECORD),
            ("create", CREATE_RECORD),
            ("replace", REPLACE_RECORD),
            ("get", GET_RECORD),
            ("scan", SCAN_RECORDS),
            ("delete", DELETE_RECORD),
            ("drop", DROP_PARTITION),
            ("count", COUNT_PARTITION),
        ]:
            cql[table.name, operation] = table.cql(template)
    return cql
