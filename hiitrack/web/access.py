"""Who may do what: Basic credentials, access keys, and the visitor of a hit.

Reports and account changes need the user's password (or, for the GET
routes of one bucket, its access key).  A browser attaches a cached Basic
login to any request, even one a page on another site makes it send, so an
authenticated request that changes something must come from the server's
own origin: its ``Origin`` (or, lacking it, ``Referer``) must name the host
the request was sent to; a request with neither (curl, a back end) is
allowed.  Secrets are read from the body only, never from the query string
that access logs keep.  Tracking routes are open: their only identity is the
visitor (hiitrack.web.visitor).  Tests: tests/test_http_auth.py,
tests/test_csrf_browser.py.
"""

import base64
import binascii
import ipaddress
from urllib.parse import parse_qsl, urlsplit

from twisted.web.server import Request

from hiitrack.accounts import Access
from hiitrack.app import HiiTrack
from hiitrack.errors import BadRequest, Forbidden, NotFound, TooManyRequests, Unauthorized
from hiitrack.web.params import Params

__all__ = ["authorize", "client_address", "credentials", "existing_bucket", "secret"]

READ_METHODS = (b"GET", b"HEAD")
DEFAULT_PORTS = {"http": 80, "https": 443}


def credentials(request: Request) -> tuple[str, str]:
    """The (login, password) of a request's Basic ``Authorization``, or 401."""
    scheme, _, encoded = (request.getHeader(b"Authorization") or b"").partition(b" ")
    if scheme.lower() != b"basic":
        raise Unauthorized("this needs HTTP Basic credentials")
    try:
        login, colon, password = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("malformed Basic credentials") from None
    if not colon:
        raise Unauthorized("malformed Basic credentials")
    return login, password


async def authorize(app: HiiTrack, request: Request, user: str, bucket: str | None = None) -> Access:
    """The caller's access to /user[/bucket]; an access key only reads its bucket.

    A change must come from the server's own origin (see the module's
    docstring); a client that guessed too many passwords is answered 429
    with ``Retry-After``.
    """
    if request.method not in READ_METHODS:
        _refuse_other_origins(request)
    login, password = credentials(request)
    try:
        access = await app.accounts.authenticate(user, bucket, login, password, client_address(request))
    except TooManyRequests as error:
        request.setHeader(b"Retry-After", str(error.extra["retry_after"]).encode())
        raise
    if access.read_only and request.method not in READ_METHODS:
        raise Unauthorized("an access key can only read its bucket")
    return access


def _refuse_other_origins(request: Request) -> None:
    """403 for a request a page of another origin made the browser send."""
    origin = request.getHeader(b"Origin") or request.getHeader(b"Referer")
    if origin is None:
        return
    own = _host_of(f"{_scheme(request)}://{(request.getHeader(b'Host') or b'').decode('latin-1')}")
    if own is None or _host_of(origin.decode("latin-1")) != own:
        raise Forbidden("a change to an account must come from this server's own pages, not another site's")


def _scheme(request: Request) -> str:
    return "https" if request.getHeader(b"X-Forwarded-Proto") == b"https" or request.isSecure() else "http"


def _host_of(url: str) -> str | None:
    """``host[:port]`` of an origin or a URL, the port left out when it is the scheme's default."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port in (None, DEFAULT_PORTS[parts.scheme]) else f"{host}:{port}"


def client_address(request: Request) -> str:
    """The client's address; behind a proxy on this machine, the one it saw.

    nginx (nginx.conf.example) appends the peer it saw to
    ``X-Forwarded-For``; only the last entry is its own, and only a proxy on
    a loopback address is trusted to set it.
    """
    peer = getattr(request.getClientAddress(), "host", "") or ""
    forwarded = request.getHeader(b"X-Forwarded-For")
    if forwarded and _is_loopback(peer):
        return forwarded.decode("latin-1").split(",")[-1].strip() or peer
    return peer


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def secret(request: Request, params: Params, name: str) -> str | None:
    """A secret parameter, taken from the body only: 400 if the query string has it."""
    query = request.uri.partition(b"?")[2].decode("ascii", "replace")
    if any(key == name for key, _ in parse_qsl(query, keep_blank_values=True)):
        raise BadRequest(f"send {name} in the request body, never in the URL (URLs end up in logs)")
    return params.get(name)


async def existing_bucket(app: HiiTrack, user: str, bucket: str) -> dict:
    record = await app.accounts.bucket(user, bucket)
    if record is None:
        raise NotFound(f"no bucket {bucket}")
    return record
