"""Stable identifiers of events, properties and property values.

An id is a hash of a name (or of a value's canonical JSON), so every process
and every store derives the same id from the same name without asking anyone.
On the wire ids are URL-safe base64 without padding.  Tests: tests/test_ids.py.
"""

import base64
import binascii
import functools
import hashlib
import json
import math

__all__ = [
    "ID_SIZE",
    "InvalidId",
    "canonical_json",
    "decode_id",
    "encode_id",
    "event_id",
    "property_id",
    "value_id",
]

ID_SIZE = 16


class InvalidId(ValueError):
    """A wire id that is not URL-safe base64 of the expected length."""


def _digest(data: str) -> bytes:
    return hashlib.md5(data.encode("utf-8"), usedforsecurity=False).digest()


@functools.lru_cache(maxsize=4096)
def event_id(name: str) -> bytes:
    """Cached (a name is at most 256 bytes): every hit derives the ids of the same few names again."""
    return _digest(name)


@functools.lru_cache(maxsize=4096)
def property_id(name: str) -> bytes:
    """Cached, as `event_id` is."""
    return _digest(name)


def canonical_json(value: object) -> str:
    """The one JSON text of a value: sorted keys, no spaces, UTF-8 kept, a number by what it is worth.

    JSON has one kind of number: 1, 1.0 and 1e0 are the same value (a
    browser's JSON.stringify cannot even tell them apart), so an integral
    float is written as the integer it equals.  Raises ValueError for
    values JSON cannot carry (NaN, infinities).
    """
    return json.dumps(
        value if type(value) is str else _numbers_by_value(value),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


def _numbers_by_value(value: object) -> object:
    if type(value) is float:
        return int(value) if value.is_integer() else value
    if type(value) is list:
        return [_numbers_by_value(item) for item in value]
    if type(value) is dict:
        return {key: _numbers_by_value(item) for key, item in value.items()}
    return value


def value_id(prop_id: bytes, value: object) -> bytes:
    """The property's id followed by the hash of the value's canonical JSON."""
    return prop_id + _digest(canonical_json(value))


@functools.lru_cache(maxsize=65536)
def encode_id(raw: bytes) -> str:
    """The wire form of an id; cached, as a report encodes the same few ids thousands of times."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_id(text: str, size: int = ID_SIZE) -> bytes:
    """Decode a wire id of `size` bytes, refusing anything else."""
    if len(text) != math.ceil(size * 4 / 3) or not text.isascii():
        raise InvalidId(f"not a valid id: {text!r}")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidId(f"not a valid id: {text!r}") from None
    if len(raw) != size or encode_id(raw) != text:
        raise InvalidId(f"not a valid id: {text!r}")
    return raw
