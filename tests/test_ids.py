"""hiitrack.ids: ids are the MD5 of names and canonical JSON; wire ids round-trip exactly.

Expected ids are worked out here with hashlib and base64 directly, from the
definitions in docs/api.md.
"""

import base64
import hashlib
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hiitrack.ids import (
    ID_SIZE,
    InvalidId,
    canonical_json,
    decode_id,
    encode_id,
    event_id,
    property_id,
    value_id,
)

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=10,
)


@given(name=st.text())
def test_event_and_property_ids_are_the_md5_of_the_utf8_name(name):
    digest = hashlib.md5(name.encode("utf-8")).digest()
    assert event_id(name) == property_id(name) == digest
    assert len(digest) == ID_SIZE


def test_canonical_json_sorts_keys_drops_spaces_and_keeps_unicode():
    assert canonical_json({"b": [1, 2.5, None], "a": "ø"}) == '{"a":"ø","b":[1,2.5,null]}'
    assert canonical_json({"z": 1, "a": {"y": 2, "b": 3}}) == canonical_json({"a": {"b": 3, "y": 2}, "z": 1})


@pytest.mark.parametrize(
    "same",
    [
        [1, 1.0, 1e0],
        [100, 1e2, 100.0],
        [0, -0, 0.0, -0.0],
        [[1, {"a": 2}], [1.0, {"a": 2.0}]],
        [2**60, float(2**60)],
        [int(1e300), 1e300],
    ],
)
def test_a_number_is_written_by_what_it_is_worth(same):
    """JSON has one number type: 1 and 1.0 are one value, with one id (a browser sends both as 1)."""
    assert len({canonical_json(value) for value in same}) == 1
    assert len({value_id(property_id("n"), value) for value in same}) == 1


def test_numbers_of_different_worth_and_other_types_stay_apart():
    assert [canonical_json(value) for value in (1.5, 1.1, 1e-7, 2**53 + 1, -3.0, True, "1")] == [
        "1.5",
        "1.1",
        "1e-07",
        "9007199254740993",
        "-3",
        "true",
        '"1"',
    ]


@given(value=JSON)
def test_canonical_json_read_back_is_written_the_same(value):
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, [1, math.nan]])
def test_canonical_json_refuses_what_json_cannot_carry(value):
    with pytest.raises(ValueError):
        canonical_json(value)


@given(name=st.text(), value=JSON)
def test_value_id_is_the_property_id_then_the_md5_of_the_canonical_json(name, value):
    text = canonical_json(value)
    assert (
        value_id(property_id(name), value) == hashlib.md5(name.encode()).digest() + hashlib.md5(text.encode()).digest()
    )


def test_equal_values_share_an_id_and_different_ones_do_not():
    prop = property_id("plan")
    assert value_id(prop, {"a": 1, "b": 2}) == value_id(prop, {"b": 2, "a": 1})
    assert len({value_id(prop, value) for value in [1, "1", [1], {"1": 1}, True, None]}) == 6
    assert value_id(prop, "pro") != value_id(property_id("tier"), "pro")


@given(raw=st.binary(min_size=ID_SIZE, max_size=ID_SIZE) | st.binary(min_size=2 * ID_SIZE, max_size=2 * ID_SIZE))
def test_wire_ids_are_unpadded_urlsafe_base64_and_round_trip(raw):
    text = encode_id(raw)
    assert text == base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert decode_id(text, len(raw)) == raw


@pytest.mark.parametrize(
    "text, size",
    [
        ("AAAA", ID_SIZE),  # too short
        ("A" * 23, ID_SIZE),  # too long
        ("A" * 22, 2 * ID_SIZE),  # an event id where a value id belongs
        ("!" * 22, ID_SIZE),  # not base64
        ("A" * 21 + "B", ID_SIZE),  # decodes, but its spare bits are set: not the encoding of any id
        ("+" * 21 + "A", ID_SIZE),  # standard base64, not the URL-safe alphabet
        ("A" * 21 + "é", ID_SIZE),  # not ASCII
    ],
)
def test_decode_id_refuses_anything_but_the_one_wire_form(text, size):
    with pytest.raises(InvalidId):
        decode_id(text, size)


def test_invalid_id_is_a_value_error():
    assert issubclass(InvalidId, ValueError)
