"""Files the server ships as they are: the tracker script, the OpenAPI document.

Read once at start, served with a strong ETag (their hash) so browsers and
proxies can cache them and revalidate cheaply with If-None-Match.
Tests: tests/test_openapi.py, tests/test_http_tracker.py.
"""

import hashlib
from pathlib import Path

from twisted.web.server import Request

from hiitrack.web.params import Params
from hiitrack.web.render import ApiResource, Raw

__all__ = ["STATIC", "StaticFile"]

STATIC = Path(__file__).resolve().parent.parent / "static"


class StaticFile(ApiResource):
    isLeaf = True

    def __init__(self, name: str, content_type: bytes, max_age: int = 3600) -> None:
        super().__init__()
        self.body = (STATIC / name).read_bytes()
        self.content_type = content_type
        self.etag = b'"' + hashlib.sha256(self.body).hexdigest()[:32].encode() + b'"'
        self.cache_control = b"public, max-age=%d" % max_age

    async def handle_GET(self, request: Request, params: Params) -> Raw:
        request.setHeader(b"ETag", self.etag)
        request.setHeader(b"Cache-Control", self.cache_control)
        if self.etag in (request.getHeader(b"If-None-Match") or b"").split(b", "):
            request.setResponseCode(304)
            return Raw(b"", self.content_type)
        return Raw(self.body, self.content_type)
