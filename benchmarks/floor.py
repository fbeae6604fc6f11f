"""The floor: a bare twisted.web server that parses tracking requests and stores nothing.

It parses what HiiTrack parses (parameters, visitor, event name, batch
message) with HiiTrack's own functions and writes no access log (issue 14
defines the floor so), so that its requests/s is what Twisted and Python
cost before HiiTrack does anything.  Run by the benchmark as
``python -m benchmarks.floor PORT LOGFILE``.

That floor is Twisted's default `Site`, the bare twisted.web of issue 14,
which also parses the Content-Type of every POST with a body through the
email package (`twisted.web.http.Request.requestReceived`, for its own form
parsing): the lean floor answers about 1.7 times as many requests.
HiiTrack parses bodies itself and turns that off (hiitrack/web/site.py).
``--lean`` turns it off here too: the floor of what HiiTrack's parsing
alone costs (benchmarks/floors.py compares the two).
Tests: tests/test_bench_smoke.py.
"""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from hiitrack.errors import ApiError
from hiitrack.web.batch import parse_message
from hiitrack.web.params import Params, check_event_name, decode_segment
from hiitrack.web.visitor import visitor_of

__all__ = ["Floor", "QuietSite", "floor_site", "serve_floor"]


class Floor(Resource):
    """Answers like HiiTrack's tracking routes after parsing; ``GET /`` is wrk's idle request."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"service":"floor"}'

    def render_POST(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"application/json")
        request.setHeader(b"X-Content-Type-Options", b"nosniff")
        try:
            params = Params.from_request(request)
            segments = request.postpath or []
            visitor = visitor_of(request, params, segments[0].decode(), segments[1].decode())
            if segments[2:3] == [b"batch"]:
                parse_message(params.require("message"))
                return b'{"visitor_id":"' + visitor.encode() + b'"}'
            check_event_name(decode_segment(segments[3], "event name"))
            return b"{}"
        except (ApiError, IndexError):
            request.setResponseCode(400)
            return b'{"error":"bad request"}'


class QuietSite(Site):
    """A Site without its access log: Twisted's has no switch for it."""

    def log(self, request: object) -> None:
        pass


def floor_site(lean: bool = False) -> QuietSite:
    """The floor's site; `lean`: without Twisted's form parsing."""
    site = QuietSite(Floor(), parsePOSTFormSubmission=not lean)
    site.displayTracebacks = False
    return site


def serve_floor(port: int, log: str, lean: bool = False) -> None:
    """Listen on 127.0.0.1:port until stopped, logging errors (never requests) to the file `log`."""
    globalLogBeginner.beginLoggingTo([textFileLogObserver(open(log, "a"))], redirectStandardIO=False)
    site = floor_site(lean)
    # listenTCP raises at once if the port is taken, so the process ends and the bench sees it.
    # (Twisted's annotations do not count a Site as the ServerFactory that it is.)
    reactor.listenTCP(port, site, interface="127.0.0.1")  # type: ignore[arg-type]
    reactor.run()


if __name__ == "__main__":
    serve_floor(int(sys.argv[1]), sys.argv[2], lean=sys.argv[3:] == ["--lean"])
