"""Awaiting several Deferreds at once, with the first failure raised as it was.

Twisted's `gatherResults` wraps a failure in `FirstError`; the web layer's
error map (hiitrack.web.render) answers a `StoreUnavailable` 503 and
anything else 500, so reads made together must fail as each would alone.
Tests: tests/test_store_errors.py.
"""

from collections.abc import Coroutine, Iterable
from typing import Any

from twisted.internet.defer import Deferred, DeferredList

__all__ = ["gather", "together"]


async def gather(deferreds: Iterable[Deferred]) -> list:
    """Every result in order, once all have ended; the first failure if any."""
    results = await DeferredList(list(deferreds), consumeErrors=True)
    for succeeded, value in results:
        if not succeeded:
            value.raiseException()
    return [value for _, value in results]


async def together(*coroutines: Coroutine[Any, Any, Any]) -> list:
    """Every coroutine's result in order, the coroutines run at the same time; the first failure if any."""
    return await gather(Deferred.fromCoroutine(coroutine) for coroutine in coroutines)
