"""Import of newline-delimited JSON hits into a bucket, through the write path.

One hit a line: ``{"visitor_id": "...", "time": 1700000000.5, "events":
["a", ...], "properties": {"name": value, ...}, "insert_id": "..."}``
(``events``, ``properties`` and ``insert_id`` optional).  Every line is
checked as the tracking routes check a hit before anything is applied; a
bad line is reported with its number and reason, and either stops the
import (nothing applied) or is skipped.  Each visitor's hits are then
applied in time order (a stable sort: equal times keep the file's order)
through `HiiTrack.record_hit`, visitors concurrently, so an import counts
exactly as the same hits sent over HTTP, and a second import of a file with
insert ids changes nothing.  Tests: tests/test_import.py.
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import ujson
from twisted.internet.defer import DeferredList, ensureDeferred

from hiitrack.app import HiiTrack
from hiitrack.errors import ApiError, BadRequest
from hiitrack.web.batch import BATCH_LIMIT
from hiitrack.web.bucket import INSERT_ID_LIMIT
from hiitrack.web.params import check_event_name, check_visitor_id, decode_json_value, decode_time

__all__ = ["ImportedHit", "Report", "import_hits", "parse_line"]

CONCURRENCY = 64
"""Visitors applied at once: enough to fill group commits."""


@dataclass(frozen=True)
class ImportedHit:
    line: int
    visitor_id: str
    time_ms: int
    events: list[str]
    properties: list[tuple[str, object]]
    insert_id: str | None


@dataclass
class Report:
    """What an import did: hits applied, duplicates, events, and the refused lines with why."""

    applied: int = 0
    duplicates: int = 0
    events: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def parse_line(number: int, text: str, now: float) -> ImportedHit:
    """One line as a checked hit; `BadRequest` says what is wrong with it."""
    try:
        document = ujson.loads(text)
    except ValueError:
        raise BadRequest("not valid JSON") from None
    if not isinstance(document, dict):
        raise BadRequest("a hit is a JSON object")
    unknown = document.keys() - {"visitor_id", "time", "events", "properties", "insert_id"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    visitor_id = document.get("visitor_id")
    if not isinstance(visitor_id, str):
        raise BadRequest("visitor_id must be a string")
    when = document.get("time")
    if isinstance(when, bool) or not isinstance(when, (int, float, str)):
        raise BadRequest("time must be a number of Unix seconds")
    events = document.get("events", [])
    properties = document.get("properties", {})
    if not isinstance(events, list) or not all(isinstance(name, str) for name in events):
        raise BadRequest("events must be a list of names")
    if not isinstance(properties, dict):
        raise BadRequest("properties must be an object {name: value}")
    if len(events) > BATCH_LIMIT or len(properties) > BATCH_LIMIT:
        raise BadRequest(f"a hit holds at most {BATCH_LIMIT} events and {BATCH_LIMIT} properties")
    insert_id = document.get("insert_id")
    if insert_id is not None and not (isinstance(insert_id, str) and 1 <= len(insert_id) <= INSERT_ID_LIMIT):
        raise BadRequest(f"insert_id must be a string of 1-{INSERT_ID_LIMIT} characters")
    return ImportedHit(
        number,
        check_visitor_id(visitor_id),
        decode_time(when if isinstance(when, str) else ujson.dumps(when), now),
        [check_event_name(name) for name in events],
        [(check_event_name(name, "property"), decode_json_value(value)) for name, value in properties.items()],
        insert_id,
    )


async def import_hits(
    app: HiiTrack,
    user: str,
    bucket: str,
    lines: Iterable[str],
    skip_bad: bool,
    progress: Callable[[Report, float], None] = lambda report, rate: None,
) -> Report:
    """Check every line, then apply the hits; with `skip_bad` False a bad line stops the import before any hit."""
    report = Report()
    by_visitor: dict[str, list[ImportedHit]] = {}
    now = app.clock()
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            hit = parse_line(number, text, now)
        except ApiError as error:
            report.refused.append((number, error.message))
            if not skip_bad:
                return report
            continue
        by_visitor.setdefault(hit.visitor_id, []).append(hit)
    started = time.monotonic()
    queue = iter(sorted(by_visitor.values(), key=lambda hits: hits[0].line))
    stopped = False

    async def worker() -> None:
        nonlocal stopped
        for hits in queue:
            for hit in sorted(hits, key=lambda each: each.time_ms):
                if stopped:
                    return
                try:
                    applied = await app.record_hit(
                        user, bucket, hit.visitor_id, hit.events, hit.properties, hit.insert_id, hit.time_ms
                    )
                except ApiError as error:
                    report.refused.append((hit.line, error.message))
                    stopped = not skip_bad
                    continue
                if applied:
                    report.applied += 1
                    report.events += len(hit.events)
                else:
                    report.duplicates += 1
                progress(report, report.events / max(time.monotonic() - started, 1e-9))

    await DeferredList([ensureDeferred(worker()) for _ in range(CONCURRENCY)], fireOnOneErrback=True)
    return report
