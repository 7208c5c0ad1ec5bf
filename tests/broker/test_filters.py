"""Event filters: the compiled `Filter` against a reference interpreter
written here, every validation detail, the limits, and the examples of
docs/filtering.md."""

import json

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from broker.errors import UnprocessableError
from broker.filters import (
    DIALECTS,
    FILTER_DEPTH_MAX,
    FILTER_EXPRESSIONS_MAX,
    FILTER_PATHS_MAX,
    PATH_SEGMENTS_MAX,
    Filter,
    parse_filters,
)

# -- the reference: a direct reading of the rules ------------------------------

_MISSING = object()


def reference(expressions: list, event: object) -> bool:
    return all(_reference_expression(expression, event) for expression in expressions)


def _reference_expression(expression: dict, event: object) -> bool:
    [(dialect, body)] = expression.items()
    if dialect == "all":
        return all(_reference_expression(e, event) for e in body)
    if dialect == "any":
        return any(_reference_expression(e, event) for e in body)
    if dialect == "not":
        return not _reference_expression(body, event)
    for path, expected in body.items():
        value = _reference_text(_reference_lookup(event, path))
        if value is None:
            return False
        if dialect == "exact" and value != expected:
            return False
        if dialect == "prefix" and not value.startswith(expected):
            return False
        if dialect == "suffix" and not value.endswith(expected):
            return False
    return True


def _reference_lookup(event: object, path: str) -> object:
    for key in path.split("."):
        if not isinstance(event, dict) or key not in event:
            return _MISSING
        event = event[key]
    return event


def _reference_text(value: object) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return orjson.dumps(value).decode()
    return None  # null, objects, arrays, missing


def _stored(event: object) -> bytes:
    """Compact JSON with integers exact, as the broker stores events."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


# -- generated events and expressions ------------------------------------------

SEGMENTS = ["a", "b", "data", "status"]
# "x.y" is a key no path can address; "" an ordinary key no path names.
EVENT_KEYS = SEGMENTS + ["x.y", ""]
FILTER_STRINGS = ["a", "ab", "b", "ba", "1", "10", "-1", "1.5", "10.0", "true", "false", "null",
                  "18446744073709551616", "1e+20", "[]", "{}"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([0, 1, 10, -1, 2**63, 2**64 - 1, 2**64, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1.5, 10.0, -0.0, 1e20, 0.1, 1.8446744073709552e19]),
    st.sampled_from(FILTER_STRINGS + ["", "abc", "aba"]),
    st.text(alphabet="ab1.", max_size=4),
)
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=3)
                      | st.dictionaries(st.sampled_from(EVENT_KEYS), children, max_size=4)),
    max_leaves=12,
)
events = st.dictionaries(st.sampled_from(EVENT_KEYS), json_values, max_size=5)

paths = st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=3).map(".".join)
filter_strings = st.sampled_from(FILTER_STRINGS) | st.text(alphabet="ab1", min_size=1, max_size=3)
comparisons = st.builds(
    lambda dialect, pairs: {dialect: pairs},
    st.sampled_from(["exact", "prefix", "suffix"]),
    st.dictionaries(paths, filter_strings, min_size=1, max_size=2),
)
expressions = st.recursive(
    comparisons,
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"all": items}),
        st.lists(inner, min_size=1, max_size=3).map(lambda items: {"any": items}),
        inner.map(lambda item: {"not": item}),
    ),
    max_leaves=8,
)
expression_lists = st.lists(expressions, min_size=1, max_size=3)


def _size(expression: dict) -> tuple[int, int, int]:
    """(expressions, paths, depth) of one expression."""
    [(dialect, body)] = expression.items()
    if dialect in ("all", "any"):
        sizes = [_size(e) for e in body]
        return 1 + sum(s[0] for s in sizes), sum(s[1] for s in sizes), 1 + max(s[2] for s in sizes)
    if dialect == "not":
        count, pairs, depth = _size(body)
        return 1 + count, pairs, 1 + depth
    return 1, len(body), 1


def _within_limits(expression_list: list) -> bool:
    sizes = [_size(e) for e in expression_list]
    return (sum(s[0] for s in sizes) <= FILTER_EXPRESSIONS_MAX and sum(s[1] for s in sizes) <= FILTER_PATHS_MAX
            and max(s[2] for s in sizes) <= FILTER_DEPTH_MAX)


def _events_for(expression_list: list) -> st.SearchStrategy:
    """Events that hold the filter's paths with values close to its strings
    (so that matches are common), mixed with random ones."""
    wanted: list[tuple[str, str]] = []

    def walk(expression: dict) -> None:
        [(dialect, body)] = expression.items()
        if dialect in ("all", "any"):
            for e in body:
                walk(e)
        elif dialect == "not":
            walk(body)
        else:
            wanted.extend(body.items())

    for e in expression_list:
        walk(e)
    near = st.sampled_from([s for _, s in wanted]).flatmap(
        lambda s: st.sampled_from([s, s + "a", "b" + s, s[:-1], s.upper()]))
    value = near | scalars

    def build(base: dict, chosen: list[tuple[str, object]]) -> dict:
        event = dict(base)
        for path, v in chosen:
            node = event
            *parents, last = path.split(".")
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node[last] = v
        return event

    chosen = st.lists(st.tuples(st.sampled_from([p for p, _ in wanted]), value), max_size=len(wanted) + 1)
    return st.builds(build, events, chosen)


# -- properties ----------------------------------------------------------------

@given(expression_lists, events)
def test_filters_agree_with_the_reference_on_random_events(expression_list, event):
    assume(_within_limits(expression_list))
    event_filter = parse_filters(expression_list)
    expected = reference(expression_list, event)
    assert event_filter.matches(event) is expected
    assert event_filter.matches_json(_stored(event)) is expected


@given(st.data())
def test_filters_agree_with_the_reference_on_events_built_for_them(data):
    expression_list = data.draw(expression_lists)
    assume(_within_limits(expression_list))
    event = data.draw(_events_for(expression_list))
    event_filter = parse_filters(expression_list)
    expected = reference(expression_list, event)
    assert event_filter.matches(event) is expected
    assert event_filter.matches_json(_stored(event)) is expected
    try:
        as_orjson_writes = orjson.dumps(event)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits
        return
    assert event_filter.matches_json(as_orjson_writes) is expected


@given(expression_lists)
def test_filters_keep_a_copy_of_the_expressions_as_given(expression_list):
    assume(_within_limits(expression_list))
    given_json = orjson.dumps(expression_list)
    event_filter = parse_filters(expression_list)
    assert event_filter.expressions == expression_list
    assert orjson.dumps(event_filter.expressions) == given_json  # keys keep their order
    expression_list.append({"exact": {"a": "changed"}})
    expression_list[0].clear()
    assert orjson.dumps(event_filter.expressions) == given_json
    assert parse_filters(orjson.loads(given_json)) == event_filter


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(list(DIALECTS) + ["sql", "a.b", "a..b", ""]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(list(DIALECTS) + ["a", "a.b", ".a", "sql", ""]) | st.text(max_size=3),
                      children, max_size=3),
    max_leaves=16,
)


@given(json_like)
def test_filters_refuse_anything_else_with_a_422_detail(value):
    try:
        event_filter = parse_filters(value)
    except UnprocessableError as e:
        assert e.detail.startswith("filters")
        assert type(e) is UnprocessableError
    else:
        assert event_filter is None or isinstance(event_filter, Filter)


@given(expression_lists, st.binary(max_size=20))
def test_filters_never_match_a_payload_that_is_not_json(expression_list, payload):
    assume(_within_limits(expression_list))
    try:
        json.loads(payload.decode())
        assume(False)
    except ValueError:
        pass
    assert parse_filters(expression_list).matches_json(payload) is False


# -- semantics -----------------------------------------------------------------

def _matches(expressions: list, event: object) -> bool:
    event_filter = parse_filters(expressions)
    result = event_filter.matches(event)
    assert event_filter.matches_json(_stored(event)) is result
    return result


def test_filters_none_for_null_and_an_empty_list():
    assert parse_filters(None) is None
    assert parse_filters([]) is None


def test_filters_compare_strings_exactly_by_prefix_and_by_suffix():
    event = {"data": {"status": "shipped"}}
    assert _matches([{"exact": {"data.status": "shipped"}}], event)
    assert not _matches([{"exact": {"data.status": "Shipped"}}], event)
    assert not _matches([{"exact": {"data.status": "ship"}}], event)
    assert _matches([{"prefix": {"data.status": "ship"}}], event)
    assert _matches([{"prefix": {"data.status": "shipped"}}], event)
    assert not _matches([{"prefix": {"data.status": "hipped"}}], event)
    assert _matches([{"suffix": {"data.status": "pped"}}], event)
    assert not _matches([{"suffix": {"data.status": "shippedx"}}], event)


@pytest.mark.parametrize(("value", "text"), [
    (10, "10"), (-3, "-3"), (0, "0"), (1.5, "1.5"), (10.0, "10.0"), (-0.0, "-0.0"), (1e20, "1e+20"),
    (True, "true"), (False, "false"), (2**64, "18446744073709551616"), (-(2**63) - 1, "-9223372036854775809"),
    (10**40, "1" + "0" * 40),
])
def test_filters_compare_numbers_and_booleans_by_their_json_text(value, text):
    event = {"v": value, "nested": {"v": value}, "deep": {"er": {"v": value}}}
    for path in ("v", "nested.v", "deep.er.v"):
        assert _matches([{"exact": {path: text}}], event)
        assert _matches([{"prefix": {path: text[:1]}}], event)
        assert _matches([{"suffix": {path: text[-1:]}}], event)
        assert not _matches([{"exact": {path: text + "0"}}], event)


def test_filters_read_number_literals_as_their_values():
    event_filter = parse_filters([{"exact": {"v": "100.0"}}])
    assert event_filter.matches_json(b'{"v": 1e2}')
    assert event_filter.matches_json(b'{"v": 100.00}')
    assert not event_filter.matches_json(b'{"v": 100}')
    assert parse_filters([{"exact": {"v": "0"}}]).matches_json(b'{"v": -0}')


def test_filters_keep_integers_beyond_64_bits_exact():
    big = "123456789012345678901234567890"
    assert parse_filters([{"exact": {"v": big}}]).matches_json(b'{"v": %s}' % big.encode())
    assert not parse_filters([{"exact": {"v": big}}]).matches_json(b'{"v": 1.2345678901234568e+29}')
    assert parse_filters([{"exact": {"v": "1.2345678901234568e+29"}}]).matches_json(b'{"v": 1.2345678901234568e+29}')
    huge = b"9" * 500  # beyond a double: orjson refuses the payload
    assert parse_filters([{"exact": {"a": "x"}}]).matches_json(b'{"a": "x", "n": %s}' % huge)
    assert parse_filters([{"suffix": {"n": "99"}}]).matches_json(b'{"n": -%s}' % huge)


@pytest.mark.parametrize("value", [None, {}, {"status": "shipped"}, [], ["shipped"], "", 1.5])
def test_filters_never_match_null_objects_or_arrays(value):
    event = {"data": {"status": value}}
    for text in ("shipped", "null", "[]", "{}", "[\"shipped\"]"):
        if text != _reference_text(value):
            assert not _matches([{"exact": {"data.status": text}}], event)
            assert _matches([{"not": {"exact": {"data.status": text}}}], event)
    if value is None or isinstance(value, dict | list):
        assert not _matches([{"prefix": {"data.status": "["}}], event)
        assert not _matches([{"prefix": {"data.status": "{"}}], event)
        assert not _matches([{"prefix": {"data.status": "n"}}], event)


@pytest.mark.parametrize("event", [{}, {"data": None}, {"data": "shipped"}, {"data": ["status"]},
                                   {"data": {"state": "shipped"}}, {"data": 3}, [], "data", None, 7])
def test_filters_missing_paths_never_match_so_their_not_does(event):
    for dialect in ("exact", "prefix", "suffix"):
        assert not _matches([{dialect: {"data.status": "shipped"}}], event)
        assert _matches([{"not": {dialect: {"data.status": "shipped"}}}], event)


def test_filters_cannot_address_keys_holding_a_dot():
    event = {"data.status": "shipped", "data": {"status": "pending"}}
    assert not _matches([{"exact": {"data.status": "shipped"}}], event)
    assert _matches([{"exact": {"data.status": "pending"}}], event)


def test_filters_paths_take_any_characters_but_dots():
    event = {"ünïcode key": {" ": {"a/b[0]": "x"}}, "0": {"1": "y"}}
    assert _matches([{"exact": {"ünïcode key. .a/b[0]": "x"}}], event)
    assert _matches([{"exact": {"0.1": "y"}}], event)


def test_filters_need_every_pair_and_every_expression():
    event = {"order": {"country": "DE", "currency": "EUR"}}
    assert _matches([{"exact": {"order.country": "DE", "order.currency": "EUR"}}], event)
    assert not _matches([{"exact": {"order.country": "DE", "order.currency": "CHF"}}], event)
    assert not _matches([{"exact": {"order.country": "DE"}}, {"exact": {"order.currency": "CHF"}}], event)
    assert _matches([{"exact": {"order.country": "DE"}}, {"prefix": {"order.currency": "E"}}], event)


def test_filters_combine_with_all_any_and_not():
    event = {"a": "1", "b": "2"}
    yes, no = {"exact": {"a": "1"}}, {"exact": {"a": "2"}}
    assert _matches([{"all": [yes]}], event) and not _matches([{"all": [yes, no]}], event)
    assert _matches([{"all": [yes, yes, yes, yes]}], event)
    assert not _matches([{"all": [yes, yes, no, yes]}], event)
    assert _matches([{"any": [no, yes]}], event) and not _matches([{"any": [no]}], event)
    assert _matches([{"any": [no, no, no, yes]}], event)
    assert not _matches([{"any": [no, no, no, no]}], event)
    assert _matches([{"not": no}], event) and not _matches([{"not": yes}], event)
    assert _matches([{"not": {"not": yes}}], event)
    assert _matches([{"any": [{"all": [yes, no]}, {"not": {"any": [no, {"exact": {"b": "3"}}]}}]}], event)


def test_filters_match_every_event_when_built_empty():
    assert Filter([]).matches({}) and Filter([]).matches_json(b"[]")
    assert not Filter([]).matches_json(b"{")


@pytest.mark.parametrize("payload", [b"", b"{", b'{"a": "x"', b'{"a": "x"}}', b"NaN", b'{"a": "x", "n": NaN}',
                                     b'{"a": "x", "n": Infinity}', b'{"a": "x\xff"}', b'{"a": "x"} {}',
                                     '{"a": "x"}'.encode("utf-16")])
def test_filters_never_match_invalid_json(payload):
    assert not parse_filters([{"not": {"exact": {"a": "y"}}}]).matches_json(payload)


def test_filters_compare_by_expressions():
    one = parse_filters([{"exact": {"a": "1"}}])
    assert one == parse_filters([{"exact": {"a": "1"}}])
    assert one != parse_filters([{"exact": {"a": "2"}}])
    assert one != [{"exact": {"a": "1"}}]
    assert repr(one) == "Filter([{'exact': {'a': '1'}}])"


# -- validation ----------------------------------------------------------------

USE = "use one of exact, prefix, suffix, all, any, not"
OK = {"exact": {"a": "b"}}


@pytest.mark.parametrize(("value", "detail"), [
    (3, "filters: must be a list of filter expressions"),
    ("[]", "filters: must be a list of filter expressions"),
    ({"exact": {"a": "b"}}, "filters: must be a list of filter expressions"),
    ([3], "filters[0]: a filter expression is an object with exactly one dialect"),
    ([OK, OK, OK, None], "filters[3]: a filter expression is an object with exactly one dialect"),
    ([{}], "filters[0]: a filter expression is an object with exactly one dialect"),
    ([[OK]], "filters[0]: a filter expression is an object with exactly one dialect"),
    ([{"exact": {"a": "b"}, "not": OK}], "filters[0]: a filter expression is an object with exactly one dialect"),
    ([{"regex": {"a": "b"}}], f'filters[0]: unknown dialect "regex"; {USE}'),
    ([OK, {"Exact": {"a": "b"}}], f'filters[1]: unknown dialect "Exact"; {USE}'),
    ([{"": {"a": "b"}}], f'filters[0]: unknown dialect ""; {USE}'),
    ([{"x" * 100: {}}], f'filters[0]: unknown dialect "{"x" * 55}..."; {USE}'),
    ([{"sql": "source LIKE '%x%'"}], f'filters[0]: dialect "sql" is not supported; {USE}'),
    ([OK, {"exact": {}}], "filters[1].exact: must not be empty"),
    ([{"prefix": {}}], "filters[0].prefix: must not be empty"),
    ([{"exact": ["a", "b"]}], "filters[0].exact: must be an object mapping attribute paths to strings"),
    ([{"suffix": "a"}], "filters[0].suffix: must be an object mapping attribute paths to strings"),
    ([{"prefix": {"data.status": 3}}], 'filters[0].prefix["data.status"]: must be a string, not 3'),
    ([{"exact": {"a": None}}], 'filters[0].exact["a"]: must be a string, not null'),
    ([{"exact": {"a": True}}], 'filters[0].exact["a"]: must be a string, not true'),
    ([{"exact": {"a": 1.5}}], 'filters[0].exact["a"]: must be a string, not 1.5'),
    ([{"exact": {"a": ["b"]}}], 'filters[0].exact["a"]: must be a string, not a list'),
    ([{"exact": {"a": {"b": "c"}}}], 'filters[0].exact["a"]: must be a string, not an object'),
    ([{"exact": {"a": "b", "c": 2**70}}], f'filters[0].exact["c"]: must be a string, not {2**70}'),
    ([{"exact": {"a": ""}}], 'filters[0].exact["a"]: must not be empty'),
    ([{"prefix": {"a": ""}}], 'filters[0].prefix["a"]: must not be empty'),
    ([{"suffix": {"data.carrier": ""}}], 'filters[0].suffix["data.carrier"]: must not be empty'),
    ([{"exact": {"data..status": "x"}}], 'filters[0].exact: "data..status" is not a dot path (empty segment)'),
    ([{"exact": {"": "x"}}], 'filters[0].exact: "" is not a dot path (empty segment)'),
    ([{"exact": {".a": "x"}}], 'filters[0].exact: ".a" is not a dot path (empty segment)'),
    ([{"exact": {"a.": "x"}}], 'filters[0].exact: "a." is not a dot path (empty segment)'),
    ([{"exact": {".": "x"}}], 'filters[0].exact: "." is not a dot path (empty segment)'),
    ([{"exact": {"a": "x", "b..": "x"}}], 'filters[0].exact: "b.." is not a dot path (empty segment)'),
    ([{"exact": {'say "hi"\n': 1}}], 'filters[0].exact["say \\"hi\\"\\n"]: must be a string, not 1'),
    ([{"all": {"exact": {"a": "b"}}}], "filters[0].all: must be a list of filter expressions"),
    ([{"any": None}], "filters[0].any: must be a list of filter expressions"),
    ([{"any": []}], "filters[0].any: must not be empty"),
    ([{"all": []}], "filters[0].all: must not be empty"),
    ([{"any": [OK, OK, {"regex": {}}]}], f'filters[0].any[2]: unknown dialect "regex"; {USE}'),
    ([{"not": [OK]}], "filters[0].not: a filter expression is an object with exactly one dialect"),
    ([{"not": None}], "filters[0].not: a filter expression is an object with exactly one dialect"),
    ([{"not": {"all": [{"exact": {"a.b": 1}}]}}], 'filters[0].not.all[0].exact["a.b"]: must be a string, not 1'),
    ([{"any": [OK, {"not": {"exact": {"c": True}}}]}], 'filters[0].any[1].not.exact["c"]: must be a string, not true'),
    ([OK, {"all": [OK, {"any": [OK, {"suffix": {"x..y": "z"}}]}]}],
     'filters[1].all[1].any[1].suffix: "x..y" is not a dot path (empty segment)'),
])
def test_filters_refuse_invalid_expressions_with_exact_details(value, detail):
    with pytest.raises(UnprocessableError) as caught:
        parse_filters(value)
    assert type(caught.value) is UnprocessableError
    assert caught.value.detail == detail


def test_filters_name_the_field_they_were_given():
    with pytest.raises(UnprocessableError, match=r"^query parameter filters: must be a list"):
        parse_filters("x", field="query parameter filters")
    with pytest.raises(UnprocessableError, match=r"^body\.filters\[0\]\.any: must not be empty$"):
        parse_filters([{"any": []}], field="body.filters")
    with pytest.raises(UnprocessableError, match=r"^f: at most 100 filter expressions"):
        Filter([OK] * 101, field="f")


def _nested(depth: int) -> dict:
    expression = OK
    for _ in range(depth - 1):
        expression = {"not": expression}
    return expression


def test_filters_nest_at_most_32_deep():
    assert FILTER_DEPTH_MAX == 32
    assert parse_filters([_nested(32)]).matches({"a": "c"})  # 31 nots around a test that fails
    with pytest.raises(UnprocessableError) as caught:
        parse_filters([_nested(33)])
    assert caught.value.detail == "filters[0]" + ".not" * 32 + ": filter expressions nest at most 32 deep"
    deep_any = {"any": [{"all": [_nested(30)]}]}
    assert parse_filters([OK, deep_any])
    with pytest.raises(UnprocessableError) as caught:
        parse_filters([OK, {"any": [OK, {"all": [_nested(31)]}]}])
    assert caught.value.detail == "filters[1].any[1].all[0]" + ".not" * 30 + ": filter expressions nest at most 32 deep"
    with pytest.raises(UnprocessableError):
        parse_filters([_nested(1000)])


def test_filters_hold_at_most_100_expressions_in_total():
    assert FILTER_EXPRESSIONS_MAX == 100
    assert parse_filters([OK] * 100)
    assert parse_filters([{"all": [OK] * 99}])
    assert parse_filters([{"not": {"any": [OK] * 48}}] * 2)
    for value in ([OK] * 101, [{"all": [OK] * 100}], [{"not": {"any": [OK] * 48}}] * 2 + [OK]):
        with pytest.raises(UnprocessableError) as caught:
            parse_filters(value)
        assert caught.value.detail == "filters: at most 100 filter expressions in total (nested ones included)"


def test_filters_hold_at_most_100_paths_in_total():
    assert FILTER_PATHS_MAX == 100
    pairs = {f"k{i}": "v" for i in range(100)}
    assert parse_filters([{"exact": pairs}])
    assert parse_filters([{"exact": dict(list(pairs.items())[:50])}, {"prefix": dict(list(pairs.items())[50:])}])
    for value in ([{"exact": {**pairs, "k100": "v"}}], [{"exact": pairs}, OK]):
        with pytest.raises(UnprocessableError) as caught:
            parse_filters(value)
        assert caught.value.detail == "filters: at most 100 attribute paths in total"


def test_filters_paths_have_at_most_64_segments():
    assert PATH_SEGMENTS_MAX == 64
    path = ".".join(["s"] * 64)
    event: object = "deep"
    for _ in range(64):
        event = {"s": event}
    assert _matches([{"exact": {path: "deep"}}], event)
    with pytest.raises(UnprocessableError) as caught:
        parse_filters([{"exact": {path + ".s": "deep"}}])
    assert caught.value.detail == f'filters[0].exact: "{("s." * 28)[:55]}..." is not a dot path (more than 64 segments)'


# -- the examples of docs/filtering.md -----------------------------------------

ORDER = {
    "metadata": {"eid": "9f1c2a7e-3b8d-4c61-a0f4-5e2d7b9c1a30", "event_type": "order.placed",
                 "occurred_at": "2024-05-14T09:31:07.412Z", "partition": "2", "version": "1.0.0"},
    "order": {"number": "ORD-24873", "country": "DE", "currency": "EUR",
              "total": 129.9, "items": 3, "express": True, "coupon": None},
    "customer": {"id": 1934471, "email": "ana.silva@example.org", "tier": "gold"},
}
SHIPMENT = {
    "metadata": {"eid": "0b7e4d2c-91a5-4f3e-8c6d-2a1f9e7b5c48", "event_type": "shipment.changed",
                 "occurred_at": "2024-05-14T11:02:45.003Z", "partition": "0", "version": "1.2.0"},
    "data_op": "U",
    "data_type": "shipment",
    "data": {"id": "SHP-77120", "order_number": "ORD-24873", "status": "shipped",
             "carrier": "dhl-express", "parcels": [{"weight_kg": 2.5}]},
}


@pytest.mark.parametrize(("expression", "order", "shipment"), [
    ({"exact": {"data.status": "shipped"}}, False, True),
    ({"prefix": {"data.carrier": "dhl"}}, False, True),
    ({"suffix": {"customer.email": "@example.org"}}, True, False),
    ({"exact": {"metadata.event_type": "order.placed"}}, True, False),
    ({"exact": {"order.country": "DE", "order.currency": "EUR"}}, True, False),
    ({"exact": {"order.items": "3"}}, True, False),
    ({"exact": {"order.express": "true"}}, True, False),
    ({"prefix": {"order.total": "129."}}, True, False),
    ({"all": [{"exact": {"order.country": "DE"}}, {"exact": {"customer.tier": "gold"}}]}, True, False),
    ({"any": [{"exact": {"order.country": "AT"}}, {"exact": {"order.country": "CH"}}]}, False, False),
    ({"not": {"exact": {"customer.tier": "gold"}}}, False, True),
    ({"not": {"exact": {"order.coupon": "SPRING24"}}}, True, True),
    ({"exact": {"data.parcels": '[{"weight_kg":2.5}]'}}, False, False),
    ({"exact": {"order.total": "129.90"}}, False, False),
    ({"prefix": {"order.total": "12"}}, True, False),
])
def test_filters_docs_dialect_examples(expression, order, shipment):
    assert _matches([expression], ORDER) is order
    assert _matches([expression], SHIPMENT) is shipment
    assert reference([expression], ORDER) is order and reference([expression], SHIPMENT) is shipment


def test_filters_docs_subscription_example():
    body = json.loads("""{
      "owning_application": "fulfilment",
      "event_types": ["order.placed"],
      "consumer_group": "express-de",
      "filters": [
        {"exact": {"order.country": "DE"}},
        {"any": [
          {"exact": {"order.express": "true"}},
          {"exact": {"customer.tier": "gold"}}
        ]}
      ]
    }""")
    event_filter = parse_filters(body["filters"])
    assert event_filter.matches(ORDER) and not event_filter.matches(SHIPMENT)
    slow_swiss = {**ORDER, "order": {**ORDER["order"], "country": "CH"}}
    assert not event_filter.matches(slow_swiss)
    plain = {**ORDER, "order": {**ORDER["order"], "express": False}, "customer": {"tier": "silver"}}
    assert not event_filter.matches(plain)
    assert event_filter.matches({**plain, "customer": {"tier": "gold"}})


def test_filters_docs_query_parameter_example():
    from urllib.parse import unquote
    value = unquote("%5B%7B%22exact%22%3A%7B%22data.status%22%3A%22shipped%22%7D%7D%5D")
    assert value == '[{"exact":{"data.status":"shipped"}}]'
    event_filter = parse_filters(orjson.loads(value))
    assert event_filter.matches_json(_stored(SHIPMENT)) and not event_filter.matches_json(_stored(ORDER))


@pytest.mark.parametrize(("value", "detail"), [
    ({"exact": {"a": "b"}}, "filters: must be a list of filter expressions"),
    ([{"exact": {"a": "b"}, "not": {"exact": {"a": "c"}}}],
     "filters[0]: a filter expression is an object with exactly one dialect"),
    ([{"regex": {"data.status": "ship.*"}}], f'filters[0]: unknown dialect "regex"; {USE}'),
    ([{"sql": "status = 'shipped'"}], f'filters[0]: dialect "sql" is not supported; {USE}'),
    ([{"exact": {"a": "b"}}, {"exact": {}}], "filters[1].exact: must not be empty"),
    ([{"exact": ["data.status", "shipped"]}],
     "filters[0].exact: must be an object mapping attribute paths to strings"),
    ([{"prefix": {"data.status": 3}}], 'filters[0].prefix["data.status"]: must be a string, not 3'),
    ([{"exact": {"order.items": 3}}], 'filters[0].exact["order.items"]: must be a string, not 3'),
    ([{"suffix": {"data.carrier": ""}}], 'filters[0].suffix["data.carrier"]: must not be empty'),
    ([{"exact": {"data..status": "shipped"}}], 'filters[0].exact: "data..status" is not a dot path (empty segment)'),
    ([{"any": []}], "filters[0].any: must not be empty"),
    ([{"all": {"exact": {"a": "b"}}}], "filters[0].all: must be a list of filter expressions"),
    ([{"not": [{"exact": {"a": "b"}}]}], "filters[0].not: a filter expression is an object with exactly one dialect"),
    ([{"any": [{"exact": {"a": "b"}}, {"not": {"exact": {"c": True}}}]}],
     'filters[0].any[1].not.exact["c"]: must be a string, not true'),
])
def test_filters_docs_validation_examples(value, detail):
    with pytest.raises(UnprocessableError) as caught:
        parse_filters(value)
    assert caught.value.detail == detail
