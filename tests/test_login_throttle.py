"""Bounded password hashing (issue 10, item 10): the queue, the back-off, and tracking under guessing.

The queue and the back-off are checked as behaviour (how many hashes run,
who is answered 429 with which Retry-After), never by timing; the one
timing check is a generous ratio of tracking latencies, reported with its
numbers.
"""

import statistics
import threading
import time
from collections.abc import Callable

import pytest
import pytest_twisted
from twisted.internet import defer

from hiitrack.errors import TooManyRequests
from hiitrack.throttle import Backoff, HashQueue
from tests.helpers import PASSWORD, auth_of, new_user, path


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_backoff_doubles_after_the_free_failures_and_forgets():
    clock = FakeClock()
    backoff = Backoff(free=3, ceiling=8, window=600, clock=clock)
    waits = []
    for _ in range(8):
        waits.append(backoff.retry_after("a"))
        backoff.attempt("a")
    assert waits == [0, 0, 0, 1, 2, 4, 8, 8]
    assert backoff.retry_after("b") == 0
    clock.now += 5
    assert backoff.retry_after("a") == 3
    clock.now += 601
    assert backoff.retry_after("a") == 0


def test_a_success_takes_back_only_its_own_attempt():
    backoff = Backoff(free=2, clock=FakeClock())
    backoff.attempt("a")
    backoff.attempt("a")
    backoff.attempt("a")
    backoff.succeeded("a")
    assert backoff.retry_after("a") == 1
    backoff.succeeded("a")
    assert backoff.retry_after("a") == 0


@pytest_twisted.ensureDeferred
async def test_the_hash_queue_runs_a_few_queues_a_few_and_refuses_the_rest():
    queue = HashQueue(workers=2, waiting=3)
    release = threading.Event()
    running = []
    lock = threading.Lock()
    peak = [0]

    def work(n: int) -> int:
        with lock:
            running.append(n)
            peak[0] = max(peak[0], len(running))
        release.wait(10)
        with lock:
            running.remove(n)
        return n

    runs = [defer.ensureDeferred(queue.run(work, n)) for n in range(10)]
    # A refusal is immediate: those Deferreds have failed before any hash ends.
    refused = [n for n, run in enumerate(runs) if run.called]
    assert refused == [5, 6, 7, 8, 9]
    for n in refused:
        with pytest.raises(TooManyRequests):
            await runs[n]
    release.set()
    assert [await run for run in runs[:5]] == [0, 1, 2, 3, 4]
    # Never more than the two workers at once (fewer if the reactor's thread pool is busy).
    assert 1 <= peak[0] <= 2


@pytest_twisted.ensureDeferred
async def test_an_address_that_guessed_too_much_gets_429_and_the_owner_still_logs_in(server, user_name):
    client = server.client
    await new_user(client, user_name)
    free = server.app.accounts.address_backoff.free
    guesser = {"X-Forwarded-For": "203.0.113.7"}
    statuses = [
        (await client.get(path(user_name), auth=(user_name, f"guess {n}"), headers=guesser)).status for n in range(free)
    ]
    assert statuses == [401] * free
    refused = await client.get(path(user_name), auth=(user_name, "guess again"), headers=guesser)
    assert refused.status == 429 and refused.header("Retry-After") == "1"
    assert refused.json["retry_after"] == 1 and "too many failed logins" in refused.json["error"]
    # Even the right password waits from that address: it proves nothing new.
    assert (await client.get(path(user_name), auth=auth_of(user_name), headers=guesser)).status == 429
    # The owner, from elsewhere, is let in; a second guesser is not slowed by the first.
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200
    other = {"X-Forwarded-For": "198.51.100.9"}
    assert (await client.get(path(user_name), auth=(user_name, "wrong"), headers=other)).status == 401


@pytest_twisted.ensureDeferred
async def test_a_user_guessed_from_many_addresses_backs_off_but_a_known_login_goes_on(server, user_name):
    client = server.client
    await new_user(client, user_name)
    assert (await client.get(path(user_name), auth=auth_of(user_name))).status == 200
    free = server.app.accounts.user_backoff.free
    for n in range(free):
        headers = {"X-Forwarded-For": f"10.0.{n // 250}.{n % 250}"}
        assert (await client.get(path(user_name), auth=(user_name, "wrong"), headers=headers)).status == 401
    fresh = {"X-Forwarded-For": "192.0.2.1"}
    assert (await client.get(path(user_name), auth=(user_name, "wrong"), headers=fresh)).status == 429
    # The owner's login was checked before: it needs no hashing and is not held back.
    assert (await client.get(path(user_name), auth=auth_of(user_name), headers=fresh)).status == 200


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_counts_only_from_a_loopback_proxy(server, user_name):
    from hiitrack.web.access import client_address

    class Peer:
        def __init__(self, host: str) -> None:
            self.host = host

    class Request:
        def __init__(self, peer: str, forwarded: bytes | None) -> None:
            self.peer, self.forwarded = Peer(peer), forwarded

        def getClientAddress(self) -> Peer:
            return self.peer

        def getHeader(self, name: bytes) -> bytes | None:
            return self.forwarded if name == b"X-Forwarded-For" else None

    assert client_address(Request("127.0.0.1", b"1.2.3.4, 5.6.7.8")) == "5.6.7.8"
    assert client_address(Request("203.0.113.5", b"5.6.7.8")) == "203.0.113.5"
    assert client_address(Request("::1", None)) == "::1"


GUESSERS = 40


@pytest_twisted.ensureDeferred
async def test_tracking_is_not_starved_by_concurrent_guessing(server, user_name, monkeypatch):
    client = server.client
    await new_user(client, user_name)
    assert (await client.post(path(user_name, "b", "event", "A"), {"visitor_id": "w"})).status == 200

    async def track_latencies(count: int) -> list[float]:
        latencies = []
        for n in range(count):
            started = time.perf_counter()
            answer = await client.post(path(user_name, "b", "event", "A"), {"visitor_id": f"v{n}"})
            latencies.append(time.perf_counter() - started)
            assert answer.status == 200
        return latencies

    # The hashes are held until every guess has reached the queue, so that
    # which guesses are let in does not depend on how fast the first end.
    hashing = server.app.accounts.hashing
    queue_run = hashing.run
    release = threading.Event()
    all_arrived: defer.Deferred[None] = defer.Deferred()
    arrivals = [0]

    def held(work: Callable[..., bytes]) -> Callable[..., bytes]:
        def run(*args: object) -> bytes:
            release.wait(30)
            return work(*args)

        return run

    async def counted_run(work: Callable[..., bytes], *args: object) -> bytes:
        arrivals[0] += 1
        if arrivals[0] == GUESSERS:
            all_arrived.callback(None)
        return await queue_run(held(work), *args)

    monkeypatch.setattr(hashing, "run", counted_run)
    quiet = statistics.median(await track_latencies(20))
    # Each guesser from its own address at its own (unknown) user: no back-off
    # applies, only the queue bounds the hashing.
    guesses = [
        defer.ensureDeferred(
            client.get(
                path(f"{user_name}g{n}"), auth=(f"{user_name}g{n}", "wrong"), headers={"X-Forwarded-For": f"10.1.0.{n}"}
            )
        )
        for n in range(GUESSERS)
    ]
    try:
        await all_arrived
    finally:
        release.set()
    busy = statistics.median(await track_latencies(20))
    statuses = [answer.status for answer in await defer.gatherResults(guesses)]
    # Two hash at a time and 16 wait: the rest are told to come back, at once.
    assert sorted(statuses) == [401] * (2 + 16) + [429] * (GUESSERS - 2 - 16)
    monkeypatch.undo()
    # A correct login still succeeds once the line has drained.
    assert (await client.get(path(user_name), auth=(user_name, PASSWORD))).status == 200
    ratio = busy / quiet
    print(f"tracking median: quiet {quiet * 1000:.1f} ms, under {GUESSERS} guessers {busy * 1000:.1f} ms, x{ratio:.1f}")
    assert ratio < 15, (quiet, busy)
