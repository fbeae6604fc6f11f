"""/{user}/{bucket}/funnel: previews, saved funnels and who dropped off.

A funnel is an ordered list of at least two events, optionally split by a
property.  Steps are given by name (``event``) or id (``event_id``); a step
the bucket has never seen counts 0.  A saved funnel also has an exact
definition (order, window, exclusions, any-of steps: docs/api.md) and a
version, new each time it is saved, under which hiitrack.conversions counts
it.  Tests: tests/test_http_reports.py, tests/test_exact_funnels.py,
tests/test_backfill.py.
"""

from twisted.web.server import Request

from hiitrack.app import HiiTrack
from hiitrack.conversions import SavedFunnel, definition_record
from hiitrack.errors import BadRequest, NotFound, Unauthorized
from hiitrack.forwarding import SIGNATURE_HEADER, backfill_message
from hiitrack.funnels import DEFAULT_WINDOW, MAX_STEPS, MAX_WINDOW, FunnelDefinition
from hiitrack.ids import InvalidId, decode_id, encode_id, event_id
from hiitrack.web.access import authorize
from hiitrack.web.bucket import BucketResource
from hiitrack.web.events import requested_series
from hiitrack.web.params import Params, check_event_name, check_visitor_id, decode_segment
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


def _definition(params: Params) -> FunnelDefinition:
    """A saved funnel's exact definition; 400 (`InvalidFunnel`) for anything the contract refuses."""
    groups, ids = params.groups("event"), params.all("event_id")
    if groups and ids:
        raise BadRequest("give the steps as event names or as event ids, not both")
    try:
        steps = [tuple(event_id(check_event_name(name)) for name in group) for group in groups] or [
            (decode_id(text),) for text in ids
        ]
    except InvalidId as error:
        raise BadRequest(str(error)) from None
    if len(steps) < 2:
        raise BadRequest("a funnel needs at least two steps (event or event_id)")
    order = params.get("order")
    return FunnelDefinition(
        steps=tuple(steps),
        order="sequential" if order is None else order,
        window=params.integer("window", DEFAULT_WINDOW, 1, MAX_WINDOW),
        exclude=tuple(event_id(check_event_name(name)) for name in params.all("exclude")),
    )


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


class OfFunnel(BucketResource):
    """A resource below a saved funnel's: it knows the funnel's name."""

    def __init__(self, app: HiiTrack, user: str, bucket: str, name: str) -> None:
        super().__init__(app, user, bucket)
        self.name = name


class Funnel(OfFunnel):
    route = "/{user}/{bucket}/funnel/{name}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, name: str) -> None:
        super().__init__(app, user, bucket, name)
        self.putChild(b"visitors", FunnelVisitors(app, user, bucket, name))
        self.putChild(b"conversion", FunnelConversion(app, user, bucket, name))
        self.putChild(b"backfill", FunnelBackfill(app, user, bucket, name))

    async def handle_POST(self, request: Request, params: Params) -> dict:
        """Save or replace the funnel: a new version, counted afresh."""
        await self.authorize_existing(request)
        definition = _definition(params)
        funnel = {
            "description": params.get("description") or "",
            # Part 1's pairwise report takes one event per step: an any-of step's first.
            "event_ids": [encode_id(step[0]) for step in definition.steps],
            "property": _property(params),
            **definition_record(definition),
        }
        await self.app.save_funnel(self.scope, self.name, funnel)
        request.setResponseCode(201)
        return {}

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        funnel = await saved_funnel(self.app, self.scope, self.name)
        days = requested_series(params.without("interval"), self.app.clock())
        return await self.app.reports.saved_funnel(self.scope, funnel, days)

    async def handle_DELETE(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        await saved_funnel(self.app, self.scope, self.name)
        await self.app.delete_funnel(self.scope, self.name)
        return {}


class FunnelConversion(OfFunnel):
    """A saved funnel's exact report alone: a few counter rows, without Part 1's pairwise report."""

    route = "/{user}/{bucket}/funnel/{name}/conversion"

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self.authorize_existing(request)
        funnel = await saved_funnel(self.app, self.scope, self.name)
        exact = SavedFunnel.of(funnel)
        if exact is None:
            raise NotFound("this funnel was saved before exact funnels: save it again for its exact report")
        days = requested_series(params.without("interval"), self.app.clock())
        return await self.app.reports.conversion(self.scope, exact, funnel, days)


class FunnelBackfill(OfFunnel):
    """Another process of the installation has this process count a visitor it serves (hiitrack.forwarding)."""

    route = "/{user}/{bucket}/funnel/{name}/backfill"

    async def handle_POST(self, request: Request, params: Params) -> dict:
        visitor_id = check_visitor_id(params.require("visitor_id"))
        version = params.require("version")
        signature = request.getHeader(SIGNATURE_HEADER) or ""
        if not self.app.accounts.signed(backfill_message(self.scope, self.name, version, visitor_id), signature):
            raise Unauthorized("only the processes of this installation count backfilled visitors")
        if not await self.app.count_backfilled(self.scope, self.name, version, visitor_id):
            raise NotFound("that version of the funnel is no longer saved, or the bucket is gone")
        return {}


async def saved_funnel(app: HiiTrack, scope: str, name: str) -> dict:
    funnel = await app.catalog.funnel(scope, name)
    if funnel is None:
        raise NotFound(f"no funnel {name}")
    return funnel


class FunnelVisitors(OfFunnel):
    """Who reached a step, or dropped off before it: visitor ids, so the password only."""

    route = "/{user}/{bucket}/funnel/{name}/visitors"

    async def handle_GET(self, request: Request, params: Params) -> dict:
        access = await authorize(self.app, request, self.user, self.bucket)
        if access.read_only:
            raise Unauthorized("the access key does not open visitor lists: they are personal data")
        await self.authorize_existing(request)
        funnel = SavedFunnel.of(await saved_funnel(self.app, self.scope, self.name))
        if funnel is None:
            raise NotFound("this funnel was saved before exact funnels: save it again to list its visitors")
        status = params.require("status")
        if status not in ("reached", "dropped"):
            raise BadRequest("status must be reached or dropped")
        step = params.integer("step", None, 1, MAX_STEPS)
        limit = params.integer("limit", 100, 1, 1000)
        after = params.get("after") or ""
        return await self.app.reports.funnel_visitors(self.scope, funnel, step, status == "reached", after, limit)
