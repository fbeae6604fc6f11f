"""The HTTP site: the resource tree behind a channel that enforces the limits.

Twisted reads a request line of at most 16 KiB and a body of any size by
default.  API.md allows a 64 KiB query string and a 64 KiB body and answers
413 beyond them, so the channel accepts longer lines (and answers 413 to
longer still), and the request stops keeping a body once it is over the
limit instead of buffering it whole.  Tests: tests/test_http_limits.py.
"""

import io

from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from hiitrack.app import HiiTrack
from hiitrack.web.params import BODY_LIMIT
from hiitrack.web.tree import Root

__all__ = ["make_site"]

TOO_LARGE = (
    b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
    b'Connection: close\r\nContent-Length: 41\r\n\r\n{"error":"request line or header too long"}'
)


class ApiRequest(Request):
    body_too_large = False
    _received = 0
    # hiitrack.web.params reads bodies itself; Twisted's own form parsing
    # would answer a malformed multipart body with a bare 400.
    _parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > BODY_LIMIT:
            self._refuse_body()
        else:
            super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        if self.body_too_large:
            return
        self._received += len(data)
        if self._received > BODY_LIMIT:
            self._refuse_body()
        else:
            super().handleContentChunk(data)

    def _refuse_body(self) -> None:
        self.body_too_large = True
        self.content = io.BytesIO()


class ApiChannel(HTTPChannel):
    # Room for a 64 KiB query string plus the rest of the request line.
    MAX_LENGTH = BODY_LIMIT + 8 * 1024
    totalHeadersSize = BODY_LIMIT + 32 * 1024

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.write(TOO_LARGE)
        self.transport.loseConnection()


def make_site(app: HiiTrack, idle_timeout: float = 60) -> Site:
    site = Site(Root(app), requestFactory=ApiRequest, timeout=idle_timeout)
    site.protocol = ApiChannel
    site.displayTracebacks = False
    return site
