"""/{user}/{bucket}/visitor/{visitor_id}: one visitor's history, and its erase.

Personal data: only the user's password opens these routes, never the
bucket's access key.  Tests: tests/test_history.py.
"""

from twisted.web.server import Request

from hiitrack.app import HiiTrack
from hiitrack.errors import NotFound, Unauthorized
from hiitrack.web.access import authorize, existing_bucket
from hiitrack.web.bucket import BucketResource
from hiitrack.web.params import Params, check_visitor_id, decode_segment
from hiitrack.web.render import ApiResource

__all__ = ["VisitorIndex"]

PAGE_LIMIT = 1000


class VisitorIndex(BucketResource):
    """The collection level: it only has children."""

    def child(self, path: bytes, request: Request) -> ApiResource:
        visitor_id = check_visitor_id(decode_segment(path, "visitor id"))
        return VisitorHistory(self.app, self.user, self.bucket, visitor_id)


class VisitorHistory(BucketResource):
    route = "/{user}/{bucket}/visitor/{visitor_id}"

    def __init__(self, app: HiiTrack, user: str, bucket: str, visitor_id: str) -> None:
        super().__init__(app, user, bucket)
        self.visitor_id = visitor_id

    async def _authorize_owner(self, request: Request) -> None:
        access = await authorize(self.app, request, self.user, self.bucket)
        if access.read_only:
            raise Unauthorized("a visitor's data needs the user's password, not an access key")
        await existing_bucket(self.app, self.user, self.bucket)

    async def handle_GET(self, request: Request, params: Params) -> dict:
        await self._authorize_owner(request)
        limit = params.integer("limit", PAGE_LIMIT, 1, PAGE_LIMIT)
        answer = await self.app.visitor(self.scope, self.visitor_id, params.get("after"), limit)
        if answer is None:
            raise NotFound(f"no visitor {self.visitor_id} in this bucket")
        return answer

    async def handle_DELETE(self, request: Request, params: Params) -> dict:
        await self._authorize_owner(request)
        if not await self.app.erase_visitor(self.scope, self.visitor_id):
            raise NotFound(f"no visitor {self.visitor_id} in this bucket")
        return {}
