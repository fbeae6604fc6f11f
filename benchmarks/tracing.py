"""Where a slow hit's time went: ``twistd hiitrack`` that writes a trace of its folds, commits, reads, requests,
long reactor steps, SQLite checkpoints and full collections (``benchmarks.light_load --trace``).

Imported before twistd runs; the file is named by the environment variable
`benchmarks.tail.TRACE_FILE`.  Each line is ``kind start end`` in Unix seconds (the
client's clock is the same machine's), for:

- ``fold``: a fold of the write-behind journal (every store);
- ``checkpoint``: a SQLite checkpoint, from asking for its turn among the
  writes to its end;
- ``commit``: a group commit's write to the store, from start to durable;
- ``read``: a point read of the store (`get`: a visitor's state, a
  bucket's record), from asked to answered;
- ``request``: an HTTP request, from the whole of it read to its answer
  (Twisted's, and the lean ones of hiitrack.web.lean);
- ``step``: one reactor step (a socket's events, or the timed calls of a
  turn) that held the reactor thread longer than `benchmarks.tail.LONG_STEP` seconds:
  whatever arrives meanwhile waits;
- ``collection``: a full collection of Python's collector (generation 2).

It wraps those methods in the running process, so it is never for
anything but measuring.  Tests: tests/test_bench_smoke.py.
"""

import gc
import os
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TextIO

from twisted.internet import reactor
from twisted.web import http

from benchmarks.tail import LONG_STEP, TRACE_FILE
from hiitrack.store.cassandra.store import CassandraStore
from hiitrack.store.sqlite.store import SQLiteStore
from hiitrack.store.write_behind import WriteBehind
from hiitrack.web.lean import LeanRequest

_trace: TextIO = open(os.environ[TRACE_FILE], "a", buffering=1)


def _write(kind: str, start: float, end: float) -> None:
    _trace.write(f"{kind} {start:.6f} {end:.6f}\n")


def _timed_coroutine(owner: type, name: str, kind: str) -> None:
    original: Callable[..., Awaitable[Any]] = getattr(owner, name)

    @wraps(original)
    async def timed(self: object, *args: Any) -> Any:
        start = time.time()
        try:
            return await original(self, *args)
        finally:
            _write(kind, start, time.time())

    setattr(owner, name, timed)


def _timed_step(owner: type, name: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    @wraps(original)
    def step(*args: Any) -> Any:
        start = time.time()
        try:
            return original(*args)
        finally:
            end = time.time()
            if end - start > LONG_STEP:
                _write("step", start, end)

    setattr(owner, name, step)


def _timed_requests(owner: type, received: str) -> None:
    """Requests of class `owner`, from its method `received` (the whole request read) to its `finish`."""
    receive, finish = getattr(owner, received), owner.finish  # type: ignore[attr-defined]

    def whole(self: Any, *args: Any) -> None:
        self.traced_at = time.time()
        receive(self, *args)

    def finished(self: Any) -> None:
        finish(self)
        _write("request", getattr(self, "traced_at", time.time()), time.time())

    setattr(owner, received, whole)
    owner.finish = finished  # type: ignore[attr-defined]


_collecting = [0.0]
"""When the running full collection started."""


def _collection(phase: str, info: dict[str, int]) -> None:
    if info["generation"] == 2 and phase == "start":
        _collecting[0] = time.time()
    elif info["generation"] == 2:
        _write("collection", _collecting[0], time.time())


_timed_coroutine(WriteBehind, "_fold", "fold")
_timed_coroutine(SQLiteStore, "checkpoint", "checkpoint")
for store in (CassandraStore, SQLiteStore):
    _timed_coroutine(store, "_commit", "commit")
    _timed_coroutine(store, "get", "read")
_timed_step(type(reactor), "_doReadOrWrite")
_timed_step(type(reactor), "runUntilCurrent")
_timed_requests(http.Request, "requestReceived")
_timed_requests(LeanRequest, "__init__")
gc.callbacks.append(_collection)
