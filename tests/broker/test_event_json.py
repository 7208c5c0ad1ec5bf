"""Batch parsing and compact encoding: strictness, exact big integers, bounds."""

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InvalidRequestError, UnprocessableError
from broker.event_json import encode, encode_all, parse_batch


@pytest.mark.parametrize("body", [
    b"", b"{}", b"[1]", b'[{"a":1}, 2]', b"[NaN]", b'[{"a": Infinity}]', b'[{"a":1},]', b'[{"a":1}] x',
    b'[{"a":"\xff"}]', b'[{"a":"\\ud800"}]', b"[" * 100_000 + b"]" * 100_000, b'[{"a":1',
])
def test_event_json_rejects_bad_batches_with_400(body):
    with pytest.raises(InvalidRequestError, match="Error occurred when parsing event"):
        parse_batch(body)


def test_event_json_empty_array_is_an_empty_batch():
    assert parse_batch(b"[]") == []


@pytest.mark.parametrize("number", [2**64, 2**64 + 1, -(2**63) - 1, 10**40, -(10**19) - 7])
def test_event_json_integers_beyond_64_bits_round_trip_exactly(number):
    body = b'[{"n": %d, "s": "x"}]' % number
    events = parse_batch(body)
    assert events[0]["n"] == number
    assert encode(events[0]) == b'{"n":%d,"s":"x"}' % number


def test_event_json_encoding_is_compact_and_keeps_field_order():
    events = parse_batch(b'[ { "z" : 1 ,\n "a" : [ 1 , 2 ] , "s" : "a b" } ]')
    assert encode(events[0]) == b'{"z":1,"a":[1,2],"s":"a b"}'


def test_event_json_deep_but_parseable_events_encode_or_fail_clearly():
    deep = {"a": 1}
    for _ in range(600):
        deep = {"x": deep}
    assert orjson.loads(encode(deep)) == deep
    deeper = 1
    for _ in range(1020):
        deeper = [deeper]
    with pytest.raises(ValueError, match="nested too deeply"):
        encode(deeper)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20)


@given(st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=5), max_size=5))
def test_event_json_parse_of_encoded_events_is_identity(events):
    body = b"[" + b",".join(encode(e) for e in events) + b"]"
    assert parse_batch(body) == events


@pytest.mark.parametrize("digits", [309, 400, 4300])
def test_event_json_integers_beyond_a_double_are_kept_exactly(digits):
    number = int("9" * digits)
    events = parse_batch(b'[{"n": %d}]' % number)
    assert events[0]["n"] == number and encode(events[0]) == b'{"n":%d}' % number


def test_event_json_integers_beyond_the_conversion_limit_are_422():
    with pytest.raises(UnprocessableError, match="out of range"):
        parse_batch(b'[{"n": %s}]' % (b"9" * 5000))


@pytest.mark.parametrize("body", [b'[{"n": 1e400, "m": 12345678901234567890}]',
                                  b'[{"s": "\\ud800", "m": 12345678901234567890}]',
                                  b'[{"n": NaN, "m": 12345678901234567890}]'])
def test_event_json_exact_path_is_as_strict_as_orjson(body):
    with pytest.raises(InvalidRequestError):
        parse_batch(body)


@given(st.lists(st.dictionaries(st.text(max_size=5), json_values, max_size=5), max_size=5))
def test_event_json_encode_all_equals_one_by_one(events):
    assert encode_all(events) == [encode(event) for event in events]


def test_event_json_encode_all_refuses_a_batch_with_a_too_deep_event():
    deeper = 1
    for _ in range(1020):
        deeper = [deeper]
    with pytest.raises(ValueError, match="nested too deeply"):
        encode_all([{"a": 1}, {"d": deeper}])
