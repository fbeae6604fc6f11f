"""/{user}/{bucket}/batch: several events and properties of one visitor at once.

The JavaScript tracker and the image pixel report here.  The message is
checked whole before anything is recorded; a refused message records
nothing.  With ``img=1`` the answer is a 1×1 transparent GIF whatever
happens (hiitrack.web.render), so an ``<img>`` never shows a broken
picture.  The answer names the visitor only to a caller that may learn it
(hiitrack.web.visitor).  Tests:
tests/test_http_tracking.py, tests/test_http_tracker.py.
"""

from twisted.web.server import Request

from hiitrack.errors import ApiError, BadRequest
from hiitrack.web.bucket import BucketResource
from hiitrack.web.params import (
    Params,
    check_event_name,
    decode_base64,
    decode_json,
    decode_json_value,
)
from hiitrack.web.visitor import may_learn_visitor, visitor_of

__all__ = ["Batch", "parse_message"]

BATCH_LIMIT = 100


def parse_message(text: str) -> tuple[list[str], list[tuple[str, object]]]:
    """``[[event, ...], [[property, value], ...]]`` from base64 JSON, checked."""
    message = decode_json(decode_base64(text, "message"), "message")
    if not isinstance(message, list) or len(message) != 2 or not all(isinstance(part, list) for part in message):
        raise BadRequest("message must be a JSON list [[event, ...], [[property, value], ...]]")
    events, properties = message
    if len(events) > BATCH_LIMIT or len(properties) > BATCH_LIMIT:
        raise BadRequest(f"a batch holds at most {BATCH_LIMIT} events and {BATCH_LIMIT} properties")
    for name in events:
        if not isinstance(name, str):
            raise BadRequest("event names must be strings")
        check_event_name(name)
    pairs = []
    for pair in properties:
        if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[0], str):
            raise BadRequest("each property must be a [name, value] pair")
        pairs.append((check_event_name(pair[0], "property"), decode_json_value(pair[1])))
    return events, pairs


class Batch(BucketResource):
    tracking_methods = frozenset({b"GET", b"POST"})
    route = "/{user}/{bucket}/batch"

    async def handle_GET(self, request: Request, params: Params) -> dict:
        visitor_id = None
        try:
            visitor_id = visitor_of(request, params, self.user, self.bucket)
            events, properties = parse_message(params.require("message"))
            answer = await self.record_hit(params, visitor_id, events, properties)
        except ApiError as error:
            if visitor_id is not None and may_learn_visitor(request, params):
                error.extra["visitor_id"] = visitor_id
            raise
        if may_learn_visitor(request, params):
            return {"visitor_id": visitor_id, **answer}
        return answer

    handle_POST = handle_GET
