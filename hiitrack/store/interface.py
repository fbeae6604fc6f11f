"""The storage interfaces every backend implements.

HiiTrack keeps two sorts of data: small *records* (users, buckets, event and
property names, values, funnels, visitor state, insert ids), addressed by a
scope (``""`` for the installation, the user name, or ``user/bucket``), a
registered `Kind` (hiitrack.store.kinds) and a key; and *counters*, integer
cells addressed by scope, row and column, read back a row slice at a time.
Stores know nothing of what the rows mean (see hiitrack.counting); they
persist and read, and never block the reactor.  The application depends on
the narrow interfaces below; a backend implements `Store`, all of them.  The
shared contract test is tests/test_store_contract.py.
"""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from hiitrack.metrics import CacheStats
from hiitrack.store.kinds import Kind, Kinds

__all__ = [
    "add_cells",
    "check_batch",
    "in_parts",
    "CounterStore",
    "Inspector",
    "Lifecycle",
    "RecordStore",
    "RecordWriter",
    "Store",
    "StoreUnavailable",
    "WriteBatch",
    "Writer",
]


class StoreUnavailable(Exception):
    """The store cannot be reached or did not answer in time (HTTP 503)."""


@dataclass
class WriteBatch:
    """One request's changes: applied all together, or not at all.

    `deletions` are records removed by the batch (a record cannot be both
    written and removed by one batch); across batches the later one wins.
    `cleared` kinds, bound to a part, lose every record of that part before
    the batch's records are put: a visitor's erase removes its history so.
    """

    scope: str
    records: dict[tuple[Kind, str], bytes] = field(default_factory=dict)
    increments: Mapping[bytes, Mapping[bytes, int]] = field(default_factory=dict)
    deletions: set[tuple[Kind, str]] = field(default_factory=set)
    cleared: set[Kind] = field(default_factory=set)


Key = TypeVar("Key")


def add_cells(rows: dict[Key, dict[bytes, int]], key: Key, columns: Mapping[bytes, int]) -> None:
    """Add one row's amounts (column to amount) to `rows[key]`: a row new there is copied whole
    (in C), one met before is looked up once.  Every merge of increments goes through here: a hit's,
    a commit's, the fold's layer's."""
    cells = rows.get(key)
    if cells is None:
        rows[key] = dict(columns)
    else:
        for column, amount in columns.items():
            cells[column] = cells.get(column, 0) + amount


def in_parts(rows: dict[Key, dict[bytes, int]], cells: int) -> Iterator[dict[Key, dict[bytes, int]]]:
    """`rows` in parts of at most `cells` cells, in order (a longer row split between parts)."""
    part: dict[Key, dict[bytes, int]] = {}
    taken = 0
    for key, columns in rows.items():
        items = list(columns.items())
        for at in range(0, len(items), cells):
            piece = items[at : at + cells]
            if taken + len(piece) > cells:
                yield part
                part, taken = {}, 0
            part.setdefault(key, {}).update(piece)
            taken += len(piece)
    if part:
        yield part


def check_batch(kinds: Kinds, batch: WriteBatch) -> None:
    """Raise `UnknownKind` if a batch names a kind the store does not hold, or clears one not bound to a part."""
    kinds.check_all(kind for kind, _ in [*batch.records, *batch.deletions])
    for kind in batch.cleared:
        kinds.check_part(kind)


class RecordStore(Protocol):
    """Records one at a time.  An expired record reads as absent."""

    async def get(self, scope: str, kind: Kind, key: str) -> bytes | None:
        """The record's value, or None."""

    async def scan(self, scope: str, kind: Kind) -> dict[str, bytes]:
        """Every record of a kind in a scope, as ``{key: value}``."""

    async def create(self, scope: str, kind: Kind, key: str, value: bytes) -> bool:
        """Store a record only if it does not exist; whether it did not."""

    async def replace(self, scope: str, kind: Kind, key: str, old: bytes, new: bytes) -> bool:
        """Store `new` only if the record still holds `old`; whether it did.

        A compare-and-set: an account change racing its deletion cannot
        bring the deleted record back.
        """

    async def page(self, scope: str, kind: Kind, after: str = "", limit: int = 100) -> list[tuple[str, bytes]]:
        """Up to `limit` records of a kind bound to a part (a `ByPart` kind), with keys
        after `after`, in key order (the bytes of the UTF-8 keys): a list read a page at a time."""

    async def sweep(
        self, scope: str, kind: Kind, cursor: str = "", limit: int = 100
    ) -> tuple[list[tuple[str, bytes]], str | None]:
        """Every record of a `Sharded` kind (a bucket's visitors), a page of up to `limit` at a time.

        In an order of the store's choosing; the second item is the cursor
        of the next page, None once every record was given.  A cursor stays
        valid across restarts, so a background job can resume from it.
        """

    async def delete(self, scope: str, kind: Kind, key: str) -> None:
        """Remove one record."""


class CounterStore(Protocol):
    """Counter cells, read a row slice at a time (they are written by `Writer.write`)."""

    async def read_rows(
        self, scope: str, rows: Sequence[bytes], start: bytes = b"", end: bytes | None = None
    ) -> list[dict[bytes, int]]:
        """For each row, its cells with ``start <= column < end`` as ``{column: n}``, in column order.

        A cell at 0 (every increment it had was taken back) reads as absent.
        """


class Writer(Protocol):
    """Changes that touch records and counters together."""

    async def write(self, batch: WriteBatch) -> None:
        """Put the batch's records and add its increments, atomically.

        Writes arriving while another is in flight are grouped into one
        commit; this returns once the batch is durable.  A kind the store
        does not know fails the batch before anything is written, and so
        does a cleared kind that is not bound to a part.
        """

    async def drop(self, scope: str) -> None:
        """Remove every record and counter of a scope."""

    async def drop_counters(self, scope: str) -> None:
        """Remove every counter of a scope, keeping its records (a rebuild starts from here)."""


class Lifecycle(Protocol):
    async def open(self) -> None:
        """Connect, and bring the schema to the current version (migrations run here)."""

    async def close(self) -> None:
        """Finish pending writes and release connections."""


class Inspector(Protocol):
    """For tests and operators only: the application never counts."""

    async def count(self, scope: str) -> int:
        """How many live records and counter cells a scope holds."""

    def caches(self) -> Mapping[str, CacheStats]:
        """The store's own bounded caches by name, for /metrics (none is fine)."""


class RecordWriter(RecordStore, Writer, Protocol):
    """Records and batch writes: what accounts, the catalog and the write path use."""


class Store(RecordStore, CounterStore, Writer, Lifecycle, Inspector, Protocol):
    """A backend: everything above."""
