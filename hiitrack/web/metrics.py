"""/metrics: the Prometheus text format, for the operator only.

Served when the server starts with operator credentials
(``--metrics-auth-file`` or ``HIITRACK_METRICS_AUTH``, see hiitrack.tap) and
answered only to those Basic credentials (401 otherwise); without them the
path is 404.  The path is reserved either way, so it never reaches a user named
``metrics``.  Collectors: hiitrack.metrics.  Tests: tests/test_metrics.py.
"""

import hmac

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.web.server import Request

from hiitrack.app import HiiTrack
from hiitrack.errors import NotFound, OperatorOnly, Unauthorized
from hiitrack.metrics import METRICS, CacheCollector
from hiitrack.web.access import credentials
from hiitrack.web.params import Params
from hiitrack.web.render import ApiResource, Raw

__all__ = ["MetricsResource"]


class MetricsResource(ApiResource):
    isLeaf = True
    route = "/metrics"

    def __init__(self, app: HiiTrack) -> None:
        super().__init__()
        self.app = app
        self._registry = METRICS.registry(CacheCollector(app.caches))

    async def handle_GET(self, request: Request, params: Params) -> Raw:
        if self.app.metrics_auth is None:
            raise NotFound("no such path")
        request.setHeader(b"Cache-Control", b"no-store")
        refused = OperatorOnly("the metrics need the operator's Basic credentials")
        try:
            login, password = credentials(request)
        except Unauthorized:
            raise refused from None
        expected_login, expected_password = self.app.metrics_auth
        # Both compared whole, in constant time, so timing tells nothing.
        if not (
            hmac.compare_digest(login.encode(), expected_login.encode())
            & hmac.compare_digest(password.encode(), expected_password.encode())
        ):
            raise refused
        return Raw(generate_latest(self._registry), CONTENT_TYPE_LATEST.encode("ascii"))
