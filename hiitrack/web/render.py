"""The one way every API resource answers: JSON, JSONP, errors.

`ApiResource.render` dispatches to ``async def handle_<METHOD>(request,
params)`` and answers 405 with ``Allow`` for verbs a resource lacks.  A
handler returns a dict (the JSON answer) or `Raw` bytes (the pixel).  Known
errors keep their status (hiitrack.errors); a store that cannot be reached is
503; anything else is logged and answered with a generic 500, never a
traceback.  A client that went away is only a log line.  `getChild` asks
`child` for the resource under a path segment and answers a refused segment
with an error resource instead of raising, as twisted.web.static does.

JSONP (``callback=``) wraps answers of the open tracking methods only: a
``<script>`` tag on any site sends the analyst's cached Basic login, so a
wrapped report or bucket overview (with its access key) would be readable
by every site.  Answers to a request with credentials are ``no-store``.

A batch asked with ``img=1`` (an ``<img>`` pixel) is answered with a 1×1 GIF
whatever happens, its status telling what became of the hit: an ``<img>``
shows a broken picture for anything else.  That holds for refusals before
the batch resource is reached too (a bad path segment, parameters that
cannot be read), where the query string alone says whether the pixel was
asked for.  Tests: tests/test_http_conventions.py, tests/test_http_tracking.py.
"""

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import ujson
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from hiitrack.errors import ApiError, BadRequest, NotAllowed, NotFound, Unauthorized
from hiitrack.metrics import METRICS
from hiitrack.sending import sent_at_once
from hiitrack.store import StoreUnavailable
from hiitrack.web.cors import apply_cors
from hiitrack.web.params import Params

__all__ = ["PIXEL", "ApiResource", "ErrorResource", "Raw", "route_of", "write_json"]

log = Logger()

CALLBACK = re.compile(r"[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*", re.ASCII)
CALLBACK_LIMIT = 128
RESERVED_WORDS = frozenset(
    "await break case catch class const continue debugger default delete do else enum export extends false"
    " finally for function if implements import in instanceof interface let new null package private"
    " protected public return static super switch this throw true try typeof var void while with yield".split()
)
"""Words a callback cannot start with: ``if(...)`` is no call."""
OTHER_ROUTE = "other"
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


@dataclass
class Raw:
    """A non-JSON answer, such as the tracking pixel."""

    body: bytes
    content_type: bytes


Handler = Callable[[Request, Params], Awaitable[dict | Raw]]


def write_json(
    request: Request, status: int, body: dict, params: Params | None = None, callback: str | None = None
) -> None:
    """Finish `request` with a JSON answer, or JSONP wrapped in a checked `callback`."""
    request_id = params.get("request_id") if params else None
    if request_id is not None:
        body = {**body, "request_id": request_id}
    text = ujson.dumps(body, ensure_ascii=False, escape_forward_slashes=False).encode("utf-8")
    request.setResponseCode(status)
    if callback is not None:
        request.setHeader(b"Content-Type", b"application/javascript")
        text = b"".join([callback.encode("ascii"), b"(", text, b");"])
    else:
        request.setHeader(b"Content-Type", b"application/json")
    _finish(request, text)


def _finish(request: Request, body: bytes) -> None:
    request.setHeader(b"X-Content-Type-Options", b"nosniff")
    request.setHeader(b"Content-Length", str(len(body)).encode())
    with sent_at_once(request.channel and request.channel.transport):
        if request.method != b"HEAD":
            request.write(body)
        request.finish()


def _error_body(request: Request, error: ApiError) -> dict:
    if isinstance(error, Unauthorized) and request.getHeader(b"X-Requested-With") != b"XMLHttpRequest":
        request.setHeader(b"WWW-Authenticate", f'Basic realm="{error.realm}"'.encode())
    return {"error": error.message, **error.extra}


def _checked_callback(params: Params, jsonp: bool) -> str | None:
    """The request's JSONP callback if it may have one; 400 if it may not."""
    callback = params.get("callback")
    if callback is None:
        return None
    if not jsonp:
        raise BadRequest("callback (JSONP) is only answered by the open tracking routes")
    if (
        len(callback) > CALLBACK_LIMIT
        or not CALLBACK.fullmatch(callback)
        or callback.partition(".")[0] in RESERVED_WORDS
    ):
        raise BadRequest("callback must be a plain JavaScript identifier path")
    return callback


def _asks_for_pixel(request: Request, params: Params | None) -> bool:
    """Whether `request` is a batch hit asking for the pixel: ``img=1`` among its parameters, or in
    its query string when its parameters could not be read (`params` None)."""
    if request.method not in (b"GET", b"POST") or not request.path.endswith(b"/batch"):
        return False
    if params is not None:
        return params.get("img") == "1"
    return b"img=1" in request.uri.partition(b"?")[2].split(b"&")


async def _answer(request: Request, handler: Handler, jsonp: bool) -> None:
    went_away = False

    def connection_lost(_: Failure) -> None:
        nonlocal went_away
        went_away = True

    # Fires with a failure if the connection closes before the answer is finished.
    request.notifyFinish().addErrback(connection_lost)
    params: Params | None = None
    callback = None
    try:
        params = Params.from_request(request)
        callback = _checked_callback(params, jsonp)
        result: dict | Raw = await handler(request, params)
        status = request.code
    except ApiError as error:
        status, result = error.status, _error_body(request, error)
    except StoreUnavailable as error:
        log.warn("store unavailable: {error}", error=error)
        status, result = 503, {"error": "storage unavailable, try again"}
    except Exception:
        log.failure("unexpected error answering {uri}", uri=request.uri)
        status, result = 500, {"error": "internal server error"}
    if request.finished or went_away:
        log.info("client went away before the answer to {uri}", uri=request.uri)
        return
    if _asks_for_pixel(request, params):
        # Never cached: each hit must reach the server.
        request.setHeader(b"Cache-Control", b"no-cache, no-store, must-revalidate")
        result = Raw(PIXEL, b"image/gif")
    if request.getHeader(b"Authorization") is not None and not request.responseHeaders.hasHeader(b"Cache-Control"):
        # Reports and the bucket overview (with its access key) are private.
        request.setHeader(b"Cache-Control", b"no-store")
    try:
        if isinstance(result, Raw):
            request.setResponseCode(status)
            request.setHeader(b"Content-Type", result.content_type)
            _finish(request, result.body)
        else:
            # Parameters that could not be read still have their request_id echoed, when it can be.
            write_json(request, status, result, params or Params.salvaged(request.uri), callback)
    except Exception:
        log.failure("could not write the answer to {uri}", uri=request.uri)
        if not request.finished:
            write_json(request, 500, {"error": "internal server error"})


def route_of(resource: object) -> str:
    """The route template a resource serves (a metrics label, never the raw path)."""
    return getattr(resource, "route", OTHER_ROUTE)


def render_async(request: Request, handler: Handler, jsonp: bool = False) -> object:
    """Run `handler` and answer with what it returns; `jsonp` allows ``callback``."""
    started, route = time.monotonic(), route_of(getattr(handler, "__self__", None))

    def observe(_: object) -> None:
        status = request.code if request.finished else 499  # 499: the client went away
        METRICS.observe(route, request.method, status, time.monotonic() - started)

    Deferred.fromCoroutine(_answer(request, handler, jsonp)).addBoth(observe)
    return NOT_DONE_YET


class ApiResource(Resource):
    """Base of every resource of the API: dispatch, 405, the render helper."""

    # The open tracking methods: they record hits without credentials, so
    # browsers on any origin may call them (hiitrack.web.cors) and JSONP is
    # allowed; a HEAD cannot stand for a GET among them, as it would record.
    tracking_methods: frozenset[bytes] = frozenset()
    # The path template this resource serves, for the request metrics.
    route = OTHER_ROUTE

    def render(self, request: Request) -> object:
        if self.tracking_methods and apply_cors(request, self.tracking_methods):
            return b""
        method = request.method.decode("ascii", "replace")
        if method == "HEAD" and b"GET" not in self.tracking_methods:
            method = "GET"  # the same answer without its body
        handler = getattr(self, f"handle_{method}", None)
        if handler is None:
            allowed = sorted(name[len("handle_") :] for name in dir(self) if name.startswith("handle_"))
            if not allowed:
                # A level with only children (``/event``) is not a route.
                return self._fail(request, NotFound("no such path"))
            if "GET" in allowed and b"GET" not in self.tracking_methods:
                allowed.append("HEAD")
            request.setHeader(b"Allow", ", ".join(sorted(allowed)).encode())
            return self._fail(request, NotAllowed(f"method {method} not allowed here"))
        return render_async(request, handler, jsonp=request.method in self.tracking_methods)

    def getChild(self, path: bytes, request: Request) -> Resource:
        """The child for a path segment, or an error resource answering why there is none."""
        try:
            return self.child(path, request)
        except ApiError as error:
            return ErrorResource(error)

    def child(self, path: bytes, request: Request) -> Resource:
        """Decode and check `path` and build the resource under it; raise ApiError to refuse it."""
        raise NotFound("no such path")

    def _fail(self, request: Request, error: ApiError) -> object:
        async def fail(request: Request, params: Params) -> dict:
            raise error

        return render_async(request, fail)


class ErrorResource(ApiResource):
    """Answers every method with one error (bad path segments, unknown paths)."""

    isLeaf = True

    def __init__(self, error: ApiError) -> None:
        super().__init__()
        self.error = error

    def render(self, request: Request) -> object:
        return self._fail(request, self.error)
