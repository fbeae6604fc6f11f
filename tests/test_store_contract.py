"""The store contract (hiitrack/store/interface.py), run against every backend
for every kind of the registry (hiitrack/store/kinds.py), expiry included.

The `store` fixture gives an opened store of each kind; Cassandra's keyspace
is shared by the session, so every test works in scopes of its own.
"""

import time
import uuid
from dataclasses import replace

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import deferLater

from hiitrack.store import WriteBatch, open_store
from hiitrack.store.kinds import (
    EVENT,
    FUNNEL,
    FUNNEL_LEVEL,
    FUNNEL_STATE,
    HIT,
    INSERT,
    KINDS,
    USER,
    VALUE,
    VISITOR,
    ByPart,
    Kind,
    UnknownKind,
)
from tests.conftest import store_uri_for

# Every registered kind, bound to a part where its partitioning needs one.
EVERY_KIND = [kind.of("p1") if isinstance(kind.partitioning, ByPart) else kind for kind in KINDS]
BRIEF_EXPIRY = 3
"""The expiry of the records `test_records_expire` writes: long enough that the reads meant to find
them finish first, on a machine loaded by a whole suite (a second was not, twice in session 18)."""
EXPIRY_BOUND = BRIEF_EXPIRY + 14.0
"""Seconds such a record may take to disappear (Cassandra's clock is its own)."""


def new_scope(user_name: str) -> str:
    return f"{user_name}/b{uuid.uuid4().hex[:8]}"


def test_every_kind_is_covered():
    assert {kind.name for kind in EVERY_KIND} == {
        "backfill",
        "user",
        "bucket",
        "secret",
        "event",
        "property",
        "value",
        "funnel",
        "visitor",
        "insert",
        "funnel_state",
        "funnel_level",
        "hit",
    }


@pytest_twisted.ensureDeferred
async def test_records_of_every_kind(store, user_name):
    scope = new_scope(user_name)
    for kind in EVERY_KIND:
        assert await store.get(scope, kind, "k1") is None
        assert await store.scan(scope, kind) == {}
        assert await store.create(scope, kind, "k1", b"first") is True
        assert await store.create(scope, kind, "k1", b"second") is False
        assert await store.get(scope, kind, "k1") == b"first"
        assert await store.replace(scope, kind, "k1", b"stale", b"lost") is False
        assert await store.replace(scope, kind, "k1", b"first", b"swapped") is True
        assert await store.get(scope, kind, "k1") == b"swapped"
        assert await store.replace(scope, kind, "k1", b"swapped", b"first") is True
        assert await store.replace(scope, kind, "absent", b"first", b"made") is False
        assert await store.get(scope, kind, "absent") is None
        await store.write(WriteBatch(scope, records={(kind, "k2"): b"\x00two\xff"}))
        assert await store.scan(scope, kind) == {"k1": b"first", "k2": b"\x00two\xff"}
        await store.delete(scope, kind, "k1")
        assert await store.get(scope, kind, "k1") is None
        assert await store.scan(scope, kind) == {"k2": b"\x00two\xff"}
    # Kinds, and parts of a kind, do not see each other's records.
    assert await store.scan(scope, VALUE.of("p2")) == {}
    assert await store.count(scope) == len(EVERY_KIND)


ODD_KEYS = ["", "a\x00b", "é😀\u2028", 'q"\\/\n', "x" * 300]
"""Keys a batch must keep byte for byte: empty, a NUL inside, beyond ASCII, JSON's escapes, long."""


@pytest_twisted.ensureDeferred
async def test_one_group_commit_keeps_every_key_and_value_as_written(store, user_name):
    # Scopes of odd names too, and batches of several kinds at once (history and others).
    scopes = [new_scope(user_name), new_scope(user_name) + "/é\x00"]
    expected = {}
    batches = []
    for n, scope in enumerate(scopes):
        records = {}
        for m, key in enumerate(ODD_KEYS):
            for kind in (HIT.of("v\x00é"), VISITOR, VALUE.of("p\x00é")):
                value = bytes([n, m]) * m
                records[kind, key] = value
                expected[scope, kind, key] = value
        batches.append(WriteBatch(scope, records=records))
    await defer.gatherResults([defer.ensureDeferred(store.write(batch)) for batch in batches])
    for (scope, kind, key), value in expected.items():
        assert await store.get(scope, kind, key) == value, (scope, kind, key)
    for scope in scopes:
        assert await store.scan(scope, VISITOR) == {
            key: value for (at, kind, key), value in expected.items() if at == scope and kind == VISITOR
        }


@pytest_twisted.ensureDeferred
async def test_pages_of_a_part_come_in_key_order(store, user_name):
    scope = new_scope(user_name)
    # UTF-8 byte order: "Z" < "a" < "é" < "ü" < "€"; every key is a visitor id.
    keys = ["a", "Z", "é", "ü", "€", "a b", "a/b", "b", "visitör", "0"] + [f"v{i:03d}" for i in range(30)]
    in_order = sorted(keys, key=lambda key: key.encode())
    level = FUNNEL_LEVEL.of("f 1")
    await store.write(WriteBatch(scope, records={(level, key): b"" for key in keys}))
    await store.write(WriteBatch(scope, records={(FUNNEL_LEVEL.of("f 2"), "a0"): b"x"}))
    pages, after = [], ""
    while page := await store.page(scope, level, after, 7):
        assert len(page) <= 7
        pages.append(page)
        after = page[-1][0]
    assert [key for page in pages for key, _ in page] == in_order
    assert {value for page in pages for _, value in page} == {b""}
    assert await store.page(scope, level, in_order[-1], 10) == []
    assert await store.page(scope, FUNNEL_LEVEL.of("f 2")) == [("a0", b"x")]
    assert await store.page(scope, FUNNEL_LEVEL.of("f 3")) == []
    # Only kinds bound to a part are read in pages.
    for unpaged in (VISITOR, EVENT):
        with pytest.raises(UnknownKind):
            await store.page(scope, unpaged)


@pytest_twisted.ensureDeferred
async def test_a_sweep_gives_every_record_of_a_sharded_kind_once(store, user_name):
    scope, other = new_scope(user_name), new_scope(user_name + "-other")
    visitors = {f"visitor {i}": str(i).encode() for i in range(150)} | {"é:x": b"colon"}
    await store.write(WriteBatch(scope, records={(VISITOR, key): value for key, value in visitors.items()}))
    await store.write(WriteBatch(other, records={(VISITOR, "elsewhere"): b""}))
    await store.write(WriteBatch(scope, records={(FUNNEL_STATE, "not a visitor"): b""}))
    swept: list[tuple[str, bytes]] = []
    cursors = []
    cursor: str | None = ""
    while cursor is not None:
        page, cursor = await store.sweep(scope, VISITOR, cursor, 16)
        assert len(page) <= 16
        swept += page
        cursors.append(cursor)
    assert sorted(swept) == sorted(visitors.items())
    # A cursor is a resume point: what follows it is what the walk gave after it.
    middle = cursors[len(cursors) // 2]
    rest, cursor = [], middle
    while cursor is not None:
        page, cursor = await store.sweep(scope, VISITOR, cursor, 16)
        rest += page
    given = len(swept) - len(rest)
    assert rest == swept[given:]
    assert await store.sweep(new_scope(user_name), VISITOR) == ([], None)
    for unswept in (EVENT, FUNNEL_LEVEL.of("f 1")):
        with pytest.raises(UnknownKind):
            await store.sweep(scope, unswept)


@pytest_twisted.ensureDeferred
async def test_a_batch_deletes_records_and_the_later_batch_wins(store, user_name):
    scope = new_scope(user_name)
    one, two = FUNNEL_LEVEL.of("f 1"), FUNNEL_LEVEL.of("f 2")
    await store.write(WriteBatch(scope, records={(one, "v1"): b"", (one, "v2"): b"", (VISITOR, "v1"): b"s"}))
    # One visitor moves from level 1 to 2 in the same batch that writes its state.
    await store.write(WriteBatch(scope, records={(two, "v1"): b"", (VISITOR, "v1"): b"t"}, deletions={(one, "v1")}))
    assert await store.page(scope, one) == [("v2", b"")]
    assert await store.page(scope, two) == [("v1", b"")]
    assert await store.get(scope, VISITOR, "v1") == b"t"
    # Batches merged into one commit: a record deleted then written again exists, and the reverse does not.
    await defer.gatherResults(
        [
            defer.ensureDeferred(store.write(WriteBatch(scope, deletions={(one, "v2"), (two, "v1")}))),
            defer.ensureDeferred(store.write(WriteBatch(scope, records={(one, "v2"): b"back"}))),
            defer.ensureDeferred(store.write(WriteBatch(scope, records={(VISITOR, "v3"): b"u"}))),
            defer.ensureDeferred(store.write(WriteBatch(scope, deletions={(VISITOR, "v3")}))),
        ]
    )
    assert await store.page(scope, one) == [("v2", b"back")]
    assert await store.page(scope, two) == []
    assert await store.get(scope, VISITOR, "v3") is None
    with pytest.raises(UnknownKind):
        await store.write(WriteBatch(scope, deletions={(Kind("some other kind", "records"), "k")}))


@pytest_twisted.ensureDeferred
async def test_sharded_kinds_scan_every_shard(store, user_name):
    scope = new_scope(user_name)
    keys = [f"visitor-{i}" for i in range(200)]
    assert len({VISITOR.partitioning.shard(key) for key in keys}) == VISITOR.partitioning.shards
    await store.write(WriteBatch(scope, records={(VISITOR, key): key.encode() for key in keys}))
    assert await store.scan(scope, VISITOR) == {key: key.encode() for key in keys}
    assert await store.get(scope, VISITOR, "visitor-77") == b"visitor-77"


@pytest_twisted.ensureDeferred
async def test_unknown_kinds_are_refused_and_nothing_is_written(store, user_name):
    scope = new_scope(user_name)
    unknown = [
        Kind("some other kind", "records"),
        # A registered name with another definition is not the registered kind.
        replace(INSERT, expiry=5),
        replace(USER, table="events"),
        # A kind partitioned by part is only used bound to one.
        VALUE,
    ]
    for kind in unknown:
        with pytest.raises(UnknownKind):
            await store.get(scope, kind, "k")
        with pytest.raises(UnknownKind):
            await store.scan(scope, kind)
        with pytest.raises(UnknownKind):
            await store.create(scope, kind, "k", b"v")
        with pytest.raises(UnknownKind):
            await store.delete(scope, kind, "k")
        with pytest.raises(UnknownKind):
            await store.write(
                WriteBatch(scope, records={(VISITOR, "v"): b"s", (kind, "k"): b"v"}, increments={b"r": {b"c": 1}})
            )
    with pytest.raises(UnknownKind):
        USER.of("p1")
    assert await store.count(scope) == 0
    assert await store.read_rows(scope, [b"r"]) == [{}]


@pytest_twisted.ensureDeferred
async def test_page_reads_one_part_in_key_order(store, user_name):
    scope = new_scope(user_name)
    keys = [f"{n:012d}" for n in range(1, 26)]
    # Written out of order, over several batches; another part beside it.
    for chunk in (keys[10:], keys[:10]):
        await store.write(WriteBatch(scope, records={(HIT.of("v1"), key): key.encode() for key in reversed(chunk)}))
    await store.write(WriteBatch(scope, records={(HIT.of("v2"), keys[0]): b"other"}))
    pages, after = [], ""
    while True:
        page = await store.page(scope, HIT.of("v1"), after, 7)
        pages.append(page)
        if len(page) < 7:
            break
        after = page[-1][0]
    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [key for page in pages for key, _ in page] == keys
    assert all(value == key.encode() for page in pages for key, value in page)
    assert await store.page(scope, HIT.of("v1"), keys[-1], 7) == []
    assert await store.page(scope, HIT.of("v3"), "", 7) == []
    with pytest.raises(UnknownKind):
        await store.page(scope, VISITOR, "", 7)


@pytest_twisted.ensureDeferred
async def test_a_batch_removes_records_and_parts_with_its_increments(store, user_name):
    scope = new_scope(user_name)
    await store.write(
        WriteBatch(
            scope,
            records={
                (HIT.of("v1"), "1"): b"a",
                (HIT.of("v1"), "2"): b"b",
                (HIT.of("v2"), "1"): b"c",
                (VISITOR, "v1"): b"s",
            },
            increments={b"r": {b"c": 3, b"d": 1}},
        )
    )
    await store.write(
        WriteBatch(scope, increments={b"r": {b"c": -3}}, deletions={(VISITOR, "v1")}, cleared={HIT.of("v1")})
    )
    assert await store.page(scope, HIT.of("v1"), "", 10) == []
    assert await store.page(scope, HIT.of("v2"), "", 10) == [("1", b"c")]
    assert await store.get(scope, VISITOR, "v1") is None
    # A cell brought back to 0 reads as absent.
    assert await store.read_rows(scope, [b"r"]) == [{b"d": 1}]
    # Put again after its removal, a record is there.
    await store.write(WriteBatch(scope, records={(HIT.of("v1"), "1"): b"new"}))
    assert await store.page(scope, HIT.of("v1"), "", 10) == [("1", b"new")]


@pytest_twisted.ensureDeferred
async def test_removals_are_ordered_within_a_group_commit(store, user_name):
    scope = new_scope(user_name)
    # Sent at once, these are merged into one commit: each batch's order must hold.
    await defer.gatherResults(
        [
            defer.Deferred.fromCoroutine(store.write(WriteBatch(scope, records={(HIT.of("v"), "1"): b"old"}))),
            defer.Deferred.fromCoroutine(store.write(WriteBatch(scope, cleared={HIT.of("v")}))),
            defer.Deferred.fromCoroutine(store.write(WriteBatch(scope, records={(HIT.of("v"), "2"): b"new"}))),
        ]
    )
    assert await store.page(scope, HIT.of("v"), "", 10) == [("2", b"new")]


@pytest_twisted.ensureDeferred
async def test_drop_counters_keeps_records(store, user_name):
    scope, other = new_scope(user_name), new_scope(user_name)
    for each in (scope, other):
        await store.write(WriteBatch(each, records={(VISITOR, "v"): b"s"}, increments={b"r": {b"c": 2}}))
    await store.drop_counters(scope)
    assert await store.read_rows(scope, [b"r"]) == [{}]
    assert await store.get(scope, VISITOR, "v") == b"s"
    assert await store.count(scope) == 1
    assert await store.read_rows(other, [b"r"]) == [{b"c": 2}]
    # Counted again from nothing.
    await store.write(WriteBatch(scope, increments={b"r": {b"c": 5}}))
    assert await store.read_rows(scope, [b"r"]) == [{b"c": 5}]


@pytest_twisted.ensureDeferred
async def test_clearing_needs_a_part(store, user_name):
    scope = new_scope(user_name)
    await store.write(WriteBatch(scope, records={(VISITOR, "v"): b"s"}))
    with pytest.raises(UnknownKind):
        await store.write(WriteBatch(scope, cleared={VISITOR}))
    assert await store.get(scope, VISITOR, "v") == b"s"


@pytest_twisted.ensureDeferred
async def test_records_expire(store, store_kind, tmp_path, user_name):
    """A kind's expiry holds on every store: with a few seconds, the records go away."""
    scope = new_scope(user_name)
    brief = replace(INSERT, expiry=BRIEF_EXPIRY)
    short_lived = open_store(store_uri_for(store_kind, tmp_path), kinds=KINDS.replaced(brief))
    await short_lived.open()
    try:
        await short_lived.write(WriteBatch(scope, records={(brief, "i1"): b"1", (VISITOR, "v"): b"state"}))
        assert await short_lived.create(scope, brief, "i2", b"2") is True
        assert await short_lived.scan(scope, brief) == {"i1": b"1", "i2": b"2"}
        # The store with the registry's own 30 days sees them too: expiry is stored with each record.
        assert await store.get(scope, INSERT, "i1") == b"1"

        deadline = time.monotonic() + EXPIRY_BOUND
        while await short_lived.scan(scope, brief):
            assert time.monotonic() < deadline, f"records with a {BRIEF_EXPIRY}-second expiry are still there"
            await deferLater(reactor, 0.2, lambda: None)
        assert await short_lived.get(scope, brief, "i1") is None
        assert await store.get(scope, INSERT, "i2") is None
        assert await short_lived.count(scope) == 1
        # An expired record is absent: it can be created again.
        assert await short_lived.create(scope, brief, "i1", b"again") is True
        assert await short_lived.get(scope, brief, "i1") == b"again"
        # Kinds without an expiry stay.
        assert await short_lived.get(scope, VISITOR, "v") == b"state"
    finally:
        await short_lived.close()


@pytest_twisted.ensureDeferred
async def test_installation_scope(store, user_name):
    # The installation's scope is "" (users, the secret): it must work like any other.
    assert await store.create("", USER, user_name, b"record") is True
    assert await store.create("", USER, user_name, b"again") is False
    assert (await store.scan("", USER))[user_name] == b"record"
    await store.delete("", USER, user_name)
    assert await store.get("", USER, user_name) is None


@pytest_twisted.ensureDeferred
async def test_concurrent_writes_are_summed(store, user_name):
    scope = new_scope(user_name)
    writes = [
        defer.ensureDeferred(
            store.write(
                WriteBatch(
                    scope,
                    records={(VISITOR, f"v{i % 7}"): f"state {i}".encode(), (EVENT, "e"): b"name"},
                    increments={b"e1": {b"t": 1, b"u": i}, b"e2": {b"t": 2}, f"r{i % 3}".encode(): {b"x": 1}},
                )
            )
        )
        for i in range(60)
    ]
    await defer.gatherResults(writes, consumeErrors=True)
    rows = await store.read_rows(scope, [b"e1", b"e2", b"r0", b"r1", b"r2", b"missing"])
    assert rows == [
        {b"t": 60, b"u": sum(range(60))},
        {b"t": 120},
        {b"x": 20},
        {b"x": 20},
        {b"x": 20},
        {},
    ]
    # Records are last-wins in the order the writes were made.
    assert await store.get(scope, VISITOR, "v3") == b"state 59"
    assert len(await store.scan(scope, VISITOR)) == 7
    # A later write adds to what is there.
    await store.write(WriteBatch(scope, increments={b"e1": {b"t": -10}}))
    assert (await store.read_rows(scope, [b"e1"]))[0][b"t"] == 50


@pytest_twisted.ensureDeferred
async def test_read_rows_bounds(store, user_name):
    scope = new_scope(user_name)
    columns = [b"\x00", b"a", b"a\x00", b"ab", b"b", b"b\xff", b"\xff\xff"]
    await store.write(
        WriteBatch(scope, increments={row: {column: n for n, column in enumerate(columns, 1)} for row in (b"r", b"s")})
    )

    async def cells(start: bytes = b"", end: bytes | None = None) -> list[bytes]:
        (row,) = await store.read_rows(scope, [b"r"], start, end)
        return sorted(row)

    assert await cells() == columns
    assert await cells(b"a") == columns[1:]
    assert await cells(b"a", b"b") == [b"a", b"a\x00", b"ab"]
    assert await cells(b"a\x00", b"ab") == [b"a\x00"]
    assert await cells(end=b"a") == [b"\x00"]
    assert await cells(b"b\x00") == [b"b\xff", b"\xff\xff"]
    assert await cells(b"c", b"c") == []
    assert await cells(b"zz", b"a") == []
    both = await store.read_rows(scope, [b"s", b"r"], b"b", b"\xff")
    assert both == [{b"b": 5, b"b\xff": 6}] * 2


@pytest_twisted.ensureDeferred
async def test_drop_removes_the_scope_only(store, user_name):
    doomed, kept = new_scope(user_name), new_scope(user_name)
    for scope in (doomed, kept, user_name):
        await store.write(
            WriteBatch(
                scope,
                records={(kind, "k"): b"v" for kind in EVERY_KIND},
                increments={b"row%d" % i: {b"col%d" % j: 1 for j in range(3)} for i in range(5)},
            )
        )
    assert await store.create(doomed, FUNNEL, "f", b"steps") is True
    before = await store.count(kept)
    assert before == len(EVERY_KIND) + 15
    assert await store.count(doomed) == before + 1

    await store.drop(doomed)
    assert await store.count(doomed) == 0
    for kind in EVERY_KIND:
        assert await store.scan(doomed, kind) == {}
    assert await store.read_rows(doomed, [b"row0", b"row4"]) == [{}, {}]
    # Neither the sibling bucket nor the user's own scope lost anything.
    assert await store.count(kept) == before
    assert await store.count(user_name) == before
    assert await store.get(kept, VISITOR, "k") == b"v"
    assert (await store.read_rows(kept, [b"row4"]))[0] == {b"col0": 1, b"col1": 1, b"col2": 1}

    # The scope can be used again after the drop, from zero.
    await store.write(WriteBatch(doomed, records={(EVENT, "e"): b"E"}, increments={b"row0": {b"col0": 3}}))
    assert await store.read_rows(doomed, [b"row0"]) == [{b"col0": 3}]
    assert await store.count(doomed) == 2
    await store.drop(doomed)
    assert await store.count(doomed) == 0


@pytest_twisted.ensureDeferred
async def test_close_waits_for_pending_writes(store, store_kind, tmp_path, user_name):
    scope = new_scope(user_name)
    other = open_store(store_uri_for(store_kind, tmp_path))
    await other.open()
    writes = [
        defer.ensureDeferred(
            other.write(WriteBatch(scope, records={(VISITOR, f"v{i}"): b"s"}, increments={b"r": {b"c": 1}}))
        )
        for i in range(40)
    ]
    closed = defer.ensureDeferred(other.close())
    assert not all(write.called for write in writes)
    await closed
    assert all(write.called for write in writes)
    await defer.gatherResults(writes, consumeErrors=True)
    assert await store.read_rows(scope, [b"r"]) == [{b"c": 40}]
    assert len(await store.scan(scope, VISITOR)) == 40
