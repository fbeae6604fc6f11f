"""Tracking hits that arrive whole in one read, answered without Twisted's request machinery.

Under load nearly every request is a hit whose request line, headers and
small body arrive in one read of the connection.  Twisted's `HTTPChannel`
takes such a request apart line by line, and its `Request` canonicalises and
checks every header through `Headers`, arms and cancels timers, and writes
its answer's head apart from its body: 27 % of the reactor thread under
event load, more than all of HiiTrack's counting (docs/performance.md,
"Session 37").  A `LeanRequest` is read out of such a read in one pass and
answers with one write.  It takes only what it can take whole
(`parse_whole`, and `ApiChannel` in hiitrack.web.site):

- one HTTP/1.1 request of at most `LEAN_BYTES`, alone in the read (nothing
  before or after it), on a connection with nothing else pending;
- to a path the site has already walked to a tracking resource (its route
  cache), with one of that resource's tracking methods, so that CORS,
  parameters, errors and the answer are the resource's own, as for any
  request;
- a body given by one ``Content-Length`` and whole in the read; no
  ``Transfer-Encoding``, ``Expect`` or ``Connection`` other than
  ``keep-alive``; only what Twisted itself accepts: a request target of
  printable ASCII, header names that are tokens, header values without
  NUL, CR or LF, no folded header line, at most as many headers.

Anything else goes to Twisted's channel unchanged, which answers (or
refuses) it as before.  The answer is the one Twisted writes for the same
request: the same status line, and the same headers in the same order.
Tests: tests/test_lean_requests.py.
"""

import io
import re
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure
from twisted.web.http import RESPONSES, HTTPChannel, datetimeToString
from twisted.web.server import version as SERVER_VERSION

from hiitrack.sending import sent_at_once

__all__ = ["LEAN_BYTES", "LeanRequest", "Parsed", "parse_whole"]

LEAN_BYTES = 16 * 1024
"""A hit is a few hundred bytes; anything larger is left to Twisted and its limits."""

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# As twisted.web.http._parseRequestLine takes a request target.
_TARGET = re.compile(rb"[\x21-\xb0]+")
_UNSAFE_VALUE = re.compile(rb"[\x00\r\n]")


class Parsed(NamedTuple):
    """One whole request, as `parse_whole` read it."""

    method: bytes
    target: bytes
    path: bytes
    headers: dict[bytes, list[bytes]]
    """By lower-case name, each name's values in the order they came."""
    body: bytes


def parse_whole(data: bytes) -> Parsed | None:
    """The request `data` is, if it is exactly one request of the kind this module takes."""
    if len(data) > LEAN_BYTES:
        return None
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].split(b"\r\n")
    parts = lines[0].split(b" ")
    if (
        len(parts) != 3
        or parts[2] != b"HTTP/1.1"
        or not _TOKEN.fullmatch(parts[0])
        or not _TARGET.fullmatch(parts[1])
        or len(lines) - 1 > HTTPChannel.maxHeaders
    ):
        return None
    headers: dict[bytes, list[bytes]] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or _UNSAFE_VALUE.search(value):
            return None
        headers.setdefault(name.lower(), []).append(value.strip(b" \t"))
    if b"transfer-encoding" in headers or b"expect" in headers:
        return None
    if any(value.lower() != b"keep-alive" for value in headers.get(b"connection", ())):
        return None
    body = data[end + 4 :]
    lengths = headers.get(b"content-length", [b"0"])
    if len(lengths) != 1 or not lengths[0].isdigit() or int(lengths[0]) != len(body):
        return None
    return Parsed(parts[0], parts[1], parts[1].partition(b"?")[0], headers, body)


class _RequestHeaders:
    """What the tracking resources read of a request's `twisted.web.http_headers.Headers`."""

    def __init__(self, by_name: dict[bytes, list[bytes]]) -> None:
        self._by_name = by_name

    def getRawHeaders(self, name: bytes, default: Any = None) -> Any:
        return self._by_name.get(name.lower(), default)

    def hasHeader(self, name: bytes) -> bool:
        return name.lower() in self._by_name


class _ResponseHeaders:
    """What the tracking resources set of an answer's `twisted.web.http_headers.Headers`, kept
    in the order in which names were first set (a name set again keeps its place, as there)."""

    def __init__(self) -> None:
        self._by_name: dict[bytes, tuple[bytes, list[bytes]]] = {}

    def hasHeader(self, name: bytes) -> bool:
        return name.lower() in self._by_name

    def setRawHeaders(self, name: bytes, values: list[bytes]) -> None:
        key = name.lower()
        kept = self._by_name.get(key)
        self._by_name[key] = (name if kept is None else kept[0], values)

    def lines(self) -> Iterable[bytes]:
        for name, values in self._by_name.values():
            for value in values:
                yield b"%s: %s\r\n" % (name, value)


_date = (0, b"")


def _http_date() -> bytes:
    """The ``Date`` header's value, made once a second."""
    global _date
    now = int(time.time())
    if _date[0] != now:
        _date = (now, datetimeToString(now))
    return _date[1]


class LeanRequest:
    """One whole tracking request: what a tracking resource uses of a `Request`, and its answer.

    `channel` is the `ApiChannel` it came on; `done` is called once it is answered.
    """

    clientproto = b"HTTP/1.1"
    code = 200
    code_message = RESPONSES[200]
    finished = 0
    sentLength = 0

    def __init__(self, channel: Any, parsed: Parsed, done: Callable[[], None]) -> None:
        self.channel = channel
        self.method, self.uri, self.path = parsed.method, parsed.target, parsed.path
        self.requestHeaders = _RequestHeaders(parsed.headers)
        self.responseHeaders = _ResponseHeaders()
        self.content = io.BytesIO(parsed.body)
        self.cookies: list[bytes] = []
        self._body: list[bytes] = []
        self._notifications: list[Deferred[None]] = []
        self._done = done
        self._disconnected = False
        # Set first, as twisted.web.server.Request.process sets them.
        self.setHeader(b"Server", SERVER_VERSION)
        self.setHeader(b"Date", _http_date())

    def getHeader(self, name: bytes) -> bytes | None:
        values = self.requestHeaders.getRawHeaders(name)
        return None if values is None else values[-1]

    def setHeader(self, name: bytes, value: bytes) -> None:
        self.responseHeaders.setRawHeaders(name, [value])

    def setResponseCode(self, code: int) -> None:
        self.code = code
        self.code_message = RESPONSES.get(code, b"Unknown Status")

    def isSecure(self) -> bool:
        return bool(self.channel.isSecure())

    def getClientAddress(self) -> Any:
        return self.channel.transport.getPeer()

    def notifyFinish(self) -> Deferred[None]:
        self._notifications.append(Deferred())
        return self._notifications[-1]

    def write(self, data: bytes) -> None:
        self._body.append(data)
        self.sentLength += len(data)

    def finish(self) -> None:
        """Send the answer in one write, log it, and let the connection read on."""
        if self.finished or self._disconnected:
            return
        self.finished = 1
        if self.cookies:
            self.responseHeaders.setRawHeaders(b"Set-Cookie", self.cookies)
        status = b"HTTP/1.1 %d %s\r\n" % (self.code, self.code_message)
        transport = self.channel.transport
        with sent_at_once(transport):
            transport.write(b"".join([status, *self.responseHeaders.lines(), b"\r\n", *self._body]))
        self.channel.site.log(self)
        self._notify(None)
        self._done()

    def connection_lost(self, reason: Failure) -> None:
        """The client went away before its answer: tell whoever waits for it."""
        self._disconnected = True
        self._notify(reason)

    def _notify(self, outcome: Failure | None) -> None:
        notifications, self._notifications = self._notifications, []
        for notification in notifications:
            if outcome is None:
                notification.callback(None)
            else:
                notification.errback(outcome)
