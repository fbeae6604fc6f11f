"""Talking to a HiiTrack server under test: users, totals, funnels, /metrics.

The totals read back here are what each run's count of 200 answers is
checked against.  Tests: tests/test_bench_smoke.py.
"""

import base64
import json
import random
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPConnection
from urllib.parse import quote

from prometheus_client.parser import text_string_to_metric_families

from benchmarks.workload import EVENT_NAMES, FUNNEL_STEPS

__all__ = [
    "METRICS_AUTH",
    "basic",
    "commits",
    "create_user",
    "funnel_path",
    "http",
    "recorded",
    "timed_hits",
]

PASSWORD = "bench-password"
# The operator account each server is started with (HIITRACK_METRICS_AUTH).
METRICS_AUTH = f"operator:{secrets.token_urlsafe(12)}"


SEEN_WITHIN = 60.0
"""Seconds a hit may take to show in another process's reports before the run fails."""


def http(port: int, method: str, path: str, form: dict | None = None, auth: str | None = None) -> tuple[int, dict]:
    data = None if form is None else "&".join(f"{k}={quote(str(v), safe='')}" for k, v in form.items()).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def basic(user: str) -> str:
    """The Authorization header of `user` (every bench user has the same password)."""
    return "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()


def create_user(port: int, user: str) -> None:
    status, body = http(port, "POST", f"/{user}", {"password": PASSWORD})
    if status != 201:
        raise RuntimeError(f"could not create user {user}: {status} {body}")


def recorded(port: int, user: str, bucket: str) -> int:
    """The bucket's total of events, summed over the event names, from the API."""
    total = 0
    for name in EVENT_NAMES:
        status, body = http(port, "GET", f"/{user}/{bucket}/event/{quote(name, safe='')}", auth=basic(user))
        if status == 200:
            total += body["total"]
        elif status != 404:
            raise RuntimeError(f"reading totals of {bucket}/{name}: {status} {body}")
    return total


def recorded_once_folded(port: int, user: str, bucket: str, expected: int) -> int:
    """`recorded`, read again until it is `expected` or `SEEN_WITHIN` has passed: behind nginx,
    a Cassandra process sees the other processes' hits once they fold them (every second)."""
    total = recorded(port, user, bucket)
    settled_by = time.monotonic() + SEEN_WITHIN
    while total != expected and time.monotonic() < settled_by:
        total = recorded(port, user, bucket)
    return total


def seen_elsewhere(writer: int, reader: int, user: str, bucket: str, hits: int, period: float) -> list[float]:
    """Seconds from each hit's 200 on the process at port `writer` to its count in a report of
    the process at port `reader`; hits one at a time, the reader asked every 5 ms.

    Each hit waits a random part of `period` (the writer's fold period) first: sent as soon as
    the one before is seen, just after a fold, every hit would wait a whole period.
    """
    delays = []
    report = f"/{user}/{bucket}/event/seen"
    pacing = random.Random(hits)
    for n in range(hits):
        time.sleep(pacing.uniform(0, period))
        status, body = http(writer, "POST", report, {"visitor_id": f"v{n}"})
        answered = time.perf_counter()
        if status != 200:
            raise RuntimeError(f"hit {n} answered {status}: {body}")
        while True:
            status, body = http(reader, "GET", report, auth=basic(user))
            if status == 200 and body["total"] > n:
                break
            if time.perf_counter() - answered > SEEN_WITHIN:
                raise RuntimeError(f"hit {n} not seen by the other process within {SEEN_WITHIN} s: {status} {body}")
            time.sleep(0.005)
        delays.append(time.perf_counter() - answered)
    return delays


def timed_hits(
    port: int,
    prefix: str,
    hits: int,
    visitor: Callable[[int], str],
    starts: list[float] | None = None,
    insert_ids: bool = False,
) -> list[float]:
    """Seconds each of `hits` event requests took, sent one at a time on one kept-alive
    connection, hit n from visitor(n); each must be answered 200.  When each was sent (Unix
    seconds) goes to `starts` if given.  With `insert_ids` each hit has an insert_id of its
    own, as the JavaScript tracker's have."""
    connection = HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    took = []
    try:
        for n in range(hits):
            name = EVENT_NAMES[n % len(EVENT_NAMES)]
            if starts is not None:
                starts.append(time.time())
            started = time.perf_counter()
            form = f"visitor_id={visitor(n)}" + (f"&insert_id=hit{n}" if insert_ids else "")
            connection.request("POST", f"{prefix}/event/{name}", form, headers)
            answer = connection.getresponse()
            body = answer.read()
            took.append(time.perf_counter() - started)
            if answer.status != 200:
                raise RuntimeError(f"hit {n} answered {answer.status}: {body[:200]!r}")
    finally:
        connection.close()
    return took


def commits(port: int) -> tuple[float, float, float]:
    """(commits, batches committed, seconds the commits took) so far, from the server's /metrics."""
    auth = "Basic " + base64.b64encode(METRICS_AUTH.encode()).decode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": auth})
    with urllib.request.urlopen(request, timeout=60) as answer:
        text = answer.read().decode()
    found = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        if family.name in ("hiitrack_store_commit_batches", "hiitrack_store_commit_seconds")
        for sample in family.samples
    }
    return (
        found.get("hiitrack_store_commit_batches_count", 0.0),
        found.get("hiitrack_store_commit_batches_sum", 0.0),
        found.get("hiitrack_store_commit_seconds_sum", 0.0),
    )


def funnel_path(user: str, bucket: str) -> str:
    """The measured report: the 4-step funnel split by the 50-value property."""
    steps = "&".join(f"event={quote(step, safe='')}" for step in FUNNEL_STEPS)
    return f"/{user}/{bucket}/funnel?{steps}&property=plan"
