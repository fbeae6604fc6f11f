"""The registry of record kinds (hiitrack/store/kinds.py): what it accepts,
and that both backends refuse a registry they cannot route.  The behaviour of
every kind on both stores is tests/test_store_contract.py.
"""

import zlib
from dataclasses import replace

import pytest

from hiitrack.store import open_store
from hiitrack.store.kinds import INSERT, KINDS, USER, VALUE, VISITOR, ByPart, Kind, Kinds, Sharded, UnknownKind


def test_registered_kinds_pass_and_others_do_not():
    for kind in KINDS:
        if isinstance(kind.partitioning, ByPart):
            assert KINDS.check(kind.of("p")) == kind.of("p")
            with pytest.raises(UnknownKind):
                KINDS.check(kind)
        else:
            assert KINDS.check(kind) is kind
            with pytest.raises(UnknownKind):
                kind.of("p")
    for stranger in [Kind("nope", "records"), replace(USER, expiry=10), replace(VISITOR, partitioning=Sharded(8))]:
        with pytest.raises(UnknownKind):
            KINDS.check(stranger)
    with pytest.raises(UnknownKind):
        KINDS.check(replace(USER, part="p"))


def test_replaced_redefines_registered_kinds_only():
    brief = replace(INSERT, expiry=1)
    short = KINDS.replaced(brief)
    assert short.check(brief) is brief
    with pytest.raises(UnknownKind):
        short.check(INSERT)
    assert KINDS.check(INSERT) is INSERT
    assert [kind.name for kind in short] == [kind.name for kind in KINDS]
    with pytest.raises(UnknownKind):
        KINDS.replaced(Kind("nope", "records"))


def test_names_are_unique_and_unbound():
    with pytest.raises(ValueError):
        Kinds([USER, replace(USER, table="buckets")])
    with pytest.raises(ValueError):
        Kinds([VALUE.of("p")])


def test_shards_are_the_ones_stored_data_was_written_with():
    # Changing the hash would strand every visitor already stored.
    for key in ["v1", "visitor-with-ünïcode", "\udcff lone surrogate", ""]:
        expected = zlib.crc32(key.encode("utf-8", "surrogatepass")) % 64
        assert VISITOR.partitioning.shard(key) == INSERT.partitioning.shard(key) == expected


def test_insert_ids_expire_after_30_days():
    assert INSERT.expiry == 30 * 24 * 3600
    assert [kind.name for kind in KINDS if kind.expiry is not None] == ["insert"]


def test_cassandra_refuses_kinds_it_has_no_table_for():
    open_store("cassandra://127.0.0.1/k", kinds=KINDS)
    for kinds in [
        Kinds([Kind("history", "histories")]),
        # The table exists but is not partitioned the way the kind needs.
        Kinds([replace(USER, partitioning=Sharded(64))]),
        Kinds([replace(VISITOR, partitioning=ByPart())]),
        Kinds([replace(VALUE, table="users")]),
    ]:
        with pytest.raises(ValueError, match="no table"):
            open_store("cassandra://127.0.0.1/k", kinds=kinds)
