"""Who may do what: Basic credentials and access keys.

Reports and account changes need the user's password (or, for the GET
routes of one bucket, its access key).  Tracking routes are open: their
only identity is the visitor (hiitrack.web.visitor).  Tests:
tests/test_http_auth.py.
"""

import base64
import binascii

from twisted.web.server import Request

from hiitrack.accounts import Access
from hiitrack.app import HiiTrack
from hiitrack.errors import NotFound, Unauthorized

__all__ = ["authorize", "credentials", "existing_bucket"]

READ_METHODS = (b"GET", b"HEAD")


def credentials(request: Request) -> tuple[str, str]:
    """The (login, password) of a request's Basic ``Authorization``, or 401."""
    scheme, _, encoded = (request.getHeader(b"Authorization") or b"").partition(b" ")
    if scheme.lower() != b"basic":
        raise Unauthorized("this needs HTTP Basic credentials")
    try:
        login, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    if not colon:
        raise Unauthorized("malformed Basic credentials")
    return login, password


async def authorize(app: HiiTrack, request: Request, user: str, bucket: str | None = None) -> Access:
    """The caller's access to /user[/bucket]; an access key only reads its bucket."""
    login, password = credentials(request)
    access = await app.accounts.authenticate(user, bucket, login, password)
    if access.read_only and request.method not in READ_METHODS:
        raise Unauthorized("an access key can only read its bucket")
    return access


async def existing_bucket(app: HiiTrack, user: str, bucket: str) -> dict:
    record = await app.accounts.bucket(user, bucket)
    if record is None:
        raise NotFound(f"no bucket {bucket}")
    return record
