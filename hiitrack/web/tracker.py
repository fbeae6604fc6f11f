"""/hiitrack.js: the browser tracker, served with the server.

The file is hiitrack/static/hiitrack.js, read once at start and served with
a strong ETag (304 on If-None-Match) and a week of cache lifetime: pages
load it on every view, and a changed script still reaches every browser
within the week (sooner with ``/hiitrack.js?v=N``, the query being ignored).
Any origin may load it, also with ``crossorigin`` for Subresource Integrity.
Tests: tests/test_http_tracker.py, tests/test_tracker_browser.py.
"""

from twisted.web.server import Request

from hiitrack.web.params import Params
from hiitrack.web.render import Raw
from hiitrack.web.static import StaticFile

__all__ = ["TrackerScript"]

MAX_AGE = 7 * 86400


class TrackerScript(StaticFile):
    def __init__(self) -> None:
        super().__init__("hiitrack.js", b"application/javascript; charset=utf-8", max_age=MAX_AGE)

    async def handle_GET(self, request: Request, params: Params) -> Raw:
        request.setHeader(b"Access-Control-Allow-Origin", b"*")
        return await super().handle_GET(request, params)
