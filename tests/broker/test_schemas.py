"""JSON Schema handling: registration checks, effective schemas, event
validation and its messages, never fetching a `$ref`, and schema evolution."""

import copy
import datetime
import json
import select
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import schemas
from broker.errors import UnprocessableError
from broker.event_validation import Validator, all_date_times, is_date_time
from broker.schema_evolution import Level, bump, evolve, schema_changes
from broker.schema_shapes import defines_property

EID = "5c4f1c4e-2d4b-4f4e-9b1a-3f2a1b0c9d8e"
UUID_PATTERN = "^[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}$"
ORDER_SCHEMA = {
    "properties": {
        "order_number": {"type": "string"},
        "status": {"type": "string", "enum": ["created", "paid"]},
        "placed_at": {"type": "string", "format": "date-time"},
        "total": {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]},
        "lines": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}},
    },
    "required": ["order_number", "status"],
}


def check(schema, **kw):
    args = {"name": "shop.order", "category": "business", "compatibility_mode": "forward",
            "cleanup_policy": "delete", **kw}
    return schemas.check_schema(schema if isinstance(schema, str) else json.dumps(schema), **args)


def refusal(schema, **kw):
    with pytest.raises(UnprocessableError) as e:
        check(schema, **kw)
    return e.value.detail


def validator(schema, category="business", mode="forward", cleanup="delete", name="shop.order"):
    return schemas.event_validator(schema, name=name, category=category, compatibility_mode=mode,
                                   cleanup_policy=cleanup)


def business_event(**fields):
    return {"metadata": {"eid": EID, "occurred_at": "2024-04-11T10:15:30.123Z"},
            "order_number": "A-1", "status": "paid", **fields}


# Registration checks


def test_check_schema_returns_parsed_user_schema():
    assert check(ORDER_SCHEMA) == ORDER_SCHEMA


@pytest.mark.parametrize("text", ["{", "[]", '"object"', '{"a": NaN}', '{"a": 1, "a": 2}', "{} x"])
def test_check_schema_refuses_text_that_is_not_a_json_object(text):
    assert refusal(text).startswith("schema must be a valid json: ")


@pytest.mark.parametrize("root_type", ["array", ["object"], "string"])
def test_check_schema_refuses_root_type_other_than_object(root_type):
    assert refusal({"type": root_type}) == '"type" of root element in schema can only be "object"'


@pytest.mark.parametrize("schema", [
    {"properties": {"a": {"type": "objekt"}}},
    {"properties": {"a": 5}},
    {"properties": {"a": {"minLength": -1}}},
    {"properties": {"a": {"enum": "x"}}},
    {"anyOf": [{}], "oneOf": [{}]},
    {"properties": {"a": {"$ref": "#/definitions/missing"}}},
])
def test_check_schema_refuses_invalid_draft4_schema(schema):
    assert refusal(schema).startswith("schema must be a valid json-schema: ")


def test_check_schema_accepts_empty_required_as_nakadi_does():
    check({"properties": {"a": {"type": "object", "required": []}}, "required": []})


@pytest.mark.parametrize("ref", ["http://example.org/x.json", "x.json", "//host/x", "file:///etc/passwd"])
def test_check_schema_refuses_external_ref(ref):
    assert refusal({"properties": {"a": {"$ref": ref}}}) == f"external url reference is not supported: {ref}"


def test_check_schema_ignores_ref_named_property():
    check({"properties": {"$ref": {"type": "string"}}})


@pytest.mark.parametrize("schema", [
    {"properties": {"a": {"pattern": "("}}},
    {"properties": {"a": {"pattern": "a(?=b)"}}},
    {"properties": {"a": {"pattern": "(a)\\1"}}},
    {"patternProperties": {"[": {}}},
])
def test_check_schema_refuses_regex_the_engine_cannot_compile(schema):
    assert refusal(schema).startswith("invalid regex pattern in the schema: ")


def test_check_schema_refuses_metadata_in_business_schema():
    assert refusal({"properties": {"metadata": {"type": "object"}}}) == '"metadata" property is reserved'


@pytest.mark.parametrize("category", ["undefined", "data"])
def test_check_schema_allows_metadata_outside_business(category):
    check({"properties": {"metadata": {"type": "object"}}}, category=category)


def test_check_schema_refuses_data_schema_whose_refs_break_inside_the_envelope():
    schema = {"properties": {"a": {"type": "string"}, "b": {"$ref": "#/properties/a"}}}
    check(schema, category="undefined")
    assert refusal(schema, category="data").startswith("schema must be a valid json-schema: ")


def test_check_schema_data_keeps_definitions_resolvable():
    check({"properties": {"a": {"$ref": "#/definitions/s"}}, "definitions": {"s": {"type": "string"}}},
          category="data")


def test_check_schema_compatible_refuses_not_additional_items_and_unknown_keywords():
    schema = {"x-extension": 1, "properties": {
        "a": {"not": {"type": "string"}},
        "b": {"type": "array", "items": [{"type": "string"}], "additionalItems": False},
        "c": {"type": "array", "items": [{"not": {}}]},
    }}
    detail = refusal(schema, compatibility_mode="compatible")
    assert detail.startswith("Invalid schema: ")
    found = {f"Invalid {part}" for part in detail.removeprefix("Invalid schema: Invalid ").split(", Invalid ")}
    assert found == {
        "Invalid schema found in [#]: extraneous key [x-extension] is not permitted",
        "Invalid schema found in [#/properties/a]: extraneous key [not] is not permitted",
        "Invalid schema found in [#/properties/b]: extraneous key [additionalItems] is not permitted",
        "Invalid schema found in [#/properties/c/items]: expected type: JSONObject, found: JSONArray",
        "Invalid schema found in [#/properties/c/items/0]: extraneous key [not] is not permitted",
    }


def test_check_schema_compatible_allows_additional_and_pattern_properties():
    check({"properties": {"a": {"type": "object", "additionalProperties": {"type": "string"},
                                "patternProperties": {"^x": {}}}}}, compatibility_mode="compatible")


def test_check_schema_forward_allows_unknown_keywords_and_not():
    check({"x-extension": 1, "properties": {"a": {"not": {"type": "string"}}}})


# Never fetching a remote $ref


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    yield server
    server.close()


def connections_seen(server):
    seen = 0
    while select.select([server], [], [], 0.2)[0]:
        server.accept()[0].close()
        seen += 1
    return seen


def test_remote_ref_is_never_fetched(listener):
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    remote_ref = {"properties": {"a": {"$ref": f"{url}/x.json"}}}
    with pytest.raises(UnprocessableError, match="external url reference is not supported"):
        check(remote_ref)
    for schema in (remote_ref, {"id": f"{url}/", "properties": {"a": {"$ref": "y.json"}}}):
        with pytest.raises(UnprocessableError):
            Validator(schema, checks_occurred_at=False)
    used = validator({"$schema": f"{url}/schema", "id": f"{url}/root.json",
                      "properties": {"a": {"$ref": "#/definitions/s"}}, "definitions": {"s": {"type": "string"}}},
                     category="undefined")
    assert used.validate({"a": 1}) == "#/a: expected type: String, found: Integer"
    assert connections_seen(listener) == 0


# Effective schema


def effective(schema, category="business", mode="forward", cleanup="delete"):
    return schemas.effective_schema(schema, name="shop.order", category=category, compatibility_mode=mode,
                                    cleanup_policy=cleanup)


def test_effective_schema_undefined_is_the_user_schema():
    assert effective(ORDER_SCHEMA, "undefined") == ORDER_SCHEMA


def test_effective_schema_business_adds_required_metadata():
    result = effective(ORDER_SCHEMA)
    assert result["type"] == "object"
    assert result["properties"]["metadata"] == schemas.metadata_schema("shop.order", "delete")
    assert result["required"] == ["order_number", "status", "metadata"]
    assert "metadata" not in ORDER_SCHEMA["properties"]


def test_effective_schema_data_wraps_user_schema_in_envelope():
    user = {"properties": {"a": {"$ref": "#/definitions/s"}}, "definitions": {"s": {"type": "string"}}}
    result = effective(user, "data")
    assert result["additionalProperties"] is False
    assert set(result["required"]) == {"metadata", "data_type", "data_op", "data"}
    assert result["properties"]["data_op"] == {"type": "string", "enum": ["C", "U", "D", "S"]}
    assert result["properties"]["data"] == {"properties": {"a": {"$ref": "#/definitions/s"}}}
    assert result["definitions"] == {"s": {"type": "string"}}


def test_effective_schema_compatible_closes_nested_objects_and_arrays():
    result = effective(ORDER_SCHEMA, "undefined", "compatible")
    assert result["additionalProperties"] is False
    assert result["properties"]["total"]["additionalProperties"] is False
    assert result["properties"]["lines"]["additionalItems"] is False
    assert result["properties"]["lines"]["items"]["additionalProperties"] is False
    assert result["properties"]["order_number"] == {"type": "string"}
    combined = effective({"anyOf": [{"properties": {"a": {}}}], "definitions": {"d": {"type": "object"}}},
                         "undefined", "compatible")
    assert combined["anyOf"][0]["additionalProperties"] is False
    assert combined["definitions"]["d"]["additionalProperties"] is False


def test_metadata_schema_compaction_key_required_only_when_compacted():
    compacted = schemas.metadata_schema("t", "compact")
    assert "partition_compaction_key" in compacted["required"]
    assert "partition_compaction_key" not in schemas.metadata_schema("t", "delete")["properties"]
    assert compacted["additionalProperties"] is False


# Event validation


def test_validator_accepts_valid_business_event():
    assert validator(ORDER_SCHEMA).validate(business_event(placed_at="2024-04-11T10:15:29+02:00")) is None


@pytest.mark.parametrize("field", ["received_at", "version", "published_by"])
def test_validator_refuses_enrichment_fields_from_producer(field):
    event = business_event()
    event["metadata"][field] = "x"
    assert validator(ORDER_SCHEMA).validate(event) == f"#/metadata: extraneous key [{field}] is not permitted"


def test_validator_refuses_eid_that_is_not_a_uuid():
    event = business_event()
    event["metadata"]["eid"] = "x"
    expected = f"#/metadata/eid: string [x] does not match pattern {UUID_PATTERN}"
    assert validator(ORDER_SCHEMA).validate(event) == expected


def test_validator_refuses_event_type_other_than_the_name():
    event = business_event()
    event["metadata"]["event_type"] = "other"
    assert validator(ORDER_SCHEMA).validate(event) == "#/metadata/event_type: other is not a valid enum value"


@pytest.mark.parametrize("occurred_at", ["yesterday", "2024-04-11", "2024-04-11T10:15:30", "2024-02-30T10:15:30Z",
                                         "2016-12-31T23:59:60Z", "2024-04-11T10:15:30+19:00"])
def test_validator_refuses_occurred_at_that_is_not_rfc3339(occurred_at):
    event = business_event()
    event["metadata"]["occurred_at"] = occurred_at
    assert validator(ORDER_SCHEMA).validate(event) == "#/metadata/occurred_at:must be a valid date-time"


def test_validator_checks_date_time_format_in_user_schema():
    assert validator(ORDER_SCHEMA).validate(business_event(placed_at="2024-13-01T00:00:00Z")) == (
        "#/placed_at: must be a valid date-time")


def test_validator_checks_metadata_field_types():
    event = business_event()
    event["metadata"].update(parent_eids=["nope"], span_ctx={"ot-tracer-spanid": 42}, partition=1)
    lines = validator(ORDER_SCHEMA).validate(event).split("\n")
    assert lines[0] == "#: 3 schema violations found"
    assert set(lines[1:]) == {
        f"#/metadata/parent_eids/0: string [nope] does not match pattern {UUID_PATTERN}",
        "#/metadata/span_ctx/ot-tracer-spanid: expected type: String, found: Integer",
        "#/metadata/partition: expected type: String, found: Integer",
    }


def test_validator_requires_compaction_key_only_for_compacted_types():
    event = business_event()
    assert validator(ORDER_SCHEMA, cleanup="compact").validate(event) == (
        "#/metadata: required key [partition_compaction_key] not found")
    event["metadata"]["partition_compaction_key"] = "k"
    assert validator(ORDER_SCHEMA, cleanup="compact_and_delete").validate(event) is None
    assert validator(ORDER_SCHEMA).validate(event) == (
        "#/metadata: extraneous key [partition_compaction_key] is not permitted")


def test_validator_data_event_needs_envelope_fields():
    lines = validator(ORDER_SCHEMA, category="data").validate({"data": {"order_number": "1", "status": "paid"}})
    lines = lines.split("\n")
    assert lines[0] == "#: 3 schema violations found"
    assert set(lines[1:]) == {f"#: required key [{key}] not found" for key in ("metadata", "data_op", "data_type")}


def test_validator_data_event_refuses_extra_top_level_field():
    event = {"metadata": business_event()["metadata"], "data_type": "order", "data_op": "C",
             "data": {"order_number": "1", "status": "paid"}}
    data_validator = validator(ORDER_SCHEMA, category="data")
    assert data_validator.validate(event) is None
    assert data_validator.validate({**event, "foo": 1}) == "#: extraneous key [foo] is not permitted"


def test_validator_undefined_event_checked_against_user_schema():
    undefined = validator(ORDER_SCHEMA, category="undefined")
    assert undefined.validate({"order_number": "1", "status": "paid"}) is None
    assert undefined.validate({"order_number": "1", "status": "lost"}) == "#/status: lost is not a valid enum value"


def test_validator_compatible_mode_refuses_undeclared_fields():
    strict = validator(ORDER_SCHEMA, mode="compatible")
    assert strict.validate(business_event(total={"amount": 1, "tax": 2})) == (
        "#/total: extraneous key [tax] is not permitted")
    assert validator(ORDER_SCHEMA).validate(business_event(total={"amount": 1, "tax": 2})) is None


def test_validator_checks_currency_codes():
    currency = validator({"properties": {"c": {"type": "string", "format": "iso-4217"}}}, category="undefined")
    assert currency.validate({"c": "EUR"}) is None
    assert currency.validate({"c": "EURO"}) == "#/c: [EURO] is not a valid alphabetic ISO 4217 currency code"


def test_validator_compares_integers_beyond_64_bits_exactly():
    bounded = validator({"properties": {"n": {"type": "integer", "maximum": 2 ** 70}}}, category="undefined")
    assert bounded.validate({"n": 2 ** 70}) is None
    assert bounded.validate({"n": 2 ** 70 + 1}) == f"#/n: {2 ** 70 + 1} is not less or equal to {2 ** 70}"



def _variants():
    """A valid business event and one of each way it can be invalid."""
    yield business_event()
    yield business_event(placed_at="2024-13-01T00:00:00Z")
    yield business_event(status="lost")
    for occurred_at in ("2024-02-30T10:15:30Z", "yesterday", "2024-02-29T10:15:30Z"):
        event = business_event()
        event["metadata"]["occurred_at"] = occurred_at
        yield event
    event = business_event()
    event["metadata"]["received_at"] = "x"
    yield event


@pytest.mark.parametrize("event", list(_variants()))
def test_validator_all_valid_agrees_with_validating_each_event(event):
    checked = validator(ORDER_SCHEMA)
    assert checked.all_valid([business_event(), event, business_event()]) is (checked.validate(event) is None)


def test_validator_all_valid_leaves_schemas_with_refs_to_each_event():
    schema = {"definitions": {"status": {"type": "string", "enum": ["paid"]}},
              "properties": {"status": {"$ref": "#/definitions/status"}}}
    checked = validator(schema)
    assert not checked.all_valid([business_event()])
    assert checked.validate(business_event()) is None
    assert checked.validate(business_event(status="created")) is not None

offsets = st.integers(-18 * 60, 18 * 60).map(lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes)))


@given(st.datetimes(min_value=datetime.datetime(1, 1, 1), timezones=offsets),
       st.sampled_from(["seconds", "milliseconds", "microseconds"]))
def test_is_date_time_accepts_every_rfc3339_rendering(moment, timespec):
    text = moment.isoformat(timespec=timespec)
    assert is_date_time(text)
    assert is_date_time(text.replace("T", "t").replace("+00:00", "Z"))


@pytest.mark.parametrize("text", ["2024-04-11 10:15:30Z", "2024-04-11T10:15Z", "2024-04-11T10:15:30.Z",
                                  "2024-04-11T10:15:30.1234567891Z", "2024-04-11T10:15:30+0100",
                                  "2024-04-11T10:15:30+01:00:00", "2023-02-29T00:00:00Z", "+2024-04-11T10:15:30Z",
                                  "２０２４-04-11T10:15:30Z"])
def test_is_date_time_refuses_non_rfc3339(text):
    assert not is_date_time(text)


date_time_like = st.one_of(
    st.datetimes(min_value=datetime.datetime(1, 1, 1), timezones=offsets).map(lambda moment: moment.isoformat()),
    st.sampled_from(["2024-02-29T10:00:00Z", "2023-02-29T10:00:00Z", "2024-04-31T00:00:00Z",
                     "2024-04-11T10:15:30Z\n2024-04-11T10:15:30Z", "2024-04-11T10:15:30Z\n", "", "\n"]),
    st.text(alphabet="0123456789-T:Z.+\n", max_size=30))


@given(st.lists(date_time_like, max_size=12))
def test_all_date_times_agrees_with_is_date_time(texts):
    assert all_date_times(texts) == all(is_date_time(text) for text in texts)


# defines_property


@pytest.mark.parametrize(("schema", "path", "defined"), [
    ({"properties": {"a": {"properties": {"b": {}}}}}, "a.b", True),
    ({"properties": {"a": {"properties": {"b": {}}}}}, "a.c", False),
    ({"properties": {"a": {"type": "string"}}}, "a.b", False),
    ({"patternProperties": {"^x[0-9]+$": {}}}, "x12", True),
    ({"patternProperties": {"x": {}}}, "yx", False),
    ({"allOf": [{"properties": {"a": {}}}, {"properties": {"a": {}}}]}, "a", True),
    ({"allOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, "a", False),
    ({"anyOf": [{"properties": {"a": {}}}, {"properties": {"b": {}}}]}, "a", True),
    ({"oneOf": [{"properties": {"a": {}}}, {"properties": {"a": {}}}]}, "a", False),
    ({"properties": {"a": {"$ref": "#/definitions/d"}}, "definitions": {"d": {"properties": {"b": {}}}}}, "a.b", True),
    ({"dependencies": {"a": {"properties": {"b": {}}}}}, "b", True),
    ({"$ref": "#", "properties": {"a": {}}}, "a", False),
    ({"$ref": "#/definitions/n", "definitions": {"n": {"properties": {"next": {"$ref": "#/definitions/n"}}}}},
     "next.next.next", True),
])
def test_defines_property_reads_schema_as_nakadi_does(schema, path, defined):
    assert defines_property(schema, path) is defined


# Schema evolution


@pytest.mark.parametrize(("old", "new", "expected"), [
    ({"id": "a"}, {"id": "b"}, ["ID_CHANGED #/"]),
    ({"title": "a"}, {"title": "b"}, ["TITLE_CHANGED #/"]),
    ({"description": "a"}, {"description": "b"}, ["DESCRIPTION_CHANGED #/"]),
    ({"type": "object"}, {"type": "array"}, ["TYPE_CHANGED #/"]),
    ({}, {"type": "string"}, ["TYPE_NARROWED #/"]),
    ({}, {"properties": {}}, []),
    ({"type": "string", "minLength": 1}, {"type": "string", "minLength": 2}, ["ATTRIBUTE_VALUE_CHANGED #/minLength"]),
    ({"type": "string", "pattern": "a"}, {"type": "string", "pattern": "b"}, ["ATTRIBUTE_VALUE_CHANGED #/pattern"]),
    ({"type": "string"}, {"type": "string", "pattern": "b"}, []),
    ({"type": "integer"}, {"type": "number"}, []),
    ({"type": "number", "maximum": 1}, {"type": "number", "maximum": 2}, ["ATTRIBUTE_VALUE_CHANGED #/maximum"]),
    ({"type": "string", "enum": ["a", "b"]}, {"type": "string", "enum": ["b", "a"]}, []),
    ({"type": "string", "enum": ["a"]}, {"type": "string", "enum": ["b"]}, ["ENUM_ARRAY_CHANGED #/enum"]),
    ({"type": ["object"]}, {"type": ["object", "array"]}, ["SUB_SCHEMA_CHANGED #/"]),
    ({"anyOf": [{"type": "string"}]}, {"anyOf": [{"type": "number"}]}, ["TYPE_CHANGED #/anyOf/0"]),
    ({"anyOf": [{"type": "string"}]}, {"allOf": [{"type": "string"}]}, ["COMPOSITION_METHOD_CHANGED #/"]),
    ({"properties": {"a": {}}}, {"properties": {"b": {}}}, ["PROPERTY_REMOVED #/properties/a"]),
    ({"properties": {"a": {}}}, {"properties": {"a": {}, "b": {}}}, ["PROPERTIES_ADDED #/properties"]),
    ({"properties": {"a": {"type": "string"}}}, {"properties": {"a": {"type": "number"}}},
     ["TYPE_CHANGED #/properties/a"]),
    ({"dependencies": {"a": ["b"]}}, {"dependencies": {"b": ["a"]}}, ["DEPENDENCY_ARRAY_CHANGED #/dependencies/a"]),
    ({"dependencies": {"a": {}}}, {"dependencies": {"b": {}}}, ["DEPENDENCY_SCHEMA_CHANGED #/dependencies"]),
    ({"required": ["a"]}, {"required": ["b"]}, ["REQUIRED_ARRAY_CHANGED #/required"]),
    ({"required": ["a"]}, {}, ["TYPE_CHANGED #/"]),
    ({"properties": {"a": {}}}, {"properties": {"a": {}}, "required": ["a"]}, ["REQUIRED_ARRAY_EXTENDED #/required"]),
    ({"maxProperties": 2}, {"maxProperties": 1}, ["ATTRIBUTE_VALUE_CHANGED #/maxProperties"]),
    ({"type": "array", "items": {}}, {"type": "array"}, ["SCHEMA_REMOVED #/items"]),
    ({"type": "array", "items": [{}, {}]}, {"type": "array"}, ["NUMBER_OF_ITEMS_CHANGED #/"]),
    ({"type": "array", "items": [{}]}, {"type": "array", "items": {}},
     ["SCHEMA_REMOVED #/items", "NUMBER_OF_ITEMS_CHANGED #/"]),
    ({"type": "array", "uniqueItems": True}, {"type": "array"}, ["ATTRIBUTE_VALUE_CHANGED #/uniqueItems"]),
    ({"items": {"$ref": "#/definitions/r"}, "definitions": {"r": {"type": "string"}}},
     {"items": {"$ref": "#/definitions/r"}, "definitions": {"r": {"type": "number"}}}, ["TYPE_CHANGED #/items/$ref"]),
    ({"additionalProperties": True}, {"additionalProperties": False},
     ["ADDITIONAL_PROPERTIES_CHANGED #/additionalProperties"]),
    ({"additionalProperties": True}, {"additionalProperties": {"type": "number"}},
     ["ADDITIONAL_PROPERTIES_NARROWED #/additionalProperties"]),
    ({"additionalItems": True}, {"additionalItems": False}, ["ADDITIONAL_ITEMS_CHANGED #/additionalItems"]),
])
def test_schema_changes_finds_nakadis_change_kinds(old, new, expected):
    assert [f"{change.kind} {change.path}" for change in schema_changes(old, new)] == expected


def test_schema_changes_terminates_on_recursive_schema():
    tree = {"definitions": {"node": {"type": "object", "properties": {
        "children": {"type": "array", "items": {"$ref": "#/definitions/node"}}}}},
        "properties": {"root": {"$ref": "#/definitions/node"}}}
    assert schema_changes(tree, copy.deepcopy(tree)) == []


def evolved(old, new, old_mode="forward", new_mode=None, version="1.0.0"):
    as_text = (lambda s: s if isinstance(s, str) else json.dumps(s))
    return evolve(as_text(old), as_text(new), old_mode=old_mode, new_mode=new_mode or old_mode, version=version)


def test_evolve_identical_text_keeps_version():
    assert evolved(ORDER_SCHEMA, ORDER_SCHEMA, version="1.2.3") == "1.2.3"


def test_evolve_text_change_without_semantic_change_is_patch():
    assert evolved('{"default": "this"}', '{"default": "that"}') == "1.0.1"
    assert evolved('{"type":"object"}', '{"type": "object"}') == "1.0.1"


def test_evolve_description_change_is_patch():
    assert evolved({"description": "a"}, {"description": "b"}, version="1.1.1") == "1.1.2"


def test_evolve_adding_optional_property_is_minor():
    bigger = copy.deepcopy(ORDER_SCHEMA)
    bigger["properties"]["note"] = {"type": "string"}
    assert evolved(ORDER_SCHEMA, bigger, version="1.0.3") == "1.1.0"
    assert evolved(ORDER_SCHEMA, bigger, "compatible") == "1.1.0"


def test_evolve_forward_refuses_major_change_naming_it():
    smaller = copy.deepcopy(ORDER_SCHEMA)
    del smaller["properties"]["lines"]
    smaller["properties"]["status"]["enum"] = ["paid"]
    with pytest.raises(UnprocessableError) as e:
        evolved(ORDER_SCHEMA, smaller)
    assert e.value.detail == ("Invalid schema: #/properties/status/enum: enum array changed, "
                              "#/properties/lines: schema properties cannot be removed")


def test_evolve_compatible_treats_narrowing_as_major():
    old, new = {"properties": {"a": {}}}, {"properties": {"a": {"type": "string"}}}
    assert evolved(old, new) == "1.1.0"
    with pytest.raises(UnprocessableError, match="#/properties/a: schema types cannot be narrowed"):
        evolved(old, new, "compatible")


def test_evolve_none_allows_major_changes_with_forward_levels():
    assert evolved({"properties": {"a": {}}}, {"properties": {"b": {}}}, "none", version="1.4.2") == "2.0.0"
    assert evolved({"properties": {"a": {}}}, {"properties": {"a": {}, "b": {}}}, "none") == "1.1.0"


def test_evolve_forward_to_compatible_allows_only_closing_and_additions():
    old = {"properties": {"a": {"type": "string"}}}
    closed = {"properties": {"a": {"type": "string"}, "b": {}}, "additionalProperties": False}
    assert evolved(old, closed, "forward", "compatible") == "2.0.0"
    with pytest.raises(UnprocessableError, match="#/properties/a: schema types cannot be narrowed"):
        evolved({"properties": {"a": {}}}, {"properties": {"a": {"type": "string"}}}, "forward", "compatible")


versions = st.tuples(*[st.integers(0, 10 ** 6)] * 3).map(lambda v: ".".join(map(str, v)))


def semver(version):
    return tuple(int(part) for part in version.split("."))


@given(versions, st.sampled_from(list(Level)))
def test_bump_orders_versions_by_level(version, level):
    bumped = bump(version, level)
    assert (bumped == version) is (level is Level.NO_CHANGES)
    assert semver(bumped) >= semver(version)
    changed = [i for i, (a, b) in enumerate(zip(semver(version), semver(bumped))) if a != b]
    if level is not Level.NO_CHANGES:
        assert changed[0] == {Level.MAJOR: 0, Level.MINOR: 1, Level.PATCH: 2}[level]
        assert all(part == 0 for part in semver(bumped)[changed[0] + 1:])


json_schemas = st.recursive(
    st.fixed_dictionaries({}, optional={"type": st.sampled_from(["string", "number", "object", "array"]),
                                        "description": st.text(max_size=3), "minLength": st.integers(0, 3),
                                        "enum": st.lists(st.integers(), min_size=1, max_size=2, unique=True)}),
    lambda inner: st.fixed_dictionaries({}, optional={
        "properties": st.dictionaries(st.text("ab", max_size=2), inner, max_size=3), "items": inner,
        "anyOf": st.lists(inner, min_size=1, max_size=2), "required": st.lists(st.sampled_from("ab"), unique=True),
        "additionalProperties": st.one_of(st.booleans(), inner)}),
    max_leaves=8)


@given(json_schemas, json_schemas, versions)
def test_evolve_version_never_decreases_and_same_schema_keeps_it(old, new, version):
    assert schema_changes(old, copy.deepcopy(old)) == []
    assert evolved(old, old, "none", version=version) == version
    assert semver(evolved(old, new, "none", version=version)) >= semver(version)
