"""/{user}/{bucket}/funnel: previews and saved funnels.

A funnel is an ordered list of at least two events, optionally split by a
property.  Steps are given by name (``event``) or id (``event_id``); a step
the bucket has never seen counts 0.  Tests: tests/test_http_reports.py.
"""

from twisted.web.server import Request

from hiitrack.app import HiiTrack
from hiitrack.errors import BadRequest, NotFound
from hiitrack.ids import InvalidId, decode_id, encode_id, event_id
from hiitrack.web.bucket import BucketResource
from hiitrack.web.params import Params, check_event_name, decode_segment
from hiitrack.web.render import ApiResource

__all__ = ["FunnelIndex"]


def _steps(params: Params) -> list[bytes]:
    names, ids = params.all("event"), params.all("event_id")
    if names and ids:
        raise BadRequest("give the steps as event names or as event ids, not both")
    try:
        steps = [event_id(check_event_name(name)) for name in names] or [decode_id(text) for text in ids]
    except InvalidId as error:
        raise BadRequest(str(error)) from None
    if len(steps) < 2:
        raise BadRequest("a funnel needs at least two steps (event or event_id)")
    return steps


def _property(params: Params) -> str | None:
    name = params.get("property")
    return None if name is None else check_event_name(name, "property")


class FunnelIndex(BucketResource):
    route = "/{user}/{bucket}/funnel"

    def child(self, path: bytes, request: Request) -> ApiResource:
        return Funnel(self.app, self.user, self.bucket, check_event_name(decode_segment(path, "funnel name"), "funnel"))

    async def handle_GET(self, request: Request, params: Params) -> dict:
        """A preview: the report of a funnel that is not saved."""
        await self.authorize_existing(request)
        return await self.app.reports.funnel(self.scope, _steps(params), _property(params))


class Funnel(BucketResource):
    route = "/{user}/{bucket}/funnel/{name}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, name: str) -> None:
        super().__init__(app, user, bucket)
        self.name = name

    async def handle_POST(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        funnel = {
            "description": params.get("description") or "",
            "event_ids": [encode_id(step) for step in _steps(params)],
            "property": _property(params),
        }
        await self.app.catalog.save_funnel(self.scope, self.name, funnel)
        request.setResponseCode(201)
        return {}

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        funnel = await self._saved()
        steps = [decode_id(text) for text in funnel["event_ids"]]
        report = await self.app.reports.funnel(self.scope, steps, funnel["property"])
        return {**report, "description": funnel["description"]}

    async def handle_DELETE(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        await self._saved()
        await self.app.catalog.delete_funnel(self.scope, self.name)
        return {}

    async def _saved(self) -> dict:
        funnel = await self.app.catalog.funnel(self.scope, self.name)
        if funnel is None:
            raise NotFound(f"no funnel {self.name}")
        return funnel
