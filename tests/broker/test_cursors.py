"""Offsets, cursor arithmetic and cursor JSON, with Nakadi's texts and statuses."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from broker.cursors import (
    BEGIN,
    CursorProblem,
    InvalidCursor,
    cursor_distances,
    cursors_lag,
    distance,
    format_offset,
    get_partition,
    is_available,
    lag,
    list_partitions,
    parse_offset,
    parse_partition,
    partition_ids,
    partition_view,
    require_available,
    resolve,
    shift,
    shifted_cursors,
    stream_start,
)
from broker.errors import (
    InvalidFieldsError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    UnprocessableError,
)

ET = "order.created"
UNAVAILABLE_TAIL = (" is unavailable as retention time of data elapsed. PATCH partition offset "
                    "with valid and available offset")
TIMELINE_NOT_FOUND = ("Timeline not found. It might happen in case the cursor refers to a timeline "
                      "that has already expired.")
# partition 0: events 0..4; 1: empty; 2: 3..9 retained (0..2 expired); 3: everything expired
BOUNDS = [(0, 5), (0, 0), (3, 10), (7, 7)]

offsets = st.integers(-1, 10**18 - 1)


def detail_of(call, error=UnprocessableError):
    with pytest.raises(error) as e:
        call()
    assert type(e.value) is error
    return e.value.detail


# --- partitions ---------------------------------------------------------------

def test_partition_ids_are_decimal_strings():
    assert partition_ids(3) == ["0", "1", "2"]
    assert partition_ids(0) == []


@pytest.mark.parametrize("text, index", [("0", 0), ("3", 3), ("4", None), ("00", None), ("01", None),
                                         ("-1", None), ("+1", None), (" 1", None), ("", None),
                                         ("١", None), (1, None), (None, None)])
def test_parse_partition_accepts_only_existing_canonical_ids(text, index):
    assert parse_partition(text, 4) == index


# --- offsets ------------------------------------------------------------------

def test_format_offset_pads_to_18_digits():
    assert format_offset(0) == "001-0001-000000000000000000"
    assert format_offset(42) == "001-0001-000000000000000042"
    assert format_offset(10**18 - 1) == "001-0001-999999999999999999"


def test_format_offset_before_first_is_unpadded_minus_one():
    assert format_offset(-1) == "001-0001--1"


@pytest.mark.parametrize("offset", [-2, 10**18])
def test_format_offset_rejects_offsets_that_would_not_sort(offset):
    with pytest.raises(ValueError):
        format_offset(offset)


@given(offsets)
def test_format_offset_round_trips_through_parse(offset):
    assert parse_offset(format_offset(offset)) == offset


@given(offsets, offsets)
def test_format_offset_string_order_is_offset_order(a, b):
    assert (format_offset(a) < format_offset(b)) == (a < b)


@pytest.mark.parametrize("text, offset", [
    ("001-0001-000000000000000042", 42),
    ("001-0001-42", 42),  # version one need not be padded
    ("001-0001--1", -1),
    ("001-0001--5", -5),
    ("001-+001-7", 7),  # Java's Integer.parseInt accepts a sign
    ("12", 12),  # version zero
    ("000000000000000010", 10),
    ("-1", -1),
    ("-3", -3),
    ("9223372036854775807", 2**63 - 1),
])
def test_parse_offset_reads_nakadi_offsets(text, offset):
    assert parse_offset(text) == offset


@pytest.mark.parametrize("text", ["BEGIN", "begin", "Begin", "bEgIn"])
def test_parse_offset_begin_is_case_insensitive(text):
    assert parse_offset(text) is BEGIN


@pytest.mark.parametrize("text", [
    "END", "end", "", "abc", "xer", "+1", " 1", "1 ", "1.0", "١٢", "0x10", "1_000", "BEGIN ",
    "001", "0012", "001234",  # "001..." is taken as version one, as in Nakadi
    "001-0001-", "001-0001-abc", "001-0001-+1", "001-01-5", "001-00001-5", "001-zzzz-5",
    "001-0001", "001_0001_5", "001-0001---1", "001-00 1-5", "001--001-1",
])
def test_parse_offset_rejects_other_text_as_invalid_offset(text):
    with pytest.raises(InvalidCursor) as e:
        parse_offset(text)
    assert e.value.problem is CursorProblem.INVALID_OFFSET
    assert e.value.offset == text


@pytest.mark.parametrize("text", ["001-0002-000000000000000001", "001-000f-1", "001-0000-1"])
def test_parse_offset_other_timeline_is_unavailable(text):
    with pytest.raises(InvalidCursor) as e:
        parse_offset(text)
    assert e.value.problem is CursorProblem.UNAVAILABLE


@pytest.mark.parametrize("text, inner", [
    ("99999999999999999999", "99999999999999999999"),
    ("001-0001-9223372036854775808", "9223372036854775808"),
    ("-9223372036854775809", "-9223372036854775809"),
])
def test_parse_offset_beyond_java_long_is_invalid_format(text, inner):
    with pytest.raises(InvalidCursor) as e:
        parse_offset(text)
    assert e.value.problem is CursorProblem.INVALID_FORMAT
    assert e.value.offset == inner


@pytest.mark.parametrize("problem, expected", [
    (CursorProblem.PARTITION_NOT_FOUND, "non existing partition 3"),
    (CursorProblem.UNAVAILABLE, "offset 000000000000000007 for partition 3 event type " + ET
     + UNAVAILABLE_TAIL),
    (CursorProblem.NULL_OFFSET, "offset must not be null"),
    (CursorProblem.NULL_PARTITION, "partition must not be null"),
    (CursorProblem.INVALID_FORMAT, "invalid cursor format, partition: 3 offset: 000000000000000007"),
    (CursorProblem.INVALID_OFFSET, "invalid offset 000000000000000007 for partition 3"),
])
def test_invalid_cursor_detail_is_nakadis_text(problem, expected):
    assert InvalidCursor(problem, "3", "000000000000000007").detail(ET) == expected


def test_invalid_cursor_detail_prints_missing_values_as_null():
    assert (InvalidCursor(CursorProblem.INVALID_FORMAT).detail(ET)
            == "invalid cursor format, partition: null offset: null")


def test_resolve_begin_is_before_the_oldest_retained_event():
    assert resolve(BEGIN, 0, 0) == -1
    assert resolve(BEGIN, 0, 5) == -1
    assert resolve(BEGIN, 3, 10) == 2  # retention deleted 0..2
    assert format_offset(resolve(BEGIN, 3, 10)) == "001-0001-000000000000000002"
    assert resolve(7, 3, 10) == 7


@pytest.mark.parametrize("offset, available", [(1, False), (2, True), (5, True), (9, True), (10, False)])
def test_is_available_spans_before_first_to_newest(offset, available):
    assert is_available(offset, 3, 10) is available


def test_is_available_empty_partition_only_before_first():
    assert is_available(-1, 0, 0) and not is_available(0, 0, 0) and not is_available(-2, 0, 0)


@pytest.mark.parametrize("offset, inner", [(1, "000000000000000001"), (10, "000000000000000010"),
                                           (-5, "-5")])
def test_require_available_expired_or_future_gives_nakadis_text(offset, inner):
    with pytest.raises(InvalidCursor) as e:
        require_available("2", offset, 3, 10)
    assert e.value.detail(ET) == f"offset {inner} for partition 2 event type {ET}" + UNAVAILABLE_TAIL


# --- partition view and arithmetic ----------------------------------------------

def test_partition_view_empty_partition():
    assert partition_view(0, 0, 0) == {
        "partition": "0",
        "oldest_available_offset": "001-0001-000000000000000000",
        "newest_available_offset": "001-0001--1",
    }


def test_partition_view_after_two_events():
    view = partition_view(1, 0, 2)
    assert view["newest_available_offset"] == "001-0001-000000000000000001"
    assert "unconsumed_events" not in view


def test_partition_view_all_expired_has_newest_below_oldest():
    view = partition_view(3, 7, 7)
    assert view["oldest_available_offset"] == "001-0001-000000000000000007"
    assert view["newest_available_offset"] == "001-0001-000000000000000006"
    assert view["newest_available_offset"] < view["oldest_available_offset"]


def test_partition_view_with_consumed_adds_unconsumed_events():
    assert partition_view(0, 0, 2, consumed=-1)["unconsumed_events"] == 2
    assert partition_view(0, 0, 2, consumed=1)["unconsumed_events"] == 0


def test_distance_counts_events_after_initial_up_to_final():
    assert distance(-1, 1) == 2
    assert distance(4, 4) == 0
    assert distance(4, 1) == -3


def test_lag_is_distance_to_newest_without_retention_check():
    assert lag(-1, 0, 0) == 0
    assert lag(-1, 0, 2) == 2
    assert lag(0, 3, 10) == 9  # expired cursor: counted as Nakadi does
    assert lag(12, 3, 10) == -3


def test_shift_begin_plus_one_is_the_first_event():
    assert shift(resolve(BEGIN, 3, 10), 1, 3, 10) == 3
    assert shift(-1, 1, 0, 2) == 0


def test_shift_begin_minus_one_is_refused():
    assert detail_of(lambda: shift(-1, -1, 0, 2)) == TIMELINE_NOT_FOUND
    assert detail_of(lambda: shift(2, -1, 3, 10)) == TIMELINE_NOT_FOUND


def test_shift_past_newest_is_refused():
    assert detail_of(lambda: shift(9, 1, 3, 10)) == TIMELINE_NOT_FOUND
    assert shift(8, 1, 3, 10) == 9


@pytest.mark.parametrize("cursor", [1, 10, -1])
def test_shift_from_unavailable_cursor_is_refused(cursor):
    assert detail_of(lambda: shift(cursor, 0, 3, 10)) == "problem converting cursors"


@given(st.integers(0, 50), st.integers(0, 50), st.integers(-1, 60), st.integers(-70, 70))
def test_shift_and_distance_agree(start, length, cursor, by):
    end = start + length
    assume(is_available(cursor, start, end))
    if is_available(cursor + by, start, end):
        moved = shift(cursor, by, start, end)
        assert distance(cursor, moved) == by
        assert shift(moved, -by, start, end) == cursor
        assert lag(cursor, start, end) == distance(cursor, moved) + lag(moved, start, end)
    else:
        with pytest.raises(UnprocessableError):
            shift(cursor, by, start, end)


# --- low-level stream start ---------------------------------------------------------

def stream_412(header):
    return detail_of(lambda: stream_start(ET, BOUNDS, header), PreconditionFailedError)


def test_stream_start_without_header_starts_at_newest():
    assert stream_start(ET, BOUNDS, None) == {0: 4, 1: -1, 2: 9, 3: 6}
    assert stream_start(ET, BOUNDS, "null") == {0: 4, 1: -1, 2: 9, 3: 6}


def test_stream_start_reads_cursors_in_header_order():
    header = ('[{"partition":"2","offset":"BEGIN"},{"partition":"0","offset":"001-0001-000000000000000003"},'
              '{"partition":"1","offset":"001-0001--1","extra":1}]')
    assert list(stream_start(ET, BOUNDS, header).items()) == [(2, 2), (0, 3), (1, -1)]


def test_stream_start_coerces_scalars_and_ignores_trailing_text():
    assert stream_start(ET, BOUNDS, ' [{"partition":0,"offset":4}] trailing') == {0: 4}


@pytest.mark.parametrize("header", ["", "[", "cursors_with_wrong_format", "{}", '"x"', "[1]",
                                    "[null]", '[{"partition":{"a":1},"offset":"1"}]',
                                    '[{"partition":"0","offset":["1"]}]', "[NaN]"])
def test_stream_start_unparseable_header_is_400(header):
    assert (detail_of(lambda: stream_start(ET, BOUNDS, header), InvalidRequestError)
            == "incorrect syntax of X-nakadi-cursors header")


def test_stream_start_empty_list_is_412():
    assert stream_412("[]") == "invalid cursor format, partition: null offset: null"


def test_stream_start_null_fields_are_412():
    assert stream_412('[{"offset":"BEGIN"}]') == "partition must not be null"
    assert stream_412('[{"partition":"0","offset":null}]') == "offset must not be null"
    assert stream_412('[{"partition":"0","offset":"xyz"},{"partition":null,"offset":"1"}]') == (
        "partition must not be null")


def test_stream_start_unknown_partition_is_412():
    assert stream_412('[{"partition":"very_wrong_partition","offset":"0"}]') == (
        "non existing partition very_wrong_partition")
    assert stream_412('[{"partition":"4","offset":"BEGIN"}]') == "non existing partition 4"
    assert stream_412('[{"partition":"00","offset":"-1"}]') == "non existing partition 00"


def test_stream_start_invalid_offset_is_412():
    assert stream_412('[{"partition":"0","offset":"xyz"}]') == "invalid offset xyz for partition 0"
    assert stream_412('[{"partition":"0","offset":"END"}]') == "invalid offset END for partition 0"
    assert stream_412('[{"partition":"0","offset":"99999999999999999999"}]') == (
        "invalid cursor format, partition: 0 offset: 99999999999999999999")


def test_stream_start_expired_offset_is_412():
    assert stream_412('[{"partition":"2","offset":"001-0001-000000000000000001"}]') == (
        f"offset 000000000000000001 for partition 2 event type {ET}" + UNAVAILABLE_TAIL)
    assert stream_412('[{"partition":"0","offset":"-2"}]') == (
        f"offset -2 for partition 0 event type {ET}" + UNAVAILABLE_TAIL)


def test_stream_start_future_offset_is_412_with_the_same_text():
    assert stream_412('[{"partition":"0","offset":"5"}]') == (
        f"offset 000000000000000005 for partition 0 event type {ET}" + UNAVAILABLE_TAIL)


def test_stream_start_other_timeline_is_412():
    assert stream_412('[{"partition":"0","offset":"001-0002-000000000000000001"}]') == (
        f"offset 000000000000000001 for partition 0 event type {ET}" + UNAVAILABLE_TAIL)


def test_stream_start_boundaries_are_available():
    header = '[{"partition":"2","offset":"2"},{"partition":"0","offset":"4"}]'
    assert stream_start(ET, BOUNDS, header) == {2: 2, 0: 4}


def test_stream_start_duplicate_partition_is_412():
    assert stream_412('[{"partition":"0","offset":"1"},{"partition":"0","offset":"2"}]') == (
        "duplicate partition ids provided in cursors")


# --- /partitions -------------------------------------------------------------------------

def test_list_partitions_without_cursors():
    views = list_partitions(ET, BOUNDS)
    assert [v["partition"] for v in views] == ["0", "1", "2", "3"]
    assert views[1] == partition_view(1, 0, 0)
    assert all("unconsumed_events" not in v for v in views)
    assert list_partitions(ET, BOUNDS, "") == views
    assert list_partitions(ET, BOUNDS, "[]") == views


def test_list_partitions_with_cursors_puts_them_last_in_request_order():
    views = list_partitions(ET, BOUNDS, '[{"partition":"2","offset":"BEGIN"},'
                                        '{"partition":"0","offset":"001-0001-000000000000000001"}]')
    assert [v["partition"] for v in views] == ["1", "3", "2", "0"]
    assert views[2]["unconsumed_events"] == 7
    assert views[3]["unconsumed_events"] == 3
    assert "unconsumed_events" not in views[0]


@pytest.mark.parametrize("cursors, detail", [
    ("xyz", "malformed cursors"),
    ('{"partition":"0","offset":"1"}', "malformed cursors"),
    ("null", "malformed cursors"),
    ('[{"partition":"0","offset":"1"},{"partition":"","offset":"1"}]', "partition must not be null"),
    ('[{"offset":"1"}]', "partition must not be null"),
    ('[{"partition":"0","offset":"1"},{"partition":"1","offset":""}]', "offset must not be null"),
    ('[{"partition":"0","offset":"1"},{"partition":"0","offset":"2"}]',
     "duplicate partition ids provided in cursors"),
    ('[{"partition":"9","offset":"1"}]', "invalid consumed_offset or partition"),
    ('[{"partition":"9","offset":"BEGIN"}]', "invalid consumed_offset or partition"),
    ('[{"partition":"0","offset":"xer"}]', "invalid offset xer for partition 0"),
    ('[{"partition":"0","offset":"001-0009-1"}]',
     f"offset 1 for partition 0 event type {ET}" + UNAVAILABLE_TAIL),
])
def test_list_partitions_bad_cursors_are_422(cursors, detail):
    assert detail_of(lambda: list_partitions(ET, BOUNDS, cursors)) == detail


def test_get_partition_returns_its_view():
    assert get_partition(ET, BOUNDS, "2") == partition_view(2, 3, 10)


@pytest.mark.parametrize("partition", ["4", "x", "01", ""])
def test_get_partition_unknown_is_404(partition):
    assert detail_of(lambda: get_partition(ET, BOUNDS, partition), NotFoundError) == "partition not found"


def test_get_partition_with_consumed_offset_adds_unconsumed_events():
    assert get_partition(ET, BOUNDS, "0", "1")["unconsumed_events"] == 3
    assert get_partition(ET, BOUNDS, "2", "BEGIN")["unconsumed_events"] == 7


def test_get_partition_with_consumed_offset_errors_are_422():
    assert detail_of(lambda: get_partition(ET, BOUNDS, "0", "xer")) == "invalid offset xer for partition 0"
    assert detail_of(lambda: get_partition(ET, BOUNDS, "0", "")) == "invalid offset  for partition 0"
    assert detail_of(lambda: get_partition(ET, BOUNDS, "7", "1")) == "invalid consumed_offset or partition"


# --- cursor operations ---------------------------------------------------------------------

def cursor(partition, offset):
    return {"partition": partition, "offset": offset}


def test_cursor_distances_adds_distance_to_each_query():
    body = [{"initial_cursor": cursor("0", "BEGIN"), "final_cursor": cursor("0", "001-0001-000000000000000001")},
            {"initial_cursor": cursor(2, "9"), "final_cursor": cursor("2", "001-0001-000000000000000004"),
             "distance": 99, "other": 1}]
    assert cursor_distances(BOUNDS, body) == [
        {"initial_cursor": cursor("0", "BEGIN"), "final_cursor": cursor("0", "001-0001-000000000000000001"),
         "distance": 2},
        {"initial_cursor": cursor("2", "9"), "final_cursor": cursor("2", "001-0001-000000000000000004"),
         "distance": -5},
    ]


def test_cursor_distances_equal_cursors_are_zero():
    body = [{"initial_cursor": cursor("1", "BEGIN"), "final_cursor": cursor("1", "001-0001--1")}]
    assert cursor_distances(BOUNDS, body)[0]["distance"] == 0


def test_cursor_distances_different_partitions_are_422():
    body = [{"initial_cursor": cursor("0", "1"), "final_cursor": cursor("2", "4")}]
    assert detail_of(lambda: cursor_distances(BOUNDS, body)) == (
        "Cursors with different partition. Pairs of cursors should have matching partitions.")


def test_cursor_distances_unknown_partition_is_422():
    body = [{"initial_cursor": cursor("9", "1"), "final_cursor": cursor("9", "4")}]
    assert detail_of(lambda: cursor_distances(BOUNDS, body)) == "Partition not found."
    body = [{"initial_cursor": cursor("9", "BEGIN"), "final_cursor": cursor("9", "4")}]
    assert detail_of(lambda: cursor_distances(BOUNDS, body)) == "problem converting cursors"


def test_cursor_distances_invalid_offset_is_422():
    body = [{"initial_cursor": cursor("0", "xyz"), "final_cursor": cursor("0", "4")}]
    assert detail_of(lambda: cursor_distances(BOUNDS, body)) == "problem converting cursors"


def test_cursor_distances_missing_fields_are_validation_422():
    body = [{"final_cursor": cursor("0", "4")},
            {"initial_cursor": cursor(None, "1"), "final_cursor": cursor("0", "")}]
    assert detail_of(lambda: cursor_distances(BOUNDS, body), InvalidFieldsError) == (
        'Field "list[0].initial_cursor" must not be null\n'
        'Field "list[1].initial_cursor.partition" must not be null\n'
        'Field "list[1].final_cursor.offset" cursor offset cannot be empty\n')


@pytest.mark.parametrize("body", [{}, "x", None, [1], [{"initial_cursor": "x", "final_cursor": "y"}],
                                  [{"initial_cursor": cursor(["0"], "1"), "final_cursor": cursor("0", "1")}]])
def test_cursor_distances_body_of_wrong_shape_is_400(body):
    with pytest.raises(InvalidRequestError):
        cursor_distances(BOUNDS, body)


def test_cursors_lag_reports_views_in_request_order():
    assert cursors_lag(BOUNDS, [cursor("1", "BEGIN"), cursor("0", "BEGIN"), cursor("0", "4")]) == [
        partition_view(1, 0, 0) | {"unconsumed_events": 0},
        partition_view(0, 0, 5) | {"unconsumed_events": 5},
        partition_view(0, 0, 5) | {"unconsumed_events": 0},
    ]
    assert cursors_lag(BOUNDS, []) == []


def test_cursors_lag_errors_are_422():
    assert detail_of(lambda: cursors_lag(BOUNDS, [cursor("7", "1")])) == "Partition not found."
    assert detail_of(lambda: cursors_lag(BOUNDS, [cursor("0", "x")])) == "problem converting cursors"
    assert detail_of(lambda: cursors_lag(BOUNDS, [cursor("0", None)]), InvalidFieldsError) == (
        'Field "list[0].offset" must not be null\n')
    assert detail_of(lambda: cursors_lag(BOUNDS, [cursor("", "1")]), InvalidFieldsError) == (
        'Field "list[0].partition" cursor partition cannot be empty\n')


def test_shifted_cursors_moves_each_cursor_in_request_order():
    body = [cursor("1", "BEGIN"), {**cursor("0", "BEGIN"), "shift": 1}, {**cursor("0", "BEGIN"), "shift": 2},
            {**cursor("2", "001-0001-000000000000000009"), "shift": -7}, {**cursor("0", "3"), "shift": "1"}]
    assert shifted_cursors(BOUNDS, body) == [
        cursor("1", "001-0001--1"),
        cursor("0", "001-0001-000000000000000000"),
        cursor("0", "001-0001-000000000000000001"),
        cursor("2", "001-0001-000000000000000002"),
        cursor("0", "001-0001-000000000000000004"),
    ]


def test_shifted_cursors_begin_minus_one_is_422():
    body = [{**cursor("0", "BEGIN"), "shift": -1}]
    assert detail_of(lambda: shifted_cursors(BOUNDS, body)) == TIMELINE_NOT_FOUND


def test_shifted_cursors_past_newest_is_422():
    body = [{**cursor("0", "BEGIN"), "shift": 6}]
    assert detail_of(lambda: shifted_cursors(BOUNDS, body)) == TIMELINE_NOT_FOUND


def test_shifted_cursors_from_unavailable_cursor_is_422():
    body = [{**cursor("2", "001-0001-000000000000000001"), "shift": 5}]
    assert detail_of(lambda: shifted_cursors(BOUNDS, body)) == "problem converting cursors"


def test_shifted_cursors_unknown_partition_is_422():
    assert detail_of(lambda: shifted_cursors(BOUNDS, [cursor("5", "1")])) == "Partition not found."


@pytest.mark.parametrize("value", [True, "x", [1], {"a": 1}, 2**63])
def test_shifted_cursors_bad_shift_is_400(value):
    with pytest.raises(InvalidRequestError):
        shifted_cursors(BOUNDS, [{**cursor("0", "1"), "shift": value}])


def test_shifted_cursors_null_shift_is_zero():
    assert shifted_cursors(BOUNDS, [{**cursor("0", "1"), "shift": None}]) == [
        cursor("0", "001-0001-000000000000000001")]
