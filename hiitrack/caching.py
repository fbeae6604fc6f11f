"""Small in-process helpers that bound memory and order work.

`LRU` is the one cache shape the server uses (visitor state, logins, bucket
catalogs), always with a size limit so memory stays bounded by configuration.
`KeyedLock` runs the work of one key (a visitor) strictly one after another
while different keys run concurrently.  Tests: tests/test_caching.py.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from twisted.internet.defer import Deferred

__all__ = ["KeyedLock", "LRU"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class LRU(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: K) -> V | None:
        entries = self._entries
        # A test, not a KeyError caught: with many new visitors most gets miss, and an
        # exception raised and caught costs several times a lookup.
        if key not in entries:
            self.misses += 1
            return None
        entries.move_to_end(key)
        self.hits += 1
        return entries[key]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def pop(self, key: K) -> V | None:
        """Forget `key`; what it held, if anything."""
        return self._entries.pop(key, None)

    def forget_where(self, matches: Callable[[K], bool]) -> None:
        for key in [key for key in self._entries if matches(key)]:
            del self._entries[key]


class KeyedLock(Generic[K]):
    """Runs coroutines of the same key one at a time, in arrival order."""

    def __init__(self) -> None:
        self._queues: dict[K, list[Deferred]] = {}

    async def run(self, key: K, work: Callable[[], Awaitable[T]]) -> T:
        queue = self._queues.get(key)
        if queue is None:
            self._queues[key] = []
        else:
            turn: Deferred = Deferred()
            queue.append(turn)
            await turn
        try:
            return await work()
        finally:
            waiting = self._queues[key]
            if waiting:
                waiting.pop(0).callback(None)
            else:
                del self._queues[key]
