"""Who may do what: Basic credentials, access keys, and the visitor of a hit.

Reports and account changes need the user's password (or, for the GET
routes of one bucket, its access key).  Tracking routes are open, so there
the only identity is the visitor: ``visitor_id``, else the ``v`` cookie, else
a new random id.  Tests: tests/test_http_auth.py, tests/test_http_tracking.py.
"""

import base64
import binascii
import secrets
from urllib.parse import quote, unquote

from twisted.web.server import Request

from hiitrack.accounts import Access
from hiitrack.app import HiiTrack
from hiitrack.errors import NotFound, Unauthorized
from hiitrack.web.params import Params, check_visitor_id

__all__ = ["authorize", "credentials", "existing_bucket", "visitor_of"]

COOKIE = b"v"
COOKIE_MAX_AGE = 2 * 365 * 86400
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


def visitor_of(request: Request, params: Params) -> str:
    """The hit's visitor; sets the ``v`` cookie when it is new or changed."""
    cookie = request.getCookie(COOKIE)
    remembered = unquote(cookie.decode("ascii", "replace")) if cookie else None
    visitor_id = params.get("visitor_id")
    if visitor_id is None:
        visitor_id = remembered or secrets.token_urlsafe(16)
    check_visitor_id(visitor_id)
    if visitor_id != remembered:
        secure = request.getHeader(b"X-Forwarded-Proto") == b"https" or request.isSecure()
        request.addCookie(
            COOKIE,
            quote(visitor_id, safe="").encode("ascii"),
            path=b"/",
            max_age=str(COOKIE_MAX_AGE).encode(),
            httpOnly=True,
            secure=secure,
            # Cross-site trackers need SameSite=None, which browsers accept
            # only on Secure cookies.
            sameSite="none" if secure else "lax",
        )
    return visitor_id
