"""The base of every resource under /{user}/{bucket}.

It knows which bucket it is about, how to let a reader in (the user's
password, or the bucket's access key for GET routes) and how to hand a
checked hit to the application.  Tests: tests/test_http_auth.py,
tests/test_http_tracking.py.
"""

from collections.abc import Sequence

from twisted.web.server import Request

from hiitrack.accounts import bucket_scope
from hiitrack.app import HiiTrack
from hiitrack.errors import BadRequest
from hiitrack.web.access import authorize, existing_bucket
from hiitrack.web.params import Params, decode_time
from hiitrack.web.render import ApiResource

__all__ = ["BucketResource"]

INSERT_ID_LIMIT = 256


class BucketResource(ApiResource):
    def __init__(self, app: HiiTrack, user: str, bucket: str) -> None:
        super().__init__()
        self.app = app
        self.user = user
        self.bucket = bucket
        self.scope = bucket_scope(user, bucket)

    async def authorize_existing(self, request: Request) -> dict:
        """Let the caller in, then the bucket's record (404 if there is none)."""
        await authorize(self.app, request, self.user, self.bucket)
        return await existing_bucket(self.app, self.user, self.bucket)

    async def record_hit(
        self,
        params: Params,
        visitor_id: str,
        events: Sequence[str] = (),
        properties: Sequence[tuple[str, object]] = (),
    ) -> dict:
        """Check the hit's ``insert_id`` and ``time`` and have the app record it.

        Returns what the answer adds: ``{"duplicate": true}`` when the hit's
        ``insert_id`` was applied before.
        """
        insert_id = params.get("insert_id")
        if insert_id is not None and not 1 <= len(insert_id) <= INSERT_ID_LIMIT:
            raise BadRequest(f"insert_id must be 1-{INSERT_ID_LIMIT} characters")
        time = params.get("time")
        time_ms = None if time is None else decode_time(time, self.app.clock())
        applied = await self.app.record_hit(self.user, self.bucket, visitor_id, events, properties, insert_id, time_ms)
        return {} if applied else {"duplicate": True}
