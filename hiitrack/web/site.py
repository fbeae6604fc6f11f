"""The HTTP site: the resource tree behind a channel that enforces the limits.

Twisted reads a request line of at most 16 KiB and a body of any size by
default.  docs/api.md allows a 64 KiB query string and a 64 KiB body and answers
413 beyond them, so the channel accepts longer lines (and answers 413 to
longer still), and the request stops keeping a body once it is over the
limit instead of buffering it whole: it answers 413 at once and closes the
connection, without waiting for the rest of the body.  Tests: tests/test_http_limits.py.
"""

import io

from twisted.web.http import HTTPChannel
from twisted.web.server import Request, Site

from hiitrack.app import HiiTrack
from hiitrack.web.params import BODY_LIMIT
from hiitrack.web.tree import Root

__all__ = ["make_site"]


def _refusal(message: str) -> bytes:
    """A whole 413 answer, written straight to the connection before closing it."""
    body = b'{"error":"' + message.encode() + b'"}'
    return (
        b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\n"
        b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )


LINE_TOO_LONG = _refusal("request line or header too long")
BODY_TOO_LARGE = _refusal(f"request body is over {BODY_LIMIT} bytes")


def _hang_up(channel: HTTPChannel, refusal: bytes) -> None:
    """Write a whole refusal straight to the connection and close it."""
    transport = channel.transport
    if transport is not None:  # None only before the connection is made
        transport.write(refusal)
        transport.loseConnection()


class ApiRequest(Request):
    body_too_large = False
    _received = 0

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
        """Answer 413 now and hang up, rather than read a body we will not use."""
        self.body_too_large = True
        self.content = io.BytesIO()
        _hang_up(self.channel, BODY_TOO_LARGE)


class ApiChannel(HTTPChannel):
    # Room for a 64 KiB query string plus the rest of the request line.
    MAX_LENGTH = BODY_LIMIT + 8 * 1024
    totalHeadersSize = BODY_LIMIT + 32 * 1024

    def lineLengthExceeded(self, line: bytes) -> None:
        _hang_up(self, LINE_TOO_LONG)


def make_site(app: HiiTrack, idle_timeout: float = 60) -> Site:
    # hiitrack.web.params reads bodies itself: Twisted's own form parsing
    # would answer a malformed multipart body with a bare 400, and costs a
    # Content-Type parse through the email package on every POST.
    site = Site(Root(app), requestFactory=ApiRequest, timeout=idle_timeout, parsePOSTFormSubmission=False)
    # Twisted types a Site's protocol as the HTTP/2-negotiating wrapper it
    # builds by default, yet serves any HTTPChannel (as twisted.web.proxy's
    # own `f.protocol = Proxy` does): the stub is narrower than the API.
    site.protocol = ApiChannel  # type: ignore[method-assign,assignment]
    site.displayTracebacks = False
    return site
