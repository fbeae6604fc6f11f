"""The HTTP site: the resource tree behind a channel that enforces the limits.

Twisted reads a request line of at most 16 KiB and a body of any size by
default.  docs/api.md allows a 64 KiB query string and a 64 KiB body and answers
413 beyond them, so the channel accepts longer lines (and answers 413 to
longer still), and the request stops keeping a body once it is over the
limit instead of buffering it whole: it answers 413 at once (never after a
``100 Continue``) and closes the connection, without waiting for the rest
of the body.

The idle timeout restarts with every byte, so a client trickling one byte at
a time (slowloris) would hold its connection forever.  A request's headers
therefore have a deadline from their first byte, and its body another from
the end of the headers; past either the answer is 408 and the connection is
closed.

The access log leaves personal data out: it names the method, the path
without its query string (visitor ids, messages, passwords from careless
clients) and the status, never the client's address, referrer or user
agent.  It goes to twistd's log (the default), to a file of its own, or
nowhere (behind nginx, whose log has the same lines).  Either way the lines
are written once a second and at stop: in twistd's log, a second's lines are
one log event, each line after the first on a line of its own indented by a
tab (an event per request cost a formatted timestamp and a flushed write
each, on 13 % of the reactor thread's samples under load); the file is written
with a buffer, flushed every second.
The site keeps the tracking resources (``/{user}/{bucket}/event/{name}``,
``/property/{name}``, ``/batch``) it walked to, by path, in a bounded LRU: such a
resource depends on its path alone, and checks every request's credentials
and parameters itself, so a hit's path is walked and its segments checked
once, not at every hit.  A hit to such a path that arrives whole in one read
is answered as a `LeanRequest` (hiitrack.web.lean), without Twisted's
request machinery; everything else goes through Twisted's channel.
Tests: tests/test_http_limits.py, tests/test_http_deadlines.py,
tests/test_access_log.py, tests/test_route_cache.py, tests/test_lean_requests.py.
"""

import io
import re
import time
from collections.abc import Callable
from functools import lru_cache, partial
from typing import TextIO, cast

import ujson
from twisted.internet.interfaces import IAddress, IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from hiitrack.app import HiiTrack
from hiitrack.caching import LRU
from hiitrack.web.defaults import ACCESS_LOG_OFF, ACCESS_LOG_TWISTD, BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT
from hiitrack.web.lean import LeanRequest, parse_whole
from hiitrack.web.params import BODY_LIMIT, Params
from hiitrack.web.render import ApiResource
from hiitrack.web.tree import Root

__all__ = ["access_log_line", "make_site"]

ACCESS_LOG_FLUSH_SECONDS = 1.0
ACCESS_LOG_BUFFER = 64 * 1024
REQUEST_LINES = 4096
"""Access log request lines kept, quoted, by method, path and protocol."""
ROUTE_CACHE = 4096
"""Tracking resources kept by path (a few hundred bytes each)."""

_access_log = Logger(namespace="hiitrack.access")
_log = Logger()


def _refusal(status: bytes, message: str, request_id: str | None = None) -> bytes:
    """A whole answer, written straight to the connection before closing it."""
    error = {"error": message} if request_id is None else {"error": message, "request_id": request_id}
    body = ujson.dumps(error, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8")
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
        b"X-Content-Type-Options: nosniff\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (status, len(body), body)
    )


LINE_TOO_LONG = _refusal(b"413 Content Too Large", "request line or header too long")
HEADERS_TOO_SLOW = _refusal(b"408 Request Timeout", "the request's headers took too long")
BODY_TOO_SLOW = _refusal(b"408 Request Timeout", "the request's body took too long")
INTERNAL_ERROR = _refusal(b"500 Internal Server Error", "internal server error")
MALFORMED = _refusal(b"400 Bad Request", "not a well-formed HTTP/1.x request")


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
            # The refusal answers the client's Expect: 100-continue; the
            # channel must not invite the body after it.
            self.requestHeaders.removeHeader(b"Expect")
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
        # The request is not complete, so its target is still the channel's (Twisted's `_path`).
        request_id = Params.salvaged(getattr(self.channel, "_path", b"")).get("request_id")
        message = f"request body is over {BODY_LIMIT} bytes"
        _hang_up(self.channel, _refusal(b"413 Content Too Large", message, request_id))


class ApiChannel(HTTPChannel):
    # Room for a 64 KiB query string plus the rest of the request line.
    MAX_LENGTH = BODY_LIMIT + 8 * 1024
    totalHeadersSize = BODY_LIMIT + 32 * 1024
    site: "ApiSite"
    # The part of a request being received: its refusal and the monotonic
    # time it is due by; None between requests.
    _awaited: tuple[bytes, float] | None = None
    # The timer of `_awaited`, armed only once a read ends with that part
    # still incomplete: most requests arrive whole in one read, and a timer
    # each for their headers and body cost 3 % of the reactor thread.
    _deadline: IDelayedCall | None = None
    _host: IAddress | None = None
    _lean: LeanRequest | None = None
    _secure: bool | None = None

    def __init__(self) -> None:
        super().__init__()
        # What arrived while a lean request was answered: it waits for the answer (pipelining).
        self._held: list[bytes] = []

    def getHost(self) -> IAddress:
        # Asked by every request (twisted.web.http.Request.__init__): one getsockname a connection.
        if self._host is None:
            self._host = super().getHost()
        return self._host

    def isSecure(self) -> bool:
        # Asked for every new visitor's cookie; an interface lookup each time otherwise.
        if self._secure is None:
            self._secure = super().isSecure()
        return self._secure

    def lineLengthExceeded(self, line: bytes) -> None:
        _hang_up(self, LINE_TOO_LONG)

    def _respondToBadRequestAndDisconnect(self) -> None:
        """A request Twisted cannot read (its request line, a header, its length): a JSON error as
        every other, where Twisted writes a bare status line."""
        _hang_up(self, MALFORMED)

    def dataReceived(self, data: bytes) -> None:
        if self._lean is not None:
            self._held.append(data)
            self._networkProducer.pauseProducing()
            return
        between_requests = self._awaited is None and not self._handlingRequest
        if between_requests and self._answer_lean(data):
            return
        # The first byte of a request starts its header deadline; bytes that
        # arrive while a request is being answered wait for it (pipelining).
        if between_requests:
            self._await(HEADERS_TOO_SLOW, self.site.header_timeout)
        super().dataReceived(data)
        if self._awaited is not None and self._deadline is None and self.transport is not None:
            refusal, due = self._awaited
            self._deadline = self.callLater(max(0.0, due - time.monotonic()), partial(self._deadline_passed, refusal))

    def _answer_lean(self, data: bytes) -> bool:
        """Answer `data` as a `LeanRequest` if it is one whole tracking request (hiitrack.web.lean)."""
        if self.requests or self._buffer or not self.line_mode or not self.persistent:
            return False  # Twisted's parser is in the middle of something
        parsed = parse_whole(data)
        if parsed is None:
            return False
        resource = self.site.tracking_route(parsed.path)
        if resource is None or parsed.method not in resource.tracking_methods:
            return False
        self.resetTimeout()
        self._lean = request = LeanRequest(self, parsed, self._lean_answered)
        try:
            # A LeanRequest has what a tracking resource uses of a Request.
            resource.render(cast(Request, request))
        except Exception:
            _log.failure("could not answer {uri}", uri=parsed.target)
            if not request.finished:
                _hang_up(self, INTERNAL_ERROR)
        return True

    def _lean_answered(self) -> None:
        self._lean = None
        held, self._held = b"".join(self._held), []
        if held:
            if not self._waitingForTransport:
                self._networkProducer.resumeProducing()
            self.dataReceived(held)

    def timeoutConnection(self) -> None:
        if self._lean is not None:
            # The idle timeout measures the client's silence, not a lean request's answer.
            self.resetTimeout()
            return
        super().timeoutConnection()

    def allHeadersReceived(self) -> None:
        self._await_nothing()
        super().allHeadersReceived()
        if self.length != 0:  # a body follows: its length, or None if chunked
            self._await(BODY_TOO_SLOW, self.site.body_timeout)

    def allContentReceived(self) -> None:
        self._await_nothing()
        super().allContentReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._await_nothing()
        if self._lean is not None:
            self._lean.connection_lost(reason)
        super().connectionLost(reason)

    def _await(self, refusal: bytes, seconds: float) -> None:
        """Await the next part of a request: answered with `refusal` unless it is in within `seconds`."""
        self._await_nothing()
        self._awaited = (refusal, time.monotonic() + seconds)

    def _await_nothing(self) -> None:
        """The part awaited arrived (or the connection is gone): no deadline runs."""
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        self._deadline = self._awaited = None

    def _deadline_passed(self, refusal: bytes) -> None:
        self._deadline = self._awaited = None
        if self.transport is not None:
            self.transport.write(refusal)
        # Closes, and aborts after abortTimeout if the client does not read.
        self.timeoutConnection()


_UNSAFE = re.compile(rb'[^\x21-\x7e]|["\\]')


def _quoted(text: bytes) -> str:
    """Log-safe text: bytes other than printable ASCII, quotes and backslashes as \\xNN."""
    if not _UNSAFE.search(text):
        return text.decode("ascii")  # nearly every request: no byte to escape
    return "".join(chr(byte) if 0x20 < byte < 0x7F and byte not in b'"\\' else f"\\x{byte:02x}" for byte in text)


@lru_cache(maxsize=REQUEST_LINES)
def _request_line(method: bytes, path: bytes, protocol: bytes) -> str:
    # Kept: most lines repeat one of a few paths, and quoting each part cost 1.5 % of the
    # reactor thread under event load.
    return " ".join(_quoted(part) for part in (method, path, protocol))


def access_log_line(timestamp: str, request: Request) -> str:
    """The Combined Log Format with the personal fields left blank ("-")."""
    request_line = _request_line(request.method, request.uri.partition(b"?")[0], request.clientproto)
    return f'"-" - - {timestamp} "{request_line}" {request.code} {request.sentLength or "-"} "-" "-"'


class ApiSite(Site):
    """The site with the deadlines of its requests (read by ApiChannel)."""

    # HTTP/1.1 only: the channel itself.  Twisted types a Site's protocol as
    # the HTTP/2-negotiating wrapper it builds by default, yet serves any
    # HTTPChannel (as twisted.web.proxy's own `f.protocol = Proxy` does): the
    # stub is narrower than the API.
    protocol = ApiChannel  # type: ignore[assignment]

    def __init__(
        self, app: HiiTrack, idle_timeout: float, header_timeout: float, body_timeout: float, access_log: str
    ) -> None:
        # hiitrack.web.params reads bodies itself: Twisted's own form parsing
        # would answer a malformed multipart body with a bare 400, and costs a
        # Content-Type parse through the email package on every POST.
        super().__init__(
            Root(app),
            requestFactory=ApiRequest,
            timeout=idle_timeout,
            logPath=None if access_log in (ACCESS_LOG_TWISTD, ACCESS_LOG_OFF) else access_log,
            logFormatter=access_log_line,
            parsePOSTFormSubmission=False,
        )
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.displayTracebacks = False
        self._logging = access_log != ACCESS_LOG_OFF
        self._to_twistd = access_log == ACCESS_LOG_TWISTD
        self._flushing: LoopingCall | None = None
        # twistd-log lines not logged yet.
        self._lines: list[str] = []
        self._routes: LRU[bytes, ApiResource] = LRU(ROUTE_CACHE)

    def tracking_route(self, path: bytes) -> ApiResource | None:
        """The tracking resource at `path`, if the route cache holds it."""
        return self._routes.get(path)

    def getResourceFor(self, request: Request) -> Resource:
        # The tree's walk, a resource made and a segment checked per level, cost 6 % of the
        # reactor thread under event load.  A kept resource is reached as the walk would reach it.
        path = request.path
        resource = self._routes.get(path)
        if resource is None:
            resource = super().getResourceFor(request)
            if isinstance(resource, ApiResource) and resource.tracking_methods:
                self._routes.put(path, resource)
            return resource
        # As Site.getResourceFor leaves a request (Twisted's stubs lack `sitepath`), and the walk
        # then: every segment walked.
        request.site = self
        request.sitepath = []  # type: ignore[attr-defined]
        request.prepath, request.postpath = request.postpath, []
        return resource

    def log(self, request: http.Request) -> None:
        if not self._logging:
            return
        if not self._to_twistd:
            super().log(request)
            return
        # As HTTPFactory.log formats it, with the date the factory updates each second.
        self._lines.append(self._logFormatter(self._logDateTime, request))

    def _log_lines(self) -> None:
        lines, self._lines = self._lines, []
        if lines:
            _access_log.info("{lines}", lines="\n".join(lines))

    def _flush_every_second(self, flush: Callable[[], object]) -> None:
        self._flushing = LoopingCall(flush)
        self._flushing.clock = self.reactor
        self._flushing.start(ACCESS_LOG_FLUSH_SECONDS, now=False)

    def startFactory(self) -> None:
        super().startFactory()
        if self._logging and self._to_twistd:
            self._flush_every_second(self._log_lines)

    def _openLogFile(self, path: str | bytes) -> TextIO:
        # Block-buffered: Twisted's default writes (a system call) for every line.
        opened = open(path, "a", buffering=ACCESS_LOG_BUFFER, newline="\n")
        self._flush_every_second(opened.flush)
        return opened

    def stopFactory(self) -> None:
        self._log_lines()
        if self._flushing is not None and self._flushing.running:
            self._flushing.stop()
        # Closing the file writes what its buffer holds.
        super().stopFactory()


def make_site(
    app: HiiTrack,
    idle_timeout: float = IDLE_TIMEOUT,
    header_timeout: float = HEADER_TIMEOUT,
    body_timeout: float = BODY_TIMEOUT,
    access_log: str = ACCESS_LOG_TWISTD,
) -> Site:
    """The site; `access_log` is ACCESS_LOG_TWISTD, ACCESS_LOG_OFF or a file's path."""
    return ApiSite(app, idle_timeout, header_timeout, body_timeout, access_log)
