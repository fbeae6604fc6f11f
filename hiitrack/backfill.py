"""The backfill: a funnel saved into a bucket with data is counted over the visitors' histories.

It runs in the background while hits keep arriving.  A sweep walks the
bucket's visitors a page at a time (`RecordStore.sweep`) and has the
tracker count each one under its order lock (`Tracker.backfill`); a visitor
a hit reached first was counted then, from its history, and is skipped
(hiitrack.conversions says why no visitor counts twice).  After each page
the funnel record's ``backfill`` holds the progress, the cursor to resume
from and a lease: the process sweeping renews it, and any process (this one
after a restart included) takes over a backfill whose lease ran out.  A
registry of running backfills in the installation scope lets processes find
them at start and every third of a lease after.  A replaced or deleted
funnel ends its sweep at the next page; a deleted bucket at the next
visitor.  With several processes, each visitor is counted by the process
that serves it (hiitrack.forwarding); docs/api.md, "Backfill", says why.
Tests: tests/test_backfill.py.
"""

import secrets
from collections.abc import Awaitable, Callable

import ujson
from twisted.internet.defer import CancelledError, Deferred, DeferredList, DeferredSemaphore
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from hiitrack.conversions import SavedFunnel
from hiitrack.forwarding import Forwarder
from hiitrack.gathering import gather
from hiitrack.store.interface import RecordWriter, WriteBatch
from hiitrack.store.kinds import BACKFILL, FUNNEL, VISITOR
from hiitrack.tracking import Tracker

__all__ = ["AT_ONCE", "LEASE_SECONDS", "Backfills"]

LEASE_SECONDS = 30.0
"""How long a backfill's process may go without a word before another takes the backfill over."""
PAGE = 100
"""Visitors counted between two progress records."""
AT_ONCE = 16
"""Visitors a process counts at the same time, all its sweeps together: writes share group commits, histories memory."""
INSTALLATION = ""

log = Logger()


def _registry_key(scope: str, name: str) -> str:
    return ujson.dumps([scope, name])


class Backfills:
    def __init__(
        self,
        store: RecordWriter,
        tracker: Tracker,
        clock: Callable[[], float],
        lease_seconds: float = LEASE_SECONDS,
        scheduler: IReactorTime | None = None,
        forwarder: Forwarder | None = None,
    ) -> None:
        self._store = store
        self._tracker = tracker
        # With several processes: each visitor is counted by the process that serves it.
        self._forwarder = forwarder
        self._clock = clock
        self._lease = lease_seconds
        self._owner = secrets.token_hex(8)
        self._sweeps: dict[tuple[str, str], Deferred] = {}
        self._at_once = DeferredSemaphore(AT_ONCE)
        self._claiming = LoopingCall(lambda: Deferred.fromCoroutine(self._claim_all()))
        if scheduler is not None:
            self._claiming.clock = scheduler

    def progress(self, has_data: bool) -> dict[str, object]:
        """The ``backfill`` of a funnel record being saved: running (leased to this process) if the bucket has data."""
        if not has_data:
            return {"state": "done", "visitors": 0}
        return {"state": "running", "visitors": 0, "cursor": "", "owner": self._owner, "until": self._until()}

    async def saved(self, scope: str, name: str, record: dict, save: Callable[[], Awaitable[object]]) -> None:
        """Save a funnel record (`save`), and start its backfill if it has one to run.

        The registry entry goes first: a process that dies after the save
        leaves a backfill that others find.
        """
        running = record["backfill"]["state"] == "running"
        if running:
            entry = ujson.dumps({"version": record["version"], "at": self._clock()}).encode()
            await self._store.write(WriteBatch(INSTALLATION, records={(BACKFILL, _registry_key(scope, name)): entry}))
        await save()
        if running:
            self._start(scope, name)

    def start(self) -> None:
        """Take over the backfills nobody runs, now and every third of a lease."""
        self._claiming.start(self._lease / 3, now=True).addErrback(
            lambda failure: log.failure("backfill: claiming stopped", failure)
        )

    async def stop(self) -> None:
        if self._claiming.running:
            self._claiming.stop()
        sweeps = list(self._sweeps.values())
        for sweep in sweeps:
            sweep.cancel()
        await DeferredList(sweeps, consumeErrors=True)

    async def finished(self, scope: str, name: str) -> None:
        """Wait for this process's sweep of a funnel, if one runs (tests, benchmarks)."""
        sweep = self._sweeps.get((scope, name))
        if sweep is not None:
            await DeferredList([sweep], consumeErrors=True)

    def _until(self) -> float:
        return self._clock() + self._lease

    def _start(self, scope: str, name: str) -> None:
        previous = self._sweeps.pop((scope, name), None)
        if previous is not None:
            previous.cancel()
        sweep = Deferred.fromCoroutine(self._sweep(scope, name))
        self._sweeps[scope, name] = sweep

        def failed(failure: Failure) -> None:
            if not failure.check(CancelledError):
                log.failure("backfill of {scope} {name} stopped; a claim resumes it", failure, scope=scope, name=name)

        def ended(_: object) -> None:
            if self._sweeps.get((scope, name)) is sweep:
                del self._sweeps[scope, name]

        sweep.addErrback(failed)
        sweep.addBoth(ended)

    async def _sweep(self, scope: str, name: str) -> None:
        ticket = await self._tracker.opened(scope)
        raw = await self._store.get(scope, FUNNEL, name)
        if raw is None:
            return
        record = ujson.loads(raw)
        funnel = SavedFunnel.of(record)
        if funnel is None or record["backfill"].get("owner") != self._owner:
            return
        progress = record["backfill"]
        cursor, visitors = progress["cursor"], progress["visitors"]
        while True:
            page, following = await self._store.sweep(scope, VISITOR, cursor, PAGE)
            counted = await gather(
                self._at_once.run(self._count, scope, name, ticket, visitor_id, funnel) for visitor_id, _ in page
            )
            if not all(counted):
                return
            visitors += len(page)
            done = following is None
            progress = {"state": "done", "visitors": visitors} if done else {**progress, "visitors": visitors}
            if not done:
                progress.update(cursor=following, until=self._until())
            recorded = await self._record_progress(scope, name, raw, progress)
            if recorded is None:
                return
            raw = recorded
            if done:
                await self._store.delete(INSTALLATION, BACKFILL, _registry_key(scope, name))
                return
            cursor = following

    def _count(self, scope: str, name: str, ticket: int, visitor_id: str, funnel: SavedFunnel) -> Deferred[bool]:
        if self._forwarder is not None:
            return Deferred.fromCoroutine(self._forwarder.count(scope, name, funnel.version.hex(), visitor_id))
        return Deferred.fromCoroutine(self._tracker.backfill(scope, ticket, visitor_id, funnel))

    async def _record_progress(self, scope: str, name: str, raw: bytes, progress: dict) -> bytes | None:
        """Put `progress` in the funnel record, unless it was replaced, deleted or taken over (None then)."""
        while True:
            record = ujson.loads(raw)
            new = ujson.dumps({**record, "backfill": progress}).encode()
            if await self._store.replace(scope, FUNNEL, name, raw, new):
                return new
            current = await self._store.get(scope, FUNNEL, name)
            if current is None:
                return None
            now = ujson.loads(current)
            if now.get("version") != record["version"] or now["backfill"].get("owner") != self._owner:
                return None
            raw = current

    async def _claim_all(self) -> None:
        try:
            running = await self._store.scan(INSTALLATION, BACKFILL)
        except Exception:
            # The store is down for now: the next round tries again (a failure would end the loop).
            log.failure("backfill: could not read the running backfills")
            return
        for key, entry in running.items():
            scope, name = ujson.loads(key)
            if (scope, name) not in self._sweeps:
                try:
                    await self._claim(scope, name, key, ujson.loads(entry))
                except Exception:
                    log.failure("backfill: could not claim {scope} {name}", scope=scope, name=name)

    async def _claim(self, scope: str, name: str, key: str, entry: dict) -> None:
        raw = await self._store.get(scope, FUNNEL, name)
        record = {} if raw is None else ujson.loads(raw)
        if raw is None or record.get("version") != entry["version"] or record["backfill"]["state"] != "running":
            # Gone, replaced or done; an entry younger than a lease may be a save still under way.
            if entry["at"] + self._lease < self._clock():
                await self._store.delete(INSTALLATION, BACKFILL, key)
            return
        if record["backfill"]["until"] > self._clock():
            return
        taken = {**record, "backfill": {**record["backfill"], "owner": self._owner, "until": self._until()}}
        if await self._store.replace(scope, FUNNEL, name, raw, ujson.dumps(taken).encode()):
            self._start(scope, name)
