"""Request parameters and the limits of docs/api.md, checked before any work.

Parameters come from the query string, then a form-encoded or JSON object
body; repeated names keep their order.  Everything is decoded as strict
UTF-8 here, so handlers only ever see text.  Tests:
tests/test_http_conventions.py, tests/test_http_limits.py.
"""

import base64
import binascii
import re
from decimal import Decimal
from urllib.parse import parse_qsl

import ujson
from twisted.web.server import Request

from hiitrack.errors import BadRequest, TooLarge
from hiitrack.ids import canonical_json

__all__ = [
    "BODY_LIMIT",
    "Params",
    "check_event_name",
    "decode_base64",
    "decode_json",
    "decode_json_value",
    "decode_segment",
    "check_visitor_id",
    "decode_time",
]

BODY_LIMIT = 64 * 1024
NAME_LIMIT = 256
VALUE_LIMIT = 4 * 1024
VISITOR_LIMIT = 256
FUTURE_SECONDS = 60
"""How far past the server's clock a hit's time may be (clocks differ)."""
TIME = re.compile(r"[0-9]{1,20}(\.[0-9]*)?|\.[0-9]+")
"""Unix seconds, integer or decimal, with any number of decimals (the ms are kept)."""
GROUPED = frozenset({"event"})
"""JSON parameters whose list may hold lists (a saved funnel's any-of steps); elsewhere that is 400."""
DEPTH_LIMIT = 32
"""Nesting of lists and objects in a property value: deeper ones would exhaust recursion later."""


def decode_segment(segment: bytes, what: str) -> str:
    """A percent-decoded path segment as text, or 400."""
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(f"the {what} in the path is not valid UTF-8") from None


def check_event_name(name: str, what: str = "event") -> str:
    """Event, property and funnel names: 1-256 UTF-8 bytes."""
    if not 1 <= len(name.encode("utf-8", "surrogatepass")) <= NAME_LIMIT:
        raise BadRequest(f"{what} name must be 1-{NAME_LIMIT} UTF-8 bytes")
    if "\x00" in name:
        raise BadRequest(f"{what} name must not contain NUL")
    return name


def check_visitor_id(visitor_id: str) -> str:
    if not 1 <= len(visitor_id) <= VISITOR_LIMIT or "\x00" in visitor_id:
        raise BadRequest(f"visitor_id must be 1-{VISITOR_LIMIT} characters, without NUL")
    return visitor_id


def decode_time(text: str, now: float) -> int:
    """A hit's ``time``, Unix seconds with up to ms kept, as Unix ms; 400 unless 0 <= time <= now + 60 s."""
    if not TIME.fullmatch(text):
        raise BadRequest("time must be a non-negative number of Unix seconds")
    if Decimal(text) > Decimal(repr(now)) + FUTURE_SECONDS:
        raise BadRequest(f"time must be no later than the server's clock + {FUTURE_SECONDS} seconds")
    # From the digits: Decimal arithmetic rounds to 28 of them, and ...001999 (30 digits) ms would be ...002.
    whole, _, fraction = text.partition(".")
    return int(whole or "0") * 1000 + int(fraction[:3].ljust(3, "0"))


def decode_base64(text: str, what: str) -> bytes:
    """Standard or URL-safe base64, padding optional."""
    cleaned = text.strip().replace("-", "+").replace("_", "/").replace(" ", "+")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def decode_json(data: bytes, what: str) -> object:
    try:
        document = ujson.loads(data.decode("utf-8"))
        # JSON can spell lone surrogates ("\ud800") that UTF-8 cannot carry;
        # refuse them here rather than fail later while storing a name.
        ujson.dumps(document, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, OverflowError):
        raise BadRequest(f"{what} is not valid JSON") from None
    return document


def _depth(value: object) -> int:
    """How deeply lists and objects nest in a decoded JSON value (a scalar is 0), without recursion."""
    deepest, level = 0, [(value, 0)]
    while level:
        item, depth = level.pop()
        if isinstance(item, (list, dict)):
            depth += 1
            deepest = max(deepest, depth)
            level.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def decode_json_value(value: object) -> object:
    """Check a property value: JSON-encodable, finite, nested at most 32 deep, at most 4 KiB as JSON."""
    if _depth(value) > DEPTH_LIMIT:
        raise BadRequest(f"property value nests lists and objects more than {DEPTH_LIMIT} deep")
    try:
        text = canonical_json(value)
    except (ValueError, TypeError, RecursionError):
        raise BadRequest("property value is not a JSON value") from None
    if len(text.encode("utf-8")) > VALUE_LIMIT:
        raise BadRequest(f"property value is over {VALUE_LIMIT} bytes as JSON")
    return value


Value = str | tuple[str, ...]
"""A parameter's value: text, or (in a JSON body only) a list of texts given as one item of a list."""


class Params:
    def __init__(self, pairs: list[tuple[str, Value]]) -> None:
        self._pairs = pairs

    @classmethod
    def from_request(cls, request: Request) -> "Params":
        query = request.uri.partition(b"?")[2]
        if len(query) > BODY_LIMIT:
            raise TooLarge(f"query string is over {BODY_LIMIT} bytes")
        if getattr(request, "body_too_large", False):
            raise TooLarge(f"request body is over {BODY_LIMIT} bytes")
        body = b""
        if request.content is not None:  # None only before the headers end or after the request is done
            request.content.seek(0)
            body = request.content.read(BODY_LIMIT + 1)
        if len(body) > BODY_LIMIT:
            raise TooLarge(f"request body is over {BODY_LIMIT} bytes")
        pairs = _form_pairs(query, "query string")
        if body:
            content_type = (request.getHeader(b"Content-Type") or b"").split(b";")[0].strip().lower()
            if content_type == b"application/x-www-form-urlencoded":
                pairs += _form_pairs(body, "form body")
            elif content_type == b"application/json":
                pairs += _json_pairs(body)
            else:
                raise BadRequest("send parameters as application/x-www-form-urlencoded or an application/json object")
        return cls(pairs)

    @classmethod
    def salvaged(cls, target: bytes) -> "Params":
        """The ``request_id`` of a request whose parameters were refused (too large, badly encoded, a
        body of another type), taken from its request target's query string alone, for its error
        answer to echo."""
        query = target.partition(b"?")[2]
        fields = [field for field in query.split(b"&") if field.startswith(b"request_id=")][:1]
        try:
            return cls(_form_pairs(b"&".join(fields), "query string"))
        except BadRequest:
            return cls([])

    def get(self, name: str) -> str | None:
        """The first value of a parameter."""
        for key, value in self._pairs:
            if key == name:
                return _text(key, value)
        return None

    def integer(self, name: str, default: int | None, lowest: int, highest: int) -> int:
        """A whole number from `lowest` to `highest`, `default` when the parameter is absent (None:
        it is required); 400 for anything else, an empty value included (int() of thousands of
        digits would be a 500)."""
        text = self.get(name)
        if text is None and default is not None:
            return default
        text = self.require(name)
        if not (
            text.isascii() and text.isdigit() and len(text) <= len(str(highest)) and lowest <= int(text) <= highest
        ):
            raise BadRequest(f"{name} must be an integer from {lowest} to {highest}")
        return int(text)

    def require(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise BadRequest(f"missing parameter {name}")
        return value

    def all(self, name: str) -> list[str]:
        return [_text(key, value) for key, value in self._pairs if key == name]

    def groups(self, name: str) -> list[tuple[str, ...]]:
        """Every value of a parameter as a group of texts: a plain value is a group of one."""
        return [value if isinstance(value, tuple) else (value,) for key, value in self._pairs if key == name]

    def without(self, name: str) -> "Params":
        return Params([(key, value) for key, value in self._pairs if key != name])


def _text(key: str, value: Value) -> str:
    if isinstance(value, tuple):
        raise BadRequest(f"parameter {key} must be a string, a number or a list of them")
    return value


def _form_pairs(data: bytes, where: str) -> list[tuple[str, Value]]:
    """The pairs of a query string or form body, as `parse_qsl` with blank values kept reads them."""
    try:
        text = data.decode("ascii")
        if "%" in text or "+" in text:
            return list(parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(f"the {where} is not valid percent-encoded UTF-8") from None
    # Nothing to decode, as in most hits: parse_qsl's work per pair cost 3 % of the reactor
    # thread under event load.
    return [(name, value) for name, _, value in (field.partition("=") for field in text.split("&") if field)]


def _json_text(key: str, item: object) -> str:
    if isinstance(item, (dict, list)) or item is None:
        raise BadRequest(f"parameter {key} must be a string, a number or a list of them")
    return item if isinstance(item, str) else ujson.dumps(item)


def _json_pairs(body: bytes) -> list[tuple[str, Value]]:
    """A JSON object's parameters; in a `GROUPED` list, an item that is a list is kept as a group (see `groups`)."""
    document = decode_json(body, "the JSON body")
    if not isinstance(document, dict):
        raise BadRequest("a JSON body must be an object")
    pairs: list[tuple[str, Value]] = []
    for key, value in document.items():
        for item in value if isinstance(value, list) else [value]:
            if key in GROUPED and isinstance(item, list) and isinstance(value, list):
                pairs.append((key, tuple(_json_text(key, inner) for inner in item)))
            else:
                pairs.append((key, _json_text(key, item)))
    return pairs
