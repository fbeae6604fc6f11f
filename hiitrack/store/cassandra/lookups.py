"""Point reads of sharded records asked within one reactor turn, sent at its end as one statement.

A visitor's first hit reads the visitor's state (and its saved funnels'
progress, and an `insert_id`) from a sharded table.  With many new
visitors under load, the driver's cost of one statement per read was about
a fifth of the reactor thread's time (docs/performance.md, "Session 16").
The reads of one turn on one table and scope go out together at the end of
the turn, as ``shard IN ? AND key IN ?``: one statement, one answer to
decode.  A key is only ever stored in its own shard, so the product of the
two lists finds the keys asked for and nothing else.  A read alone in its
turn is the single-row statement it always was.  Tests:
tests/test_cassandra.py.
"""

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from hiitrack.store.cassandra.bridge import Cql

__all__ = ["LOOKUP_KEYS", "Lookups"]

LOOKUP_KEYS = 16
"""Most keys one statement asks for.  The node looks for every key in every shard listed, up to
256 lookups for 16 keys; a reactor turn under load asks for a few."""

_Asked = tuple[int, list[Deferred[bytes | None]]]
"""A key's shard, and the reads waiting for the key."""


class Lookups:
    """Reads of (table, scope, shard, key) gathered until the end of the reactor turn."""

    def __init__(self, cql: Cql, reactor: Any) -> None:
        self._cql = cql
        self._reactor = reactor
        # (table, scope) -> key -> what is asked of it
        self._asked: dict[tuple[str, str], dict[str, _Asked]] = {}

    def get(self, table: str, scope: str, shard: int, key: str) -> Deferred[bytes | None]:
        """A Deferred firing with the record's value, or None if there is none."""
        if not self._asked:
            self._reactor.callLater(0, self._send)
        asked = self._asked.setdefault((table, scope), {})
        _, waiting = asked.setdefault(key, (shard, []))
        read: Deferred[bytes | None] = Deferred()
        waiting.append(read)
        return read

    def _send(self) -> None:
        asked, self._asked = self._asked, {}
        for (table, scope), keys in asked.items():
            keys_left = list(keys.items())
            for start in range(0, len(keys_left), LOOKUP_KEYS):
                self._read(table, scope, dict(keys_left[start : start + LOOKUP_KEYS]))

    def _read(self, table: str, scope: str, keys: dict[str, _Asked]) -> None:
        if len(keys) == 1:
            ((key, (shard, _)),) = keys.items()
            sent = self._cql.execute(f"{table} get", (scope, shard, key))
            sent.addCallback(lambda result: {} if (row := result.one()) is None else {key: row.value})
        else:
            shards = sorted({shard for shard, _ in keys.values()})
            sent = self._cql.execute(f"{table} get many", (scope, shards, list(keys)))
            sent.addCallback(lambda result: {row.key: row.value for row in result.current_rows})

        def answer(found: dict[str, bytes]) -> None:
            for key, (_, waiting) in keys.items():
                for read in waiting:
                    read.callback(found.get(key))

        def failed(failure: Failure) -> None:
            for _, waiting in keys.values():
                for read in waiting:
                    read.errback(failure)

        sent.addCallbacks(answer, failed)
