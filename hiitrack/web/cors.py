"""CORS for the open tracking routes, so pages on any origin can report.

Browsers send the visitor's ``v`` cookie cross-origin only with
``credentials: 'include'``, and then read the answer only when it names the
page's own origin (never ``*``) and allows credentials.  Only the tracking
methods get these headers: the report GETs of the same paths are protected
by Basic credentials, which a browser also sends with ``include``, so
allowing them cross-origin would let any site read reports through a
logged-in owner's browser.  A preflight ``OPTIONS`` (a JSON body, a custom
header) is answered 204 without running the route.  Tests:
tests/test_http_tracker.py, tests/test_tracker_browser.py.
"""

from collections.abc import Collection

from twisted.web.server import Request

__all__ = ["ALLOWED_HEADERS", "MAX_AGE", "apply_cors"]

ALLOWED_HEADERS = b"Content-Type, X-Requested-With"
MAX_AGE = b"86400"


def apply_cors(request: Request, methods: Collection[bytes]) -> bool:
    """Add the CORS headers for `methods`; True if this answered a preflight.

    Called before the route runs, so every answer of those methods (errors
    included) carries the headers.
    """
    preflight = request.method == b"OPTIONS"
    asked = request.getHeader(b"Access-Control-Request-Method") if preflight else request.method
    if asked == b"HEAD":
        asked = b"GET"
    # Caches must not hand one origin's answer to another.
    request.setHeader(b"Vary", b"Origin")
    origin = request.getHeader(b"Origin")
    if origin is not None and asked in methods:
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
