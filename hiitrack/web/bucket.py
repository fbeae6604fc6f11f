"""The base of every resource under /{user}/{bucket}.

It knows which bucket it is about and how to let a reader in: the user's
password, or the bucket's access key for GET routes.  Tests:
tests/test_http_auth.py.
"""

from twisted.web.server import Request

from hiitrack.accounts import bucket_scope
from hiitrack.app import HiiTrack
from hiitrack.web.access import authorize, existing_bucket
from hiitrack.web.render import ApiResource

__all__ = ["BucketResource"]


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
