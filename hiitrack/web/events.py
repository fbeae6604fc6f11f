"""/{user}/{bucket}/event/{name}, /event_id/{id}, /property/{name}, /property_id/{id}.

POST on a name records a hit (open to browsers); GET reads the report
(credentials or the bucket's access key).  Tests:
tests/test_http_tracking.py, tests/test_http_reports.py.
"""

from twisted.web.server import Request

from hiitrack.app import HiiTrack
from hiitrack.counting import INTERVALS
from hiitrack.errors import BadRequest
from hiitrack.ids import InvalidId, decode_id, event_id, property_id
from hiitrack.reports import Series
from hiitrack.web.bucket import BucketResource
from hiitrack.web.params import (
    Params,
    check_event_name,
    decode_base64,
    decode_json,
    decode_json_value,
    decode_segment,
)
from hiitrack.web.render import ApiResource
from hiitrack.web.visitor import visitor_of

__all__ = ["EventIndex", "PropertyIndex", "requested_series"]


def requested_series(params: Params, now: float) -> Series | None:
    """The time range a report asks for, if any; `Series.requested` holds its rules."""
    start = params.get("start")
    if start is None:
        return None
    interval = params.get("interval")
    interval = "day" if interval is None else interval
    if interval not in INTERVALS:
        raise BadRequest("interval must be hour or day")
    finish = params.get("finish")
    if not all(text.isascii() and text.isdigit() for text in (start, finish or "0")):
        # int() would also take " 1", "1_0" and non-ASCII digits.
        raise BadRequest("start and finish must be integer Unix times")
    try:
        first = int(start)
        last = int(finish) if finish is not None else None
    except ValueError:
        raise BadRequest("start and finish must be integer Unix times") from None
    return Series.requested(INTERVALS[interval], first, last, now)


def _id_from_path(segment: bytes, what: str) -> bytes:
    try:
        return decode_id(decode_segment(segment, what))
    except InvalidId as error:
        raise BadRequest(str(error)) from None


class _Index(BucketResource):
    """The collection level (``event``, ``property``): it only has children."""

    def __init__(self, app: HiiTrack, user: str, bucket: str, by_id: bool) -> None:
        super().__init__(app, user, bucket)
        self.by_id = by_id


class EventIndex(_Index):
    def child(self, path: bytes, request: Request) -> ApiResource:
        if self.by_id:
            return EventReport(self.app, self.user, self.bucket, _id_from_path(path, "event id"))
        name = check_event_name(decode_segment(path, "event name"))
        return Event(self.app, self.user, self.bucket, name)


class PropertyIndex(_Index):
    def child(self, path: bytes, request: Request) -> ApiResource:
        if self.by_id:
            return PropertyReport(self.app, self.user, self.bucket, _id_from_path(path, "property id"))
        name = check_event_name(decode_segment(path, "property name"), "property")
        return Property(self.app, self.user, self.bucket, name)


class EventReport(BucketResource):
    route = "/{user}/{bucket}/event_id/{id}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, event: bytes) -> None:
        super().__init__(app, user, bucket)
        self.event = event

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        series = requested_series(params, self.app.clock())
        prop = params.get("property")
        if prop is not None:
            check_event_name(prop, "property")
        return await self.app.reports.event(self.scope, self.event, prop, series)


class Event(EventReport):
    tracking_methods = frozenset({b"POST"})
    route = "/{user}/{bucket}/event/{name}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, name: str) -> None:
        super().__init__(app, user, bucket, event_id(name))
        self.name = name

    async def handle_POST(self, request: Request, params: Params) -> dict:
        visitor_id = visitor_of(request, params, self.user, self.bucket)
        return await self.record_hit(params, visitor_id, events=[self.name])


class PropertyReport(BucketResource):
    route = "/{user}/{bucket}/property_id/{id}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, prop: bytes) -> None:
        super().__init__(app, user, bucket)
        self.prop = prop

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        return await self.app.reports.property(self.scope, self.prop)


class Property(PropertyReport):
    tracking_methods = frozenset({b"POST"})
    route = "/{user}/{bucket}/property/{name}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, name: str) -> None:
        super().__init__(app, user, bucket, property_id(name))
        self.name = name

    async def handle_POST(self, request: Request, params: Params) -> dict:
        value = decode_json_value(decode_json(decode_base64(params.require("value"), "value"), "value"))
        visitor_id = visitor_of(request, params, self.user, self.bucket)
        return await self.record_hit(params, visitor_id, properties=[(self.name, value)])
