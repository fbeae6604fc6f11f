"""The visitor of a hit on the open tracking routes, and who may learn it.

The visitor is ``visitor_id`` if given, else the ``v`` cookie, else a new
random id.  The cookie is HttpOnly and belongs to one bucket
(``Path=/{user}/{bucket}``): every tenant of a HiiTrack host shares the
host's cookies, and a host-wide cookie would carry the id one site gave its
visitor (an e-mail address after ``identify``) into every other site's
reports.  When a request carries several ``v`` cookies, the first counts:
browsers list the cookie with the longest path first, so this bucket's own
cookie wins over an older, wider one.

An answer names the visitor only to callers that may know it: clients that
are not browsers and pages of the server's own origin, or a caller that
named the visitor itself.  A page on another origin (CORS) or a ``<script>``
(JSONP, which carries no Origin) does not learn the cookie's id, else any
site could read it out of the answer.  Tests: tests/test_http_tracker.py,
tests/test_http_tracking.py, tests/test_tracker_browser.py.
"""

import secrets
from urllib.parse import quote, unquote

from twisted.web.server import Request

from hiitrack.web.cors import is_cross_origin
from hiitrack.web.params import Params, check_visitor_id

__all__ = ["COOKIE", "cookie_visitor", "may_learn_visitor", "visitor_of"]

COOKIE = b"v"
COOKIE_MAX_AGE = 2 * 365 * 86400
# Cross-site trackers need SameSite=None, which browsers accept only on Secure cookies.
COOKIE_FLAGS = {True: b"; Secure; HttpOnly; SameSite=none", False: b"; HttpOnly; SameSite=lax"}


def cookie_visitor(request: Request) -> str | None:
    """The visitor named by the first ``v`` cookie of the request, if any."""
    for header in request.requestHeaders.getRawHeaders(b"Cookie") or []:
        for pair in header.split(b";"):
            name, equals, value = pair.strip().partition(b"=")
            if name == COOKIE and equals:
                return unquote(value.decode("ascii", "replace")) or None
    return None


def visitor_of(request: Request, params: Params, user: str, bucket: str) -> str:
    """The hit's visitor; sets the bucket's ``v`` cookie when it is new or changed."""
    remembered = cookie_visitor(request)
    visitor_id = params.get("visitor_id")
    if visitor_id is None:
        visitor_id = remembered or secrets.token_urlsafe(16)
    check_visitor_id(visitor_id)
    if visitor_id != remembered:
        secure = request.getHeader(b"X-Forwarded-Proto") == b"https" or request.isSecure()
        # As Request.addCookie writes it, without its checks (1.6 % of the
        # reactor thread under event load): the id is quoted and user and
        # bucket names are plain ASCII (accounts.check_name).
        request.cookies.append(
            b"%s=%s; Path=/%s/%s; Max-Age=%d%s"
            % (
                COOKIE,
                quote(visitor_id, safe="").encode("ascii"),
                user.encode("ascii"),
                bucket.encode("ascii"),
                COOKIE_MAX_AGE,
                COOKIE_FLAGS[secure],
            )
        )
    return visitor_id


def may_learn_visitor(request: Request, params: Params) -> bool:
    """Whether the answer may name the visitor (see the module's docstring)."""
    if params.get("visitor_id") is not None:
        return True
    return params.get("callback") is None and not is_cross_origin(request)
