"""Bounds on password hashing, so that guessing cannot starve tracking.

scrypt is slow and memory-hungry on purpose.  `HashQueue` runs at most a few
hashes at once (each on a thread) with a short waiting line; past it a login
is answered 429 at once instead of queueing without end.  `Backoff` counts
failed logins per key (a client address, a user name): past a free allowance
each further attempt must wait, doubling up to a ceiling, and the answer
says how long (``Retry-After``) without spending any hashing.  An attempt
counts as a failure from the moment it starts, so concurrent guesses cannot
all slip in before the first one fails.
Tests: tests/test_login_throttle.py, tests/test_http_auth.py.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from twisted.internet.defer import DeferredSemaphore
from twisted.internet.threads import deferToThread

from hiitrack.caching import LRU
from hiitrack.errors import TooManyRequests

__all__ = ["Backoff", "HashQueue"]

T = TypeVar("T")


class HashQueue:
    """At most `workers` hashes at once, `waiting` more in line; the rest are refused."""

    def __init__(self, workers: int = 2, waiting: int = 16) -> None:
        self._semaphore = DeferredSemaphore(workers)
        self._waiting = waiting

    @property
    def busy(self) -> bool:
        """Whether the line is full, so a new hash would be refused."""
        return self._semaphore.tokens == 0 and len(self._semaphore.waiting) >= self._waiting

    async def run(self, work: Callable[..., T], *args: object) -> T:
        if self.busy:
            raise TooManyRequests("too many logins are being checked; try again shortly", retry_after=1)
        return await self._semaphore.run(deferToThread, work, *args)


@dataclass
class _Failures:
    count: int
    last: float


class Backoff:
    """Failures per key: `free` of them cost nothing, then 1, 2, 4 ... up to `ceiling` seconds.

    A key is forgotten `window` seconds after its last failure.  A success
    takes back only its own attempt: logging in to one's own account between
    guesses does not reset the count.
    """

    def __init__(
        self,
        free: int,
        ceiling: float = 60.0,
        window: float = 600.0,
        size: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free = free
        self._ceiling = ceiling
        self._window = window
        self._clock = clock
        self._failures: LRU[str, _Failures] = LRU(size)

    def retry_after(self, key: str) -> int:
        """Whole seconds before `key` may try again; 0 when it may now."""
        failures = self._current(key)
        if failures is None or failures.count < self.free:
            return 0
        wait = min(self._ceiling, 2.0 ** (failures.count - self.free)) - (self._clock() - failures.last)
        return max(0, math.ceil(wait))

    def attempt(self, key: str) -> None:
        """Count an attempt as a failure until `succeeded` says otherwise."""
        failures = self._current(key) or _Failures(0, 0.0)
        self._failures.put(key, _Failures(failures.count + 1, self._clock()))

    def succeeded(self, key: str) -> None:
        failures = self._current(key)
        if failures is not None:
            self._failures.put(key, _Failures(failures.count - 1, failures.last))

    def _current(self, key: str) -> _Failures | None:
        failures = self._failures.get(key)
        if failures is not None and self._clock() - failures.last > self._window:
            self._failures.pop(key)
            return None
        return failures
