"""CORS for the open tracking routes, so pages on any origin can report.

Browsers send the visitor's ``v`` cookie cross-origin only with
``credentials: 'include'``, and then read the answer only when it names the
page's own origin (never ``*``) and allows credentials.  Only the tracking
methods get these headers: the report GETs of the same paths are protected
by Basic credentials, which a browser also sends with ``include``, so
allowing them cross-origin would let any site read reports through a
logged-in owner's browser.  ``Origin: null`` (sandboxed frames, local files,
all of them at once) is not allowed.  What a cross-origin caller may read in
an answer is decided by hiitrack.web.visitor: it is never the cookie's
visitor id.  A preflight ``OPTIONS`` (a JSON body, a custom header) is
answered 204 without running the route.  Tests: tests/test_http_tracker.py,
tests/test_tracker_browser.py.
"""

from collections.abc import Collection

from twisted.web.server import Request

__all__ = ["ALLOWED_HEADERS", "MAX_AGE", "apply_cors", "is_cross_origin"]

ALLOWED_HEADERS = b"Content-Type, X-Requested-With"
MAX_AGE = b"86400"
OPAQUE_ORIGIN = b"null"


def apply_cors(request: Request, methods: Collection[bytes]) -> bool:
    """Add the CORS headers for `methods`; True if this answered a preflight.

    Called before the route runs, so every answer of those methods (errors
    included) carries the headers.
    """
    preflight = request.method == b"OPTIONS"
    asked = request.getHeader(b"Access-Control-Request-Method") if preflight else request.method
    # Caches must not hand one origin's answer to another.
    request.setHeader(b"Vary", b"Origin")
    origin = request.getHeader(b"Origin")
    if origin is not None and origin != OPAQUE_ORIGIN and asked in methods:
        request.setHeader(b"Access-Control-Allow-Origin", origin)
        request.setHeader(b"Access-Control-Allow-Credentials", b"true")
    if not preflight:
        return False
    request.setHeader(b"Access-Control-Allow-Methods", b", ".join(sorted(methods)))
    request.setHeader(b"Access-Control-Allow-Headers", ALLOWED_HEADERS)
    request.setHeader(b"Access-Control-Max-Age", MAX_AGE)
    request.setHeader(b"Content-Length", b"0")
    request.setResponseCode(204)
    return True


def is_cross_origin(request: Request) -> bool:
    """Whether a browser sent this from a page of another origin than the server's.

    Browsers name the page's origin in ``Origin`` on every CORS request; the
    server's own origin is the ``Host`` it was reached at, with the scheme
    the proxy saw (``X-Forwarded-Proto``).  No ``Origin``: not a CORS call.
    """
    origin = request.getHeader(b"Origin")
    if origin is None:
        return False
    secure = request.getHeader(b"X-Forwarded-Proto") == b"https" or request.isSecure()
    own = (b"https://" if secure else b"http://") + (request.getHeader(b"Host") or b"")
    return origin.lower() != own.lower()
