"""The Cassandra store beyond the shared contract: its schema, deletes checked
with CQL, options, failing fast when the cluster cannot be reached, and the
write path (batches under Cassandra's warning thresholds, records before
the journal, one reactor wake-up per phase, TCP_NODELAY) and the point reads
of a reactor turn sent as one statement.

Uses the real node of scripts/cassandra and the session's test keyspace; the
node outage test is tests/test_cassandra_outage.py.
"""

import gc
import logging
import math
import socket
import statistics
import time
import uuid
import weakref
import zlib

import pytest
import pytest_twisted
from cassandra import ConsistencyLevel, InvalidRequest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster
from cassandra.connection import ConnectionException
from cassandra.policies import RetryPolicy
from cassandra.protocol import ErrorMessage
from cassandra.query import BatchType, SimpleStatement, dict_factory
from twisted.internet import defer, reactor, task, threads

from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.cassandra import CassandraStore, replication_map
from hiitrack.store.cassandra.bridge import CAS_WRITE_UNKNOWN, Unbound, Write, packed, translated
from hiitrack.store.cassandra.connect import REQUEST_TIMEOUT, Settings, cluster
from hiitrack.store.cassandra.counters import COLUMNS_PER_READ
from hiitrack.store.cassandra.lookups import LOOKUP_KEYS
from hiitrack.store.cassandra.partitions import SPREAD_SHARDS, Entry
from hiitrack.store.kinds import BUCKET, EVENT, FUNNEL, HIT, INSERT, PROPERTY, SECRET, USER, VALUE, VISITOR
from tests.conftest import CASSANDRA, CASSANDRA_URI
from tests.http import path

pytestmark = pytest.mark.cassandra

SHARDS = VISITOR.partitioning.shards
KEYSPACE = CASSANDRA_URI.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def cql():
    """A plain driver session on the test keyspace, for checking what is stored."""
    host, _, port = CASSANDRA.partition(":")
    cluster = Cluster([host], port=int(port or 9042), protocol_version=5)
    session = cluster.connect()
    session.row_factory = dict_factory
    yield session
    cluster.shutdown()


async def query(session, statement: str, *parameters: object) -> list[dict]:
    # The driver's blocking execute, kept off the reactor thread.
    return list(await threads.deferToThread(session.execute, statement, parameters))


async def opened(**options: object) -> CassandraStore:
    store = CassandraStore.from_uri(CASSANDRA_URI, **options)
    await store.open()
    return store


@pytest_twisted.ensureDeferred
async def test_second_store_sees_the_data(user_name):
    scope = f"{user_name}/b"
    first = await opened()
    try:
        assert await first.create(user_name, BUCKET, "b", b"bucket record")
        await first.write(WriteBatch(scope, {(EVENT, "e1"): b"A"}, {b"row": {b"col": 5}}))
    finally:
        await first.close()

    second = await opened()
    try:
        assert await second.get(user_name, BUCKET, "b") == b"bucket record"
        assert await second.scan(scope, EVENT) == {"e1": b"A"}
        assert await second.read_rows(scope, [b"row"]) == [{b"col": 5}]
        assert not await second.create(user_name, BUCKET, "b", b"other")
        await second.write(WriteBatch(scope, increments={b"row": {b"col": 1}}))
        assert await second.read_rows(scope, [b"row"]) == [{b"col": 6}]
    finally:
        await second.close()


@pytest_twisted.ensureDeferred
async def test_drop_deletes_the_rows_of_every_table(cql, user_name):
    keyspace = KEYSPACE
    scope, kept = f"{user_name}/doomed", f"{user_name}/kept"
    store = await opened()
    try:
        for each in (scope, kept):
            await store.write(
                WriteBatch(
                    each,
                    records={
                        (EVENT, "e"): b"E",
                        (PROPERTY, "p"): b"P",
                        (VALUE.of("p"), "pv"): b"1",
                        (FUNNEL, "f"): b"[]",
                        (SECRET, "s"): b"S",
                        (INSERT, "i"): b"1",
                        **{(VISITOR, f"v{i}"): b"state" for i in range(20)},
                    },
                    increments={b"row%d" % i: {b"c": 1} for i in range(10)},
                )
            )
        assert await store.create(user_name, BUCKET, "doomed", b"{}")
        await store.fold()

        async def rows(table: str, condition: str, *parameters: object) -> int:
            return len(await query(cql, f"SELECT * FROM {keyspace}.{table} WHERE {condition}", *parameters))

        (found,) = await query(cql, f"SELECT generation FROM {keyspace}.scope_generations WHERE scope = %s", scope)
        generation = found["generation"]

        async def stored() -> dict[str, int]:
            found = {
                table: await rows(table, "scope = %s", scope)
                for table in ["events", "properties", "funnels", "records", "scope_partitions", "scope_generations"]
            }
            found["property_values"] = await rows("property_values", "scope = %s AND property = %s", scope, "p")
            for table in ("visitors", "insert_ids"):
                found[table] = sum(
                    [await rows(table, "scope = %s AND shard = %s", scope, shard) for shard in range(SHARDS)]
                )
            in_row = "scope = %s AND generation = %s AND row = %s"
            found["tallies"] = sum([await rows("tallies", in_row, scope, generation, b"row%d" % n) for n in range(10)])
            return found

        before = await stored()
        assert before == {
            "events": 1,
            "properties": 1,
            "property_values": 1,
            "funnels": 1,
            "records": 1,
            # 10 counter rows, 1 property's values, the visitor and insert id shards in use.
            "scope_partitions": 10 + 1 + len({VISITOR.partitioning.shard(f"v{i}") for i in range(20)}) + 1,
            "scope_generations": 1,
            "visitors": 20,
            "insert_ids": 1,
            "tallies": 10,
        }

        await store.drop(scope)
        assert await stored() == dict.fromkeys(before, 0)
        # The user's bucket record lives in the user's scope: dropping the
        # bucket's scope does not touch it; dropping the user's scope does.
        assert len(await query(cql, f"SELECT * FROM {keyspace}.buckets WHERE scope = %s", user_name)) == 1
        await store.drop(user_name)
        assert await query(cql, f"SELECT * FROM {keyspace}.buckets WHERE scope = %s", user_name) == []
        # The other bucket is whole.
        assert await store.count(kept) == 6 + 20 + 10
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_index_of_a_history_is_spread_and_drop_still_deletes_every_visitor_s(cql, user_name):
    """A partition per visitor (the history) is listed in index partitions of its own, a shard of
    them per visitor, not in the scope's one; drop deletes them all, those listed in the scope's
    partition by a HiiTrack before the spread too."""
    scope = f"{user_name}/b"
    visitors = [f"v{n}" for n in range(200)]
    spread = [f"{scope}#hits/{shard}" for shard in range(SPREAD_SHARDS)]

    async def listed(partition: str) -> list[bytes]:
        found = await query(cql, f"SELECT tbl, part FROM {KEYSPACE}.scope_partitions WHERE scope = %s", partition)
        return [row["part"] for row in found if row["tbl"] == "hits"]

    async def history(visitor: str) -> int:
        found = await query(cql, f"SELECT key FROM {KEYSPACE}.hits WHERE scope = %s AND visitor = %s", scope, visitor)
        return len(found)

    store = await opened()
    try:
        await store.write(WriteBatch(scope, {(HIT.of(visitor), "000001"): visitor.encode() for visitor in visitors}))
        # As a HiiTrack before the spread listed a visitor's history: under the scope.
        await query(
            cql, f"INSERT INTO {KEYSPACE}.scope_partitions (scope, tbl, part) VALUES (%s, 'hits', %s)", scope, b"old"
        )
        await query(
            cql, f"INSERT INTO {KEYSPACE}.hits (scope, visitor, key, value) VALUES (%s, 'old', '1', 0x31)", scope
        )
        assert await listed(scope) == [b"old"]
        per_partition = [len(await listed(partition)) for partition in spread]
        assert sum(per_partition) == len(visitors)
        assert max(per_partition) < len(visitors) / 4

        await store.drop(scope)
        for partition in [scope, *spread]:
            assert await listed(partition) == []
        for visitor in [*visitors, "old"]:
            assert await history(visitor) == 0
        # A history written again after the drop is listed again, and dropped again.
        await store.write(WriteBatch(scope, {(HIT.of("v0"), "000001"): b"again"}))
        assert await store._index.of(scope) == [Entry(scope, "hits", b"v0", spread[zlib.crc32(b"v0") % SPREAD_SHARDS])]
        await store.drop(scope)
        assert await history("v0") == 0
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_unreachable_cluster_fails_fast_with_store_unavailable():
    store = CassandraStore.from_uri("cassandra://127.0.0.1:1/hiitrack_test")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert time.monotonic() - started < 10
    # A store that never opened answers every call the same way.
    with pytest.raises(StoreUnavailable):
        await store.get("", USER, "x")
    with pytest.raises(StoreUnavailable):
        await store.write(WriteBatch("x", increments={b"r": {b"c": 1}}))
    await store.close()


@pytest_twisted.ensureDeferred
async def test_consistency_option(user_name):
    store = await opened(consistency="one", replication="NetworkTopologyStrategy:datacenter1=1")
    try:
        await store.write(WriteBatch(user_name, increments={b"r": {b"c": 2}}))
        assert await store.read_rows(user_name, [b"r"]) == [{b"c": 2}]
    finally:
        await store.close()


def test_an_unknown_lightweight_transaction_outcome_is_unavailable_not_a_bug():
    """Two processes creating one bucket at once on a cluster met this as a 500 (tests/test_cluster.py)."""
    unknown = ErrorMessage(code=CAS_WRITE_UNKNOWN, message="CAS operation result is unknown", info=None)
    assert isinstance(translated(unknown), StoreUnavailable)
    assert type(translated(ErrorMessage(code=0x2200, message="invalid", info=None))) is ErrorMessage


@pytest_twisted.ensureDeferred
async def test_results_of_one_shape_share_one_row_class_and_lightweight_transactions_still_answer(user_name):
    """The driver's default row factory makes a namedtuple class for every result: a sixth of its
    I/O thread under an event load of new visitors.  The store's makes one per set of columns."""
    driver = cluster(CassandraStore.from_uri(CASSANDRA_URI).settings)
    session = await threads.deferToThread(driver.connect)
    try:
        rows = [
            (
                await threads.deferToThread(session.execute, "SELECT release_version, cluster_name FROM system.local")
            ).one()
            for _ in range(2)
        ]
        assert type(rows[0]) is type(rows[1])
        assert rows[0].release_version.startswith("5.")
        answer = await threads.deferToThread(session.execute, "SELECT count(*) FROM system.local")
        assert answer.one().count == 1
    finally:
        driver.shutdown()
    store = await opened()
    try:
        assert await store.create(user_name, USER, "row-shapes", b"first")
        assert not await store.create(user_name, USER, "row-shapes", b"second")
        assert await store.replace(user_name, USER, "row-shapes", b"first", b"third")
        assert not await store.replace(user_name, USER, "row-shapes", b"first", b"fourth")
        assert await store.get(user_name, USER, "row-shapes") == b"third"
    finally:
        await store.close()


def test_uri_and_options():
    store = CassandraStore.from_uri("cassandra://db1,db2.example:9043/analytics", consistency="QUORUM")
    settings = store.settings
    assert (settings.hosts, settings.port, settings.keyspace) == (["db1", "db2.example"], 9043, "analytics")
    assert CassandraStore.from_uri("cassandra://127.0.0.1/k").settings.port == 9042
    # The import gives a busy node longer over its large flushes.
    usual = CassandraStore.from_uri("cassandra://127.0.0.1/k").settings
    assert cluster(usual).profile_manager.profiles[EXEC_PROFILE_DEFAULT].request_timeout == REQUEST_TIMEOUT
    patient = CassandraStore.from_uri("cassandra://127.0.0.1/k", request_timeout=120.0).settings
    assert cluster(patient).profile_manager.profiles[EXEC_PROFILE_DEFAULT].request_timeout == 120.0
    assert replication_map("SimpleStrategy:3") == "{'class': 'SimpleStrategy', 'replication_factor': 3}"
    assert (
        replication_map("NetworkTopologyStrategy:dc1=3,dc2=2")
        == "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
    )
    for bad in ["cassandra://", "cassandra://h/", "cassandra://h:x/k", "cassandra://h/k;drop", "cassandra://h/1k"]:
        with pytest.raises(ValueError):
            CassandraStore.from_uri(bad)
    for replication in ["SimpleStrategy", "SimpleStrategy:0", "NetworkTopologyStrategy:", "Other:1", "NTS:dc1=x"]:
        with pytest.raises(ValueError):
            CassandraStore.from_uri("cassandra://h/k", replication=replication)
    with pytest.raises(ValueError):
        CassandraStore.from_uri("cassandra://h/k", consistency="MOST")


def test_tap_passes_the_cassandra_options():
    from hiitrack.tap import HiiTrackService, Options

    options = Options()
    options.parseOptions(
        [
            "--store",
            f"cassandra://127.0.0.1/k{uuid.uuid4().hex[:8]}",
            "--cassandra-replication",
            "NetworkTopologyStrategy:dc1=3,dc2=2",
            "--cassandra-consistency",
            "QUORUM",
        ]
    )
    settings = HiiTrackService(options).app.store.settings
    assert settings.replication == "{'class': 'NetworkTopologyStrategy', 'dc1': 3, 'dc2': 2}"
    assert settings.consistency == 4  # ConsistencyLevel.QUORUM


@pytest_twisted.ensureDeferred
async def test_results_longer_than_a_page(user_name):
    store = await opened()
    try:
        # Tiny pages: every read below takes several round trips by paging state.
        store._cql.session.default_fetch_size = 3
        records = {(EVENT, f"e{i:02d}"): b"%d" % i for i in range(10)}
        # Counts from 1: a cell at 0 reads as absent.
        cells = {b"c%02d" % i: i + 1 for i in range(10)}
        await store.write(WriteBatch(user_name, records, {b"row": cells}))
        assert await store.scan(user_name, EVENT) == {key: value for (_, key), value in records.items()}
        assert await store.read_rows(user_name, [b"row"]) == [cells]
        assert await store.read_rows(user_name, [b"row"], b"c02", b"c09") == [
            {b"c%02d" % i: i + 1 for i in range(2, 9)}
        ]
        assert await store.count(user_name) == 20
        await store.drop(user_name)
        assert await store.count(user_name) == 0
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_records_are_written_with_the_expiry_of_their_kind(cql, user_name):
    scope = f"{user_name}/b"
    store = await opened()
    try:
        await store.write(WriteBatch(scope, {(INSERT, "i"): b"1", (VISITOR, "v"): b"state"}))
        assert await store.create(scope, INSERT, "j", b"2")
    finally:
        await store.close()

    async def ttl(table: str, key: str, shard: int) -> int | None:
        statement = f"SELECT TTL(value) AS ttl FROM {KEYSPACE}.{table} WHERE scope = %s AND shard = %s AND key = %s"
        (row,) = await query(cql, statement, scope, shard, key)
        return row["ttl"]

    for key in ("i", "j"):
        # Seconds left: the registry's 30 days, less the few since the write.
        assert INSERT.expiry - 60 < await ttl("insert_ids", key, INSERT.partitioning.shard(key)) <= INSERT.expiry
    assert await ttl("visitors", "v", VISITOR.partitioning.shard("v")) is None


@pytest.mark.parametrize("store_kind", ["cassandra"])
@pytest_twisted.ensureDeferred
async def test_a_lone_hit_of_a_visitor_with_a_large_state_answers_in_milliseconds(server, user_name):
    """With Nagle's algorithm on, the driver sent a request over 4 KB in two writes and the second
    waited for the node's delayed ACK: a lone hit of such a visitor took 44 ms or more."""
    session = server.app.store._cql.session
    connections = [connection for pool in session.get_pools() for connection in pool.get_connections()]
    assert connections
    for connection in connections:
        assert connection._socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    client = server.client
    assert (await client.post(path(user_name), {"password": "pw-secret"})).status == 201
    # The state holds a path count per pair of events (6 bytes each): 60 distinct events make it over 10 KB.
    events = [f"event {n}" for n in range(60)]
    for event in events:
        assert (await client.post(path(user_name, "b", "event", event), {"visitor_id": "v"})).status == 200
    assert len(await server.app.store.get(f"{user_name}/b", VISITOR, "v")) > 10_000
    took = []
    for event in events[:20]:
        started = time.perf_counter()
        answer = await client.post(path(user_name, "b", "event", event), {"visitor_id": "v"})
        took.append(time.perf_counter() - started)
        assert answer.status == 200
    # A few ms when the request goes out at once; 40 ms and more when it waits for an ACK.
    assert statistics.median(took) < 0.025


class CountingReactor:
    """The reactor, counting the driver's wake-ups of it."""

    def __init__(self) -> None:
        self.wakeups = 0

    def callFromThread(self, call: object, *args: object, **options: object) -> None:
        self.wakeups += 1
        reactor.callFromThread(call, *args, **options)

    def __getattr__(self, name: str) -> object:
        return getattr(reactor, name)


def sent_requests(store: CassandraStore, wakeups: CountingReactor) -> list[tuple[object, int]]:
    """Each request the store's session sends from now on, with the wake-ups before it."""
    session = store._cql.session
    requests: list[tuple[object, int]] = []
    execute_async = session.execute_async

    def recorded(statement: object, *args: object, **options: object) -> object:
        requests.append((statement, wakeups.wakeups))
        return execute_async(statement, *args, **options)

    session.execute_async = recorded
    return requests


@pytest_twisted.ensureDeferred
async def test_a_commit_is_one_logged_batch_of_records_and_journal_entry(user_name):
    """Records, the journal entry and the index entries of new partitions in one atomic request,
    answered on the reactor thread without a wake-up from another (hiitrack/store/cassandra/wire.py);
    the counter cells are written by the fold, once for all the commits since the last one."""
    scope = f"{user_name}/b"
    wakeups = CountingReactor()
    store = CassandraStore(Settings.from_uri(CASSANDRA_URI), wakeups)
    await store.open()
    try:
        visitors = [f"v{n}" for n in range(40)]
        # Three visitors of three shards, counters in three rows.
        chosen = list({VISITOR.partitioning.shard(visitor): visitor for visitor in visitors}.values())[:3]
        rows = [b"event", b"series", b"segment"]
        cells = {row: {b"c%d" % n: 1 for n in range(5)} for row in rows}
        requests = sent_requests(store, wakeups)

        async def one_logged_batch(version: bytes) -> list[object]:
            """Write the visitors' states; the statements of the one request it made."""
            requests.clear()
            before = wakeups.wakeups
            await store.write(WriteBatch(scope, {(VISITOR, visitor): version for visitor in chosen}, cells))
            assert wakeups.wakeups - before == 0
            ((batch, _),) = requests
            assert batch.batch_type == BatchType.LOGGED
            # After a broken connection the driver may send it again: it writes the same.
            assert batch.is_idempotent
            statements = [query_id for _, query_id, _ in batch._statements_and_parameters]
            assert statements.count(store._cql.statement("journal add").query_id) == 1
            return statements

        # The first write lists the three shards' partitions in the index, in its batch.
        first = await one_logged_batch(b"old")
        assert len(first) == 7
        assert first.count(store._cql.statement("index add").query_id) == 3
        listed = {entry.part for entry in await store._index.of(scope) if entry.tbl == "visitors"}
        assert len(listed) == 3
        assert len(await one_logged_batch(b"new")) == 4
        # Unfolded increments are read from memory, then from the cells once folded.
        assert await store.read_rows(scope, rows) == [{b"c%d" % n: 2 for n in range(5)}] * 3
        await store.fold()
        assert len(requests) > 1
        assert await store.read_rows(scope, rows) == [{b"c%d" % n: 2 for n in range(5)}] * 3
        for visitor in chosen:
            assert await store.get(scope, VISITOR, visitor) == b"new"
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_fold_that_makes_a_scope_s_generation_reads_no_totals_and_later_ones_add_to_them(user_name):
    """A counter generation just made holds no cells: the fold that made it writes them without
    reading any first.  A process started later, which has no totals cached, reads them before it
    adds to them, and every total stays exact."""
    scope = f"{user_name}/b"
    rows = [b"event", b"series"]
    cells = {row: {b"c%d" % n: 1 for n in range(300)} for row in rows}
    settings = Settings.from_uri(CASSANDRA_URI, writer=f"w{uuid.uuid4().hex[:8]}")

    async def totals_read_by_a_new_process() -> int:
        """One more of each cell, folded by a store just opened: the reads of totals its fold sent."""
        wakeups = CountingReactor()
        store = CassandraStore(settings, wakeups)
        await store.open()
        try:
            await store.write(WriteBatch(scope, increments=cells))
            requests = sent_requests(store, wakeups)
            await store.fold()
            assert requests  # the fold wrote the cells
            return sum(statement is store._cql.statement("tallies of columns") for statement, _ in requests)
        finally:
            await store.close()

    assert await totals_read_by_a_new_process() == 0
    # Each row's 300 columns, in reads of at most COLUMNS_PER_READ.
    assert await totals_read_by_a_new_process() == len(rows) * math.ceil(300 / COLUMNS_PER_READ)
    reader = await opened()
    try:
        assert await reader.read_rows(scope, rows) == [{b"c%d" % n: 2 for n in range(300)}] * 2
    finally:
        await reader.close()


@pytest_twisted.ensureDeferred
async def test_only_statements_that_can_run_twice_are_sent_again_after_a_broken_connection():
    """A node that dies after forwarding a counter batch breaks the connection: the driver's
    default then sent the batch to the next node, and the cells were counted twice."""
    store = await opened()
    try:
        retries = cluster(store.settings).profile_manager.default.retry_policy
        again = {}
        for name in [
            "tallies put",
            "journal add",
            "visitors create",
            "generation new",
            "visitors upsert",
            "tallies read",
        ]:
            decision, _ = retries.on_request_error(
                store._cql.statement(name), ConsistencyLevel.LOCAL_QUORUM, ConnectionException("reset"), 0
            )
            again[name] = decision
        assert again == {
            "tallies put": RetryPolicy.RETRY_NEXT_HOST,
            "journal add": RetryPolicy.RETRY_NEXT_HOST,
            "visitors create": RetryPolicy.RETHROW,
            "generation new": RetryPolicy.RETHROW,
            "visitors upsert": RetryPolicy.RETRY_NEXT_HOST,
            "tallies read": RetryPolicy.RETRY_NEXT_HOST,
        }
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_large_commits_are_batched_without_cassandra_warnings(user_name, caplog):
    """Cassandra warns of a batch over 5 KiB or 10 partitions (and refuses one over 50 KiB); the
    driver logs each warning.  A large commit is split below both, and big partitions go alone."""
    scope = f"{user_name}/b"
    store = await opened()
    try:
        records = {(VISITOR, f"v{n}"): bytes([65 + n % 26]) * 1000 for n in range(30)}
        records[VISITOR, "large"] = b"L" * 12_000
        cells = {b"row%02d" % row: {b"col%02d" % col: row + col + 1 for col in range(10)} for row in range(30)}
        # A partition of 2,000 cells, over 100 KB: one mutation, which no batch threshold checks.
        cells[b"wide"] = {b"c%04d" % col: 1 for col in range(2000)}
        requests = sent_requests(store, CountingReactor())
        with caplog.at_level(logging.WARNING, logger="cassandra"):
            await store.write(WriteBatch(scope, records, cells))
        assert [record.getMessage() for record in caplog.records] == []
        partitions = len({VISITOR.partitioning.shard(key) for _, key in records}) + 31
        # Several partitions per request (the generation and the index's entries first).
        assert len(requests) < partitions / 2
        assert await store.scan(scope, VISITOR) == {key: value for (_, key), value in records.items()}
        rows = [b"row%02d" % row for row in range(30)] + [b"wide"]
        expected = [{b"col%02d" % col: row + col + 1 for col in range(10)} for row in range(30)]
        assert await store.read_rows(scope, rows) == [*expected, {b"c%04d" % col: 1 for col in range(2000)}]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_statements_run_together_end_together_and_report_the_first_failure(user_name):
    """A failed statement (at the node, or in the driver before sending) does not stop the others:
    the phase ends when all have, with the first failure in statement order."""
    store = await opened()
    cql = store._cql
    get = cql.statement("events get")
    try:
        await store.write(WriteBatch(user_name, {(EVENT, f"e{n}"): b"%d" % n for n in range(100)}))
        statements = [(get, (user_name, f"e{n}")) for n in range(100)]
        results = await cql.each(statements)
        assert [result.one().value for result in results] == [b"%d" % n for n in range(100)]

        unknown_table = SimpleStatement(f"SELECT * FROM {KEYSPACE}.no_such_table")
        # 80 after the failures: more than are in flight at once, so some start after them.
        failing = [statements[0], (unknown_table, None), (get, (user_name, "e1", "one too many")), *statements[20:100]]
        with pytest.raises(InvalidRequest):
            await cql.each(failing)
        # Too many values fail in the driver, before anything is sent.
        with pytest.raises(ValueError):
            await cql.each([failing[2], failing[1]])
        # Still usable: nothing was left in flight.
        assert len(await cql.each(statements)) == 100
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_packed_batch_is_bound_as_it_is_sent_whichever_way_it_is_run(user_name):
    """`packed` leaves a batch unbound until it is sent: `execute` binds it as `each` does."""
    store = await opened()
    cql = store._cql
    upsert = cql.statement("events upsert")

    def batch(first: int) -> tuple:
        writes = [
            Write(("events", user_name), upsert, (user_name, f"e{n}", b"%d" % n, 0), 64)
            for n in range(first, first + 3)
        ]
        [(statement, parameters)] = packed(writes, BatchType.UNLOGGED)
        assert isinstance(statement, Unbound)
        return statement, parameters

    try:
        await cql.execute(*batch(0))
        await cql.each([batch(3)])
        got = await cql.each((cql.statement("events get"), (user_name, f"e{n}")) for n in range(6))
        assert [result.one().value for result in got] == [b"%d" % n for n in range(6)]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_statement_s_future_is_freed_once_read_without_the_cycle_collector(user_name, monkeypatch):
    """A future, its statement and its rows go when their result is read, not in a reference cycle
    through the callbacks the driver keeps (left to the collector, they were most of its work)."""
    store = await opened()
    cql = store._cql
    futures = []
    execute_async = cql.session.execute_async

    def kept(*args: object, **kwargs: object) -> object:
        future = execute_async(*args, **kwargs)
        futures.append(weakref.ref(future))
        return future

    monkeypatch.setattr(cql.session, "execute_async", kept)
    get = cql.statement("events get")
    gc.disable()
    try:
        await cql.execute(get, (user_name, "e0"))
        await cql.each([(get, (user_name, f"e{n}")) for n in range(3)])
        await store.write(WriteBatch(user_name, {(EVENT, "e0"): b"0"}))
        # The commit is answered from inside the driver's call of its last future's callbacks: a turn later.
        await task.deferLater(reactor, 0, lambda: None)
        assert len(futures) >= 5
        assert [ref() for ref in futures] == [None] * len(futures)
    finally:
        gc.enable()
        await store.close()


@pytest_twisted.ensureDeferred
async def test_the_point_reads_of_one_turn_are_one_statement_per_table_and_scope(user_name):
    """Reads of sharded records asked in one reactor turn go out together (at most LOOKUP_KEYS
    keys a statement), and each gets its own record: stored, absent, asked twice, of another
    scope or table (hiitrack/store/cassandra/lookups.py); a read alone is the one-row statement."""
    scope, other = f"{user_name}/b", f"{user_name}/c"
    wakeups = CountingReactor()
    store = CassandraStore(Settings.from_uri(CASSANDRA_URI), wakeups)
    await store.open()
    try:
        visitors = [f"v{n}" for n in range(LOOKUP_KEYS + 30)]
        states = {visitor: f"state of {visitor}".encode() for visitor in visitors[::3]}
        await store.write(WriteBatch(scope, {(VISITOR, visitor): state for visitor, state in states.items()}, {}))
        await store.write(WriteBatch(other, {(VISITOR, "v1"): b"elsewhere", (INSERT, "v0"): b"an insert id"}, {}))
        requests = sent_requests(store, wakeups)
        asked = [(scope, VISITOR, visitor) for visitor in visitors + visitors[:5]]
        asked += [(other, VISITOR, "v0"), (other, VISITOR, "v1"), (other, INSERT, "v0"), (other, INSERT, "v1")]
        found = await defer.gatherResults([defer.ensureDeferred(store.get(*each)) for each in asked])
        expected = [states.get(visitor) for visitor in visitors + visitors[:5]]
        assert found == [*expected, None, b"elsewhere", b"an insert id", None]
        statements = sorted(statement.query_string for statement, _ in requests)
        many = store._cql.statement("visitors get many").query_string
        # The first scope's keys LOOKUP_KEYS a statement, then the other scope's.
        batches = [many] * (math.ceil(len(visitors) / LOOKUP_KEYS) + 1)
        assert statements == sorted([*batches, store._cql.statement("insert_ids get many").query_string])
        requests.clear()
        assert await store.get(scope, VISITOR, visitors[0]) == states[visitors[0]]
        assert [statement.query_string for statement, _ in requests] == [
            store._cql.statement("visitors get").query_string
        ]
    finally:
        await store.close()
    reads = [defer.ensureDeferred(store.get(scope, VISITOR, visitor)) for visitor in visitors[:2]]
    for read in reads:
        with pytest.raises(StoreUnavailable):
            await read
