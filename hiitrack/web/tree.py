"""The top of the tree: the root, users and buckets.

Each level decodes and checks its path segment in ``child``; a refused
segment is answered by an error resource (hiitrack.web.render).  A path
with a trailing slash is redirected to the same path without it, on this
server: ``//evil.example/`` goes to ``/evil.example``, never to another host.
The root serves the static files (the tracker, the OpenAPI document, the
icon browsers ask for: without it their request would meet a Basic challenge
as a user name, and Chromium then forgets the analyst's login).
Tests: tests/test_http_accounts.py, tests/test_http_conventions.py.
"""

import re
from collections.abc import Callable
from functools import partial

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from hiitrack.accounts import check_name
from hiitrack.app import HiiTrack
from hiitrack.errors import BadRequest, Conflict, NotFound
from hiitrack.web.access import authorize, client_address, existing_bucket, secret
from hiitrack.web.batch import Batch
from hiitrack.web.bucket import BucketResource
from hiitrack.web.dashboard import Dashboard
from hiitrack.web.events import EventIndex, PropertyIndex
from hiitrack.web.funnels import FunnelIndex
from hiitrack.web.history import VisitorIndex
from hiitrack.web.metrics import MetricsResource
from hiitrack.web.params import Params, decode_segment
from hiitrack.web.render import ApiResource, write_json
from hiitrack.web.static import StaticFile
from hiitrack.web.tracker import TrackerScript

__all__ = ["Root"]

FAVICON_MAX_AGE = 7 * 86400


# What could turn the start of a Location into another host: slashes,
# backslashes (browsers read a backslash as a slash), controls and spaces
# (browsers drop some of them from URLs).
LEADING_NOT_A_PATH = re.compile(rb"^[/\\\x00-\x20]+")


class WithoutSlash(ApiResource):
    """301 to the same path without its trailing slash, query kept, on this server."""

    isLeaf = True

    def render(self, request: Request) -> object:
        path, question, query = request.uri.partition(b"?")
        # One leading slash only: "//host" would be another site.
        location = b"/" + LEADING_NOT_A_PATH.sub(b"", path.rstrip(b"/"))
        request.setHeader(b"Location", location + question + query)
        request.setResponseCode(301)
        answer = {"error": "moved to the path without its trailing slash"}
        write_json(request, 301, answer, Params.salvaged(request.uri))
        return NOT_DONE_YET


class Root(ApiResource):
    route = "/"

    def __init__(self, app: HiiTrack) -> None:
        super().__init__()
        self.app = app
        self.files = {
            b"openapi.json": StaticFile("openapi.json", b"application/json"),
            b"hiitrack.js": TrackerScript(),
            b"favicon.ico": StaticFile("favicon.ico", b"image/x-icon", max_age=FAVICON_MAX_AGE),
            b"metrics": MetricsResource(app),
        }

    def child(self, path: bytes, request: Request) -> Resource:
        if len(request.path) > 1 and request.path.endswith(b"/"):
            return WithoutSlash()
        if path == b"":
            return self
        if path in self.files:
            return self.files[path]
        return User(self.app, check_name(decode_segment(path, "user name"), "user"))

    async def handle_GET(self, request: Request, params: Params) -> dict:
        return {"service": "hiitrack"}


class User(ApiResource):
    route = "/{user}"

    def __init__(self, app: HiiTrack, user: str) -> None:
        super().__init__()
        self.app = app
        self.user = user

    def child(self, path: bytes, request: Request) -> Resource:
        return Bucket(self.app, self.user, check_name(decode_segment(path, "bucket name"), "bucket"))

    async def handle_POST(self, request: Request, params: Params) -> dict:
        """Create the user; with its credentials and `current_password`, change it.  Credentials
        without `current_password` are no change: the POST creates the user, or is 403."""
        password = secret(request, params, "password")
        current = secret(request, params, "current_password")
        buckets_on_hit = _switch(params, "buckets_on_hit")
        if request.getHeader(b"Authorization") is None or current is None:
            if password is None:
                raise BadRequest("missing parameter password")
            await self.app.accounts.create_user(self.user, password, buckets_on_hit is not False)
            request.setResponseCode(201)
            return {}
        await authorize(self.app, request, self.user)
        if password is None and buckets_on_hit is None:
            raise BadRequest("nothing to change: give password and/or buckets_on_hit")
        await self.app.accounts.change_user(self.user, current, password, buckets_on_hit, client_address(request))
        return {}

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await authorize(self.app, request, self.user)
        buckets = await self.app.accounts.buckets(self.user)
        return {
            "user_name": self.user,
            "buckets": {name: {"description": record["description"]} for name, record in buckets.items()},
        }

    async def handle_DELETE(self, request: Request, params: Params) -> dict:
        await authorize(self.app, request, self.user)
        await self.app.delete_user(self.user)
        return {}


def _switch(params: Params, name: str) -> bool | None:
    """An on/off parameter: true/1 or false/0; None when absent."""
    value = params.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "1", "false", "0"):
        raise BadRequest(f"{name} must be true or false")
    return value.lower() in ("true", "1")


class Bucket(BucketResource):
    route = "/{user}/{bucket}"

    # Built for the one segment asked: eight children made for every hit
    # cost 3 % of the reactor thread under event load.
    CHILDREN: dict[bytes, Callable[[HiiTrack, str, str], Resource]] = {
        b"event": partial(EventIndex, by_id=False),
        b"event_id": partial(EventIndex, by_id=True),
        b"property": partial(PropertyIndex, by_id=False),
        b"property_id": partial(PropertyIndex, by_id=True),
        b"funnel": FunnelIndex,
        b"batch": Batch,
        b"dashboard": Dashboard,
        b"visitor": VisitorIndex,
    }

    def child(self, path: bytes, request: Request) -> Resource:
        make = self.CHILDREN.get(path)
        if make is None:
            raise NotFound("no such path")
        return make(self.app, self.user, self.bucket)

    async def handle_POST(self, request: Request, params: Params) -> dict:
        await authorize(self.app, request, self.user)
        if not await self.app.accounts.create_bucket(self.user, self.bucket, params.get("description") or ""):
            raise Conflict(f"bucket {self.bucket} already exists")
        request.setResponseCode(201)
        return {}

    async def handle_GET(self, request: Request, params: Params) -> dict:
        record = await self.authorize_existing(request)
        return await self.app.reports.overview(self.user, self.bucket, record)

    async def handle_DELETE(self, request: Request, params: Params) -> dict:
        await authorize(self.app, request, self.user)
        await existing_bucket(self.app, self.user, self.bucket)
        await self.app.delete_bucket(self.user, self.bucket)
        return {}
