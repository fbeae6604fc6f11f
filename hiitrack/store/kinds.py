"""The one registry of record kinds: each kind's name, partitioning and expiry.

A record is addressed by (scope, kind, key).  Its `Kind` says where it lives
(the Cassandra table; SQLite keeps every kind in one table), how a scope's
records of that kind are spread over partitions, and how long they live.
Both backends route by these objects and refuse a kind the registry does not
hold, so a renamed or new kind can never land in a table meant for another.

Adding a kind: one `Kind` here, added to `KINDS`; if it needs a table of its
own, a Cassandra schema version that creates it.  Tests:
tests/test_store_contract.py (every kind on both stores, expiry included),
tests/test_kinds.py.
"""

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = [
    "BACKFILL",
    "BUCKET",
    "EVENT",
    "FUNNEL",
    "FUNNEL_LEVEL",
    "FUNNEL_STATE",
    "HIT",
    "INSERT",
    "KINDS",
    "PROPERTY",
    "SECRET",
    "USER",
    "VALUE",
    "VISITOR",
    "ByPart",
    "ByScope",
    "Kind",
    "Kinds",
    "Partitioning",
    "Sharded",
    "UnknownKind",
]

DAY = 24 * 3600


class UnknownKind(ValueError):
    """A kind that is not in the store's registry, or not bound as its partitioning requires."""


@dataclass(frozen=True)
class ByScope:
    """A scope's records of the kind share one partition: small, bounded populations."""


@dataclass(frozen=True)
class ByPart:
    """One partition per part named by the caller (e.g. per property): `Kind.of(part)`."""


@dataclass(frozen=True)
class Sharded:
    """A scope's records are spread over `shards` partitions by a hash of their key.

    For unbounded populations (visitors): a lookup still reads one partition,
    and deleting a scope deletes `shards` partitions, not one per record.
    Stored records are found by this hash: changing it, or `shards`, of a
    kind in use strands them.
    """

    shards: int

    def shard(self, key: str) -> int:
        return zlib.crc32(key.encode("utf-8", "surrogatepass")) % self.shards


Partitioning = ByScope | ByPart | Sharded


@dataclass(frozen=True)
class Kind:
    """A kind of record.  `expiry` is in seconds (None: kept until its scope is dropped).

    A `ByPart` kind is used bound to its part, ``VALUE.of(property)``; `part`
    is None on the registered kind.
    """

    name: str
    table: str
    partitioning: Partitioning = ByScope()
    expiry: int | None = None
    part: str | None = None

    def of(self, part: str) -> "Kind":
        """This kind's records within one part (`ByPart` kinds only)."""
        if not isinstance(self.partitioning, ByPart):
            raise UnknownKind(f"record kind {self.name!r} is not partitioned by part")
        # The constructor, not dataclasses.replace: this runs for every hit (its history's kind).
        return Kind(self.name, self.table, self.partitioning, self.expiry, part)

    @property
    def unbound(self) -> "Kind":
        return self if self.part is None else Kind(self.name, self.table, self.partitioning, self.expiry)


class Kinds:
    """A registry of kinds by name: the stores accept exactly these."""

    def __init__(self, kinds: Iterable[Kind]) -> None:
        self._by_name: dict[str, Kind] = {}
        for kind in kinds:
            if kind.name in self._by_name or kind.part is not None:
                raise ValueError(f"record kind {kind.name!r} registered twice or bound to a part")
            self._by_name[kind.name] = kind

    def __iter__(self) -> Iterator[Kind]:
        return iter(self._by_name.values())

    def replaced(self, *kinds: Kind) -> "Kinds":
        """This registry with some kinds redefined (tests: a short expiry)."""
        redefined = {kind.name: kind for kind in kinds}
        if not redefined.keys() <= self._by_name.keys():
            raise UnknownKind(f"not registered: {sorted(redefined.keys() - self._by_name.keys())}")
        return Kinds(redefined.get(name, kind) for name, kind in self._by_name.items())

    def check(self, kind: Kind) -> Kind:
        """`kind` itself if the registry holds it, bound to a part exactly when it must be."""
        if self._by_name.get(kind.name) != kind.unbound:
            raise UnknownKind(f"unknown record kind {kind!r}")
        if (kind.part is None) == isinstance(kind.partitioning, ByPart):
            raise UnknownKind(f"record kind {kind.name!r} needs a part exactly when it is partitioned by part")
        return kind

    def check_all(self, kinds: Iterable[Kind]) -> None:
        for kind in kinds:
            self.check(kind)

    def check_sharded(self, kind: Kind) -> Sharded:
        """The partitioning of `kind` if registered and `Sharded`: the populations a store walks whole."""
        partitioning = self.check(kind).partitioning
        if not isinstance(partitioning, Sharded):
            raise UnknownKind(f"record kind {kind.name!r} is not sharded")
        return partitioning

    def check_part(self, kind: Kind) -> Kind:
        """`kind` if registered and bound to a part: the unit a store may page through or clear whole."""
        if self.check(kind).part is None:
            raise UnknownKind(f"record kind {kind.name!r} is not partitioned by part")
        return kind


USER = Kind("user", "users")
"""Accounts, in the installation scope, by user name."""
BUCKET = Kind("bucket", "buckets")
"""A user's buckets, in the user's scope, by bucket name."""
SECRET = Kind("secret", "records")
"""The installation's secret, in the installation scope."""
EVENT = Kind("event", "events")
"""A bucket's event names, by event id."""
PROPERTY = Kind("property", "properties")
"""A bucket's property names, by property id."""
VALUE = Kind("value", "property_values", ByPart())
"""The values of one property (the part: its property id), by value id."""
FUNNEL = Kind("funnel", "funnels")
"""A bucket's saved funnels, by name."""
VISITOR = Kind("visitor", "visitors", Sharded(64))
"""Each visitor's counting state, by visitor id: the one unbounded population."""
INSERT = Kind("insert", "insert_ids", Sharded(64), expiry=30 * DAY)
"""Applied insert ids (the API promises at least 24 hours of deduplication)."""

FUNNEL_STATE = Kind("funnel_state", "funnel_states", Sharded(64))
"""Each visitor's progress in the bucket's saved funnels (hiitrack.conversions), by visitor id."""
FUNNEL_LEVEL = Kind("funnel_level", "funnel_levels", ByPart())
"""The drop-off index: the visitors at one level of one funnel version (the part), by visitor id."""

BACKFILL = Kind("backfill", "records")
"""The running backfills (hiitrack.backfill), in the installation scope, by bucket and funnel name."""

HIT = Kind("hit", "hits", ByPart())
"""One visitor's applied hits (the part: the visitor id), by sequence number (hiitrack.history)."""

KINDS = Kinds(
    [USER, BUCKET, SECRET, EVENT, PROPERTY, VALUE, FUNNEL, VISITOR, INSERT, FUNNEL_STATE, FUNNEL_LEVEL, BACKFILL, HIT]
)
