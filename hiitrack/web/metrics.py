"""/metrics: the Prometheus text format, for the operator only.

Served when the server starts with ``--metrics-auth USER:PASS`` and answered
only to those Basic credentials (401 otherwise); without the option the path
is 404.  The path is reserved either way, so it never reaches a user named
``metrics``.  `observe` is the render helper's hook that feeds the request
counters: its route label is the route template (``/{user}/{bucket}/event/
{name}``), never the raw path, so the number of series stays bounded.
Collectors: hiitrack.metrics.  Tests: tests/test_metrics.py.
"""

import base64
import binascii
import hmac
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.resource import Resource
from twisted.web.server import Request

from hiitrack.errors import NotFound
from hiitrack.metrics import METRICS, CacheCollector

__all__ = ["MetricsResource", "metrics_resource", "observe", "route_of"]

# The resource classes of the API and the route each one serves.
ROUTES = {
    "Root": "/",
    "User": "/{user}",
    "Bucket": "/{user}/{bucket}",
    "Event": "/{user}/{bucket}/event/{name}",
    "EventReport": "/{user}/{bucket}/event_id/{id}",
    "Property": "/{user}/{bucket}/property/{name}",
    "PropertyReport": "/{user}/{bucket}/property_id/{id}",
    "Batch": "/{user}/{bucket}/batch",
    "FunnelIndex": "/{user}/{bucket}/funnel",
    "Funnel": "/{user}/{bucket}/funnel/{name}",
}
OTHER = "other"
METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"}


def route_of(resource: object) -> str:
    """The route template a resource serves; unknown paths and errors are "other"."""
    return ROUTES.get(type(resource).__name__, OTHER)


def observe(request: Request, resource: object, status: int, started: float) -> None:
    """Count one answered request and its latency since `started` (time.monotonic)."""
    route = route_of(resource)
    method = request.method if request.method in METHODS else b"other"
    METRICS.requests.labels(route, method.decode("ascii"), str(status)).inc()
    METRICS.latency.labels(route).observe(time.monotonic() - started)


def _caches(app: object) -> dict[str, object]:
    """The app's bounded caches by name (those that exist in this version)."""
    found = {}
    for name, owner, attribute in (
        ("visitor", "tracker", "_visitors"),
        ("insert_id", "tracker", "_insert_ids"),
        ("catalog", "catalog", "_written"),
        ("login", "accounts", "_logins"),
        ("user", "accounts", "_users"),
        ("bucket", "accounts", "_buckets"),
    ):
        cache = getattr(getattr(app, owner, None), attribute, None)
        if cache is not None and hasattr(cache, "hits"):
            found[name] = cache
    return found


class MetricsResource(Resource):
    isLeaf = True

    def __init__(self, app: object, login: str, password: str) -> None:
        super().__init__()
        self._login = login.encode("utf-8")
        self._password = password.encode("utf-8")
        self._registry = METRICS.registry(CacheCollector(lambda: _caches(app)))

    def _allowed(self, request: Request) -> bool:
        scheme, _, encoded = (request.getHeader(b"Authorization") or b"").partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            login, _, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        # Both compared whole, in constant time, so timing tells nothing.
        return hmac.compare_digest(login, self._login) & hmac.compare_digest(password, self._password)

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Cache-Control", b"no-store")
        if not self._allowed(request):
            request.setResponseCode(401)
            request.setHeader(b"WWW-Authenticate", b'Basic realm="hiitrack metrics"')
            request.setHeader(b"Content-Type", b"application/json")
            return b'{"error":"the metrics need the operator\'s Basic credentials"}'
        request.setHeader(b"Content-Type", CONTENT_TYPE_LATEST.encode("ascii"))
        return generate_latest(self._registry)


def metrics_resource(app: object) -> Resource:
    """/metrics for the app: served with its ``metrics_auth``, else 404."""
    from hiitrack.web.render import ErrorResource

    auth = app.metrics_auth
    if auth is None:
        return ErrorResource(NotFound("no such path"))
    login, password = auth
    resource = getattr(app, "_metrics_resource", None)
    if resource is None:
        resource = app._metrics_resource = MetricsResource(app, login, password)
    return resource
