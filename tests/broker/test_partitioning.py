"""Partition choice against values Java and Nakadi compute.

The expected partitions and key strings were produced by running org.json
20180130 with Nakadi's StrictJsonParser, JsonPathAccess and hash rule on
the same events.
"""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import UnprocessableError
from broker.java_hash import VECTOR_MIN
from broker.partitioning import (
    MissingKeyFieldError,
    PartitioningError,
    _tokens,
    choose_partition,
    choose_partitions,
    hash_order,
    hash_partition,
    java_double,
    java_to_string,
    partition_keys,
)

INT_MIN = -(2**31)


def test_hash_partition_nakadi_vector():
    assert hash_partition(["sku=123", "price=512$"], 3) == "2"


def test_hash_partition_int_min_hash_uses_java_remainder():
    # Integer.MIN_VALUE % 3 == -2 in Java, abs -> 2
    assert hash_partition(["polygenelubricants"], 3) == "2"


def test_hash_partition_sum_overflows_like_java_int():
    # MIN_VALUE + MIN_VALUE wraps to 0
    assert hash_partition(["polygenelubricants", "polygenelubricants"], 3) == "0"
    assert hash_partition(["polygenelubricants", "polygenelubricants"], 7) == "0"


def test_hash_partition_indexes_ids_sorted_as_strings():
    assert hash_order(12) == ("0", "1", "10", "11", "2", "3", "4", "5", "6", "7", "8", "9")
    assert hash_partition(["key-0"], 12) == "10"  # index 2
    assert hash_partition(["key-1"], 12) == "11"
    assert hash_partition(["key-2"], 12) == "2"  # index 4
    assert hash_partition(["order-01"], 100) == "74"


def test_hash_partition_without_keys_fails():
    with pytest.raises(PartitioningError) as e:
        hash_partition([], 3)
    assert e.value.detail == "Cannot calculate hash value for partitioning: partition keys not set."


@given(st.lists(st.text(), min_size=1, max_size=4), st.integers(1, 300))
def test_hash_partition_is_a_valid_deterministic_id(keys, count):
    partition = hash_partition(keys, count)
    assert partition == hash_partition(list(keys), count)
    assert 0 <= int(partition) < count and str(int(partition)) == partition


@pytest.mark.parametrize("value, expected", [
    ("x", "x"),
    (123456789012, "123456789012"),
    (1.0, "1.0"),
    (None, "null"),
    (False, "false"),
    (True, "true"),
    ({"b": 1, "a": 2, "zz": [1.0, "</x"], "n": None, "t": True},
     '{"zz":[1,"<\\/x"],"a":2,"b":1,"t":true,"n":null}'),
    ([1, 2.5, "\u2028é", {"y": -0.0}], '[1,2.5,"\\u2028é",{"y":-0}]'),
    ({}, "{}"),
    ([], "[]"),
    ({"q": "\"\\\b\t\n\f\r\x01\u0085/"}, '{"q":"\\"\\\\\\b\\t\\n\\f\\r\\u0001\\u0085/"}'),
])
def test_java_to_string_prints_like_org_json(value, expected):
    assert java_to_string(value) == expected


def test_java_to_string_orders_keys_by_hashmap_bucket_then_insertion():
    # "q" and "a" share bucket 1 of 16 (insertion order) but not of 32 buckets,
    # which a 13th key brings.
    assert java_to_string({"q": 1, "a": 2}) == '{"q":1,"a":2}'
    big = {"q": 1, "a": 2} | {f"x{i}": 0 for i in range(11)}
    assert java_to_string(big) == (
        '{"x8":0,"a":2,"x9":0,"q":1,"x10":0,"x0":0,"x1":0,"x2":0,"x3":0,"x4":0,"x5":0,'
        '"x6":0,"x7":0}')
    assert choose_partition({"k": big}, "hash", ["k"], "undefined", 12) == "7"


@pytest.mark.parametrize("value, expected", [
    (1.0, "1.0"), (1e7, "1.0E7"), (0.001, "0.001"), (1e-4, "1.0E-4"), (-0.0, "-0.0"),
    (0.0, "0.0"), (123.456, "123.456"), (9999999.0, "9999999.0"), (1e21, "1.0E21"),
    (-2.5e-10, "-2.5E-10"), (1.7e12, "1.7E12"),
])
def test_java_double_prints_like_java(value, expected):
    assert java_double(value) == expected


@pytest.mark.parametrize("path, tokens", [
    ("a", ("a",)), ("a.b", ("a", "b")), ("a.'b.c'", ("a", "b.c")), ("a\\.b", ("a.b",)),
    ("a..b", ("a",)), ("", ()), (".a", ()), ("a.", ("a",)),
])
def test_tokens_split_paths_like_nakadi(path, tokens):
    assert _tokens(path) == tokens


def test_partition_keys_follow_key_fields_in_order():
    event = {"a": {"b": "deep"}, "n": 5}
    assert partition_keys(event, ["n", "a.b"], "business") == ["5", "deep"]


def test_partition_keys_data_category_prefixes_data():
    event = {"data": {"id": "abc"}, "id": "other"}
    assert partition_keys(event, ["id"], "data") == ["abc"]
    assert choose_partition(event, "hash", ["id"], "data", 12) == "4"
    assert partition_keys(event, ["id"], "undefined") == ["other"]


def test_partition_keys_quoted_path_reaches_dotted_field():
    assert choose_partition({"a": {"b.c": "dotted"}}, "hash", ["a.'b.c'"], "undefined", 12) == "10"


@pytest.mark.parametrize("event, field, missing", [
    ({"y": 1}, "x", "x"),
    ({"a": {"b": "str"}}, "a.b.c", "c"),
    ({"a": None}, "a.b", "b"),
])
def test_partition_keys_missing_field_is_a_422_with_nakadi_text(event, field, missing):
    with pytest.raises(MissingKeyFieldError) as e:
        partition_keys(event, [field], "undefined")
    assert isinstance(e.value, UnprocessableError)
    assert e.value.detail == f"field {missing} doesn't exist."


def test_partition_keys_null_value_is_present():
    assert choose_partition({"k": None}, "hash", ["k"], "undefined", 12) == "9"


@pytest.mark.parametrize("event, expected", [
    ({"k": "x"}, "0"),
    ({"k": {"b": 1, "a": 2, "zz": [1.0, "</x"], "n": None, "t": True}}, "11"),
    ({"k": [1, 2.5, "\u2028é", {"y": -0.0}]}, "6"),
    ({"k": 123456789012}, "6"),
    ({"k": 1.0}, "9"),
    ({"k": False}, "5"),
])
def test_choose_partition_hash_matches_nakadi(event, expected):
    assert choose_partition(event, "hash", ["k"], "undefined", 12) == expected


def test_choose_partition_hash_of_one_partition_still_needs_the_key_fields():
    assert choose_partition({"k": "x", "n": 7}, "hash", ["k", "n"], "undefined", 1) == "0"
    with pytest.raises(PartitioningError) as e:
        choose_partition({"k": "x"}, "hash", ["k", "n"], "undefined", 1)
    assert e.value.detail == "field n doesn't exist."


def test_choose_partition_hash_without_key_fields_fails():
    with pytest.raises(PartitioningError) as e:
        choose_partition({"k": 1}, "hash", [], "undefined", 3)
    assert e.value.detail == "Cannot extract partition keys: partition key fields not set!"


def test_choose_partition_user_defined_takes_metadata_partition():
    event = {"metadata": {"partition": "1"}}
    assert choose_partition(event, "user_defined", [], "business", 3) == "1"


@pytest.mark.parametrize("partition", ["3", "01", "-1", "", " 1"])
def test_choose_partition_user_defined_unknown_partition_fails(partition):
    with pytest.raises(PartitioningError) as e:
        choose_partition({"metadata": {"partition": partition}}, "user_defined", [], "data", 3)
    assert e.value.detail == ("Failed to resolve partition. Invalid partition specified when "
                              f"publishing event: {partition}")


@pytest.mark.parametrize("event", [
    {}, {"metadata": None}, {"metadata": {}}, {"metadata": {"partition": 1}},
    {"metadata": {"partition": None}}, {"metadata": "0"},
])
def test_choose_partition_user_defined_without_partition_fails(event):
    with pytest.raises(PartitioningError) as e:
        choose_partition(event, "user_defined", [], "business", 3)
    assert e.value.detail == "Failed to resolve partition. Failed to get partition from event metadata"
    assert not isinstance(e.value, MissingKeyFieldError)


def test_choose_partition_random_uses_the_given_rng():
    first = [choose_partition({}, "random", [], "undefined", 8, random.Random(1)) for _ in range(5)]
    again = [choose_partition({}, "random", [], "undefined", 8, random.Random(1)) for _ in range(5)]
    assert first == again
    rng = random.Random(2)
    seen = {choose_partition({}, "random", [], "undefined", 8, rng) for _ in range(400)}
    assert seen == {str(i) for i in range(8)}


def test_choose_partition_random_single_partition_draws_nothing():
    class NoDraws(random.Random):
        def randrange(self, *args):
            raise AssertionError("drew a number")

    assert choose_partition({}, "random", [], "undefined", 1, NoDraws()) == "0"


def test_choose_partition_unknown_strategy_fails():
    with pytest.raises(PartitioningError) as e:
        choose_partition({}, "round_robin", [], "undefined", 3)
    assert e.value.detail == "Partition Strategy defined for this EventType is not found: round_robin"


json_leaves = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text()
key_values = st.recursive(json_leaves, lambda children: st.lists(children, max_size=3)
                          | st.dictionaries(st.text(max_size=3), children, max_size=3), max_leaves=6)


@given(st.lists(st.fixed_dictionaries({"k": key_values, "m": st.fixed_dictionaries({"n": key_values})}),
                max_size=2 * VECTOR_MIN),
       st.sampled_from([["k"], ["k", "m.n"], ["m.n"]]), st.integers(1, 40))
def test_choose_partitions_of_a_batch_equal_one_by_one(events, key_fields, count):
    one_by_one = [choose_partition(event, "hash", key_fields, "undefined", count) for event in events]
    assert choose_partitions(events, "hash", key_fields, "undefined", count) == \
        (one_by_one if len(events) >= VECTOR_MIN else None)


@given(st.lists(st.fixed_dictionaries({"k": st.text()}), min_size=VECTOR_MIN, max_size=VECTOR_MIN + 20), st.integers(0, 99))
def test_choose_partitions_leaves_a_batch_with_a_missing_key_to_one_by_one(events, missing):
    events[missing % len(events)] = {"other": 1}
    assert choose_partitions(events, "hash", ["k"], "undefined", 4) is None
    assert choose_partitions(events, "hash", ["k"], "undefined", 1) is None


@pytest.mark.parametrize("strategy", ["random", "user_defined", "round_robin"])
def test_choose_partitions_leaves_other_strategies_to_one_by_one(strategy):
    assert choose_partitions([{"metadata": {"partition": "0"}}] * 10, strategy, [], "business", 3) is None


def test_choose_partitions_of_data_events_read_under_data():
    events = [{"data": {"id": f"abc{i}"}, "id": "other"} for i in range(VECTOR_MIN)]
    assert choose_partitions(events, "hash", ["id"], "data", 12) == \
        [choose_partition(event, "hash", ["id"], "data", 12) for event in events]
