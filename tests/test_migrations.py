"""Schema versions (hiitrack/store/migrations.py and each backend's schema/):
a fresh file or keyspace gets every version, an old one is migrated, the
version is recorded, and a newer one is refused.

The Cassandra tests (marker `cassandra`) make keyspaces of their own
(hiitrack_migrations_*) on the shared node and drop them afterwards.
"""

import sqlite3
import time
import uuid

import pytest
import pytest_twisted
from cassandra.cluster import Cluster
from twisted.internet import threads

from hiitrack.store import StoreUnavailable, WriteBatch
from hiitrack.store.cassandra import CassandraStore, replication_map
from hiitrack.store.cassandra import schema as cassandra_schema
from hiitrack.store.kinds import EVENT, INSERT, VISITOR
from hiitrack.store.migrations import versions
from hiitrack.store.sqlite import SQLiteStore
from hiitrack.store.sqlite import schema as sqlite_schema
from tests.conftest import CASSANDRA

DAY = 24 * 3600


def test_versions_are_numbered_without_gaps():
    for schema in (sqlite_schema, cassandra_schema):
        numbers = [version.number for version in schema.VERSIONS]
        assert numbers == list(range(1, len(numbers) + 1))
        assert len(numbers) >= 2
        assert all(version.statements for version in schema.VERSIONS)
    with pytest.raises(RuntimeError):
        versions("hiitrack.store")  # a package without v001


# SQLite


def sqlite_file(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest_twisted.ensureDeferred
async def test_sqlite_fresh_file_gets_every_version(tmp_path):
    path = str(tmp_path / "fresh.db")
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    connection = sqlite_file(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (len(sqlite_schema.VERSIONS),)
    assert "expires" in [column[1] for column in connection.execute("PRAGMA table_info(records)")]
    # Opening again changes nothing.
    assert sqlite_schema.migrate(connection) == len(sqlite_schema.VERSIONS)


@pytest_twisted.ensureDeferred
async def test_sqlite_file_at_version_1_is_migrated_and_keeps_its_data(tmp_path):
    path = str(tmp_path / "old.db")
    old = sqlite_file(path)
    assert sqlite_schema.migrate(old, upto=1) == 0
    # As version 1 wrote them: no expiry column.
    old.execute("INSERT INTO records (scope, kind, key, value) VALUES ('u/b', 'insert', 'old', x'31')")
    old.execute("INSERT INTO counters (scope, row, col, n) VALUES ('u/b', x'72', x'63', 7)")
    old.close()

    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.get("u/b", INSERT, "old") == b"1"
        assert await store.read_rows("u/b", [b"r"]) == [{b"c": 7}]
        await store.write(WriteBatch("u/b", {(INSERT, "new"): b"2", (VISITOR, "v"): b"s"}))
    finally:
        await store.close()
    connection = sqlite_file(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (len(sqlite_schema.VERSIONS),)
    expires = dict(connection.execute("SELECT key, expires FROM records"))
    # Records of version 1 never expire; new insert ids carry the registry's 30 days.
    assert expires["old"] is None and expires["v"] is None
    assert abs(expires["new"] - (time.time() + 30 * DAY)) < 60


@pytest_twisted.ensureDeferred
async def test_sqlite_refuses_a_newer_schema(tmp_path):
    path = str(tmp_path / "newer.db")
    sqlite_file(path).execute(f"PRAGMA user_version = {len(sqlite_schema.VERSIONS) + 1}")
    store = SQLiteStore(path)
    with pytest.raises(RuntimeError, match="newer than this HiiTrack knows"):
        await store.open()
    await store.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_purges_expired_records(tmp_path):
    path = str(tmp_path / "purge.db")
    now = [1_800_000_000.0]
    store = SQLiteStore(path, clock=lambda: now[0], purge_seconds=3600)
    await store.open()
    try:
        await store.write(WriteBatch("u/b", {(INSERT, f"i{n}"): b"1" for n in range(5)} | {(EVENT, "e"): b"E"}))
        now[0] += 30 * DAY - 1
        assert len(await store.scan("u/b", INSERT)) == 5
        now[0] += 1
        assert await store.scan("u/b", INSERT) == {}
        assert await store.count("u/b") == 1
        # The next write past the purge interval deletes the expired rows.
        await store.write(WriteBatch("u/b", {(EVENT, "f"): b"F"}))
    finally:
        await store.close()
    kinds = [kind for (kind,) in sqlite_file(path).execute("SELECT kind FROM records ORDER BY kind")]
    assert kinds == ["event", "event"]


# Cassandra


@pytest.fixture(scope="module")
def session():
    host, _, port = CASSANDRA.partition(":")
    cluster = Cluster([host], port=int(port or 9042), protocol_version=5)
    yield cluster.connect()
    cluster.shutdown()


@pytest.fixture
def keyspace(session):
    name = f"hiitrack_migrations_{uuid.uuid4().hex[:12]}"
    yield name
    session.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=120)


async def in_thread(function, *args):
    return await threads.deferToThread(function, *args)


async def recorded(session, keyspace: str) -> list[int]:
    rows = await in_thread(session.execute, f"SELECT version FROM {keyspace}.schema_versions")
    return sorted(row.version for row in rows)


async def default_ttl(session, keyspace: str, table: str) -> int:
    statement = "SELECT default_time_to_live FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s"
    return (await in_thread(session.execute, statement, (keyspace, table))).one().default_time_to_live


def uri(keyspace: str) -> str:
    return f"cassandra://{CASSANDRA}/{keyspace}"


@pytest.mark.cassandra
@pytest_twisted.ensureDeferred
async def test_cassandra_fresh_keyspace_gets_every_version(session, keyspace):
    store = CassandraStore.from_uri(uri(keyspace))
    await store.open()
    try:
        await store.write(WriteBatch("u/b", {(INSERT, "i"): b"1"}, {b"r": {b"c": 2}}))
        assert await store.get("u/b", INSERT, "i") == b"1"
        assert await store.read_rows("u/b", [b"r"]) == [{b"c": 2}]
    finally:
        await store.close()
    assert await recorded(session, keyspace) == list(range(1, len(cassandra_schema.VERSIONS) + 1))
    assert await default_ttl(session, keyspace, "insert_ids") == 0

    # A version recorded by a newer HiiTrack: this one refuses to run on it.
    await in_thread(session.execute, f"INSERT INTO {keyspace}.schema_versions (version) VALUES (999)")
    newer = CassandraStore.from_uri(uri(keyspace))
    with pytest.raises(StoreUnavailable, match="newer than this HiiTrack knows"):
        await newer.open()
    await newer.close()


@pytest.mark.cassandra
@pytest_twisted.ensureDeferred
async def test_cassandra_keyspace_at_version_1_is_migrated_and_keeps_its_data(session, keyspace):
    # A keyspace as HiiTrack made it before versions were recorded: version 1's tables only.
    replication = replication_map("SimpleStrategy:1")
    await in_thread(session.execute, f"CREATE KEYSPACE {keyspace} WITH replication = {replication}", None, 120)
    for statement in cassandra_schema.VERSIONS[0].statements:
        await in_thread(session.execute, statement.replace("IF NOT EXISTS ", f"IF NOT EXISTS {keyspace}."), None, 120)
    shard = INSERT.partitioning.shard("old")
    await in_thread(
        session.execute,
        f"INSERT INTO {keyspace}.insert_ids (scope, shard, key, value) VALUES ('u/b', %s, 'old', 0x31)",
        (shard,),
    )
    assert await default_ttl(session, keyspace, "insert_ids") == 30 * DAY

    # Version 1 again (every statement is idempotent), now recorded.
    own = Cluster(session.cluster.contact_points, port=session.cluster.port, protocol_version=5)
    try:
        migrating = await in_thread(own.connect)
        assert await in_thread(cassandra_schema.migrate, migrating, keyspace, replication, 1) == [1]
    finally:
        await in_thread(own.shutdown)
    assert await recorded(session, keyspace) == [1]

    store = CassandraStore.from_uri(uri(keyspace))
    await store.open()
    try:
        assert await store.get("u/b", INSERT, "old") == b"1"
    finally:
        await store.close()
    assert await recorded(session, keyspace) == list(range(1, len(cassandra_schema.VERSIONS) + 1))
    assert await default_ttl(session, keyspace, "insert_ids") == 0
