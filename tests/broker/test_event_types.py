"""The event-type model: reading requests, names, creation and update rules,
partition counts and the JSON form."""

import json
import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.errors import InvalidRequestError, UnprocessableError
from broker.event_type_json import from_json, parse_event_type, to_json
from broker.event_types import (
    Audience,
    Category,
    CleanupPolicy,
    CompatibilityMode,
    EnrichmentStrategy,
    EventTypeLimits,
    Statistic,
    check_create,
    check_update,
    event_validator,
    is_valid_name,
    partition_count,
)

NOW = datetime(2024, 4, 11, 10, 15, 30, 123456, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
SCHEMA = {"properties": {"order_number": {"type": "string"}, "customer": {"type": "object", "properties": {
    "id": {"type": "string"}}}}, "required": ["order_number"]}
STATISTIC = {"messages_per_minute": 100, "message_size": 300, "read_parallelism": 4, "write_parallelism": 2}
AUTHORIZATION = {role: [{"data_type": "service", "value": "shop"}] for role in ("admins", "readers", "writers")}


def body(**fields):
    """A valid request body with `fields` changed; a field set to `...` is left out."""
    request = {"name": "shop.order-created_v2", "owning_application": "shop", "category": "business",
               "enrichment_strategies": ["metadata_enrichment"], "schema": {"type": "json_schema",
                                                                             "schema": json.dumps(SCHEMA)}}
    request.update(fields)
    return {key: value for key, value in request.items() if value is not ...}


def created(**fields):
    return check_create(parse_event_type(body(**fields)), now=NOW)


def updated(old_fields, new_fields, **kw):
    return check_update(created(**old_fields), parse_event_type(body(**{**old_fields, **new_fields})), now=LATER, **kw)


def refused(call, *args, **kw):
    with pytest.raises(UnprocessableError) as e:
        call(*args, **kw)
    return e.value.detail


def update_refusal(old_fields, new_fields, **kw):
    return refused(updated, old_fields, new_fields, **kw)


def with_schema(schema):
    return {"type": "json_schema", "schema": json.dumps(schema)}


# Names


@pytest.mark.parametrize("name", ["a", "order", "shop.order-created_v2", "A.0.b", "x" * 255, "a-", "a_.b", "CON"])
def test_is_valid_name_accepts_nakadi_names(name):
    assert is_valid_name(name)


@pytest.mark.parametrize("name", [
    "", "x" * 256, "0abc", "-a", "_a", ".a", "a.", "a..b", "a/b", "../x", "..", "a\\b", "a\0b", "a b", "a:b",
    "a\nb", "ordеr", "ｏrder", "ᴀbc", "a٣", "a\u200bb", "Ⅻ", "ß", "a.-b", "a.\u0301b",
])
def test_is_valid_name_refuses_hostile_names(name):
    assert not is_valid_name(name)


@given(st.text(max_size=300))
def test_is_valid_name_only_admits_safe_ascii(name):
    if is_valid_name(name):
        assert name.isascii() and name[0] in string.ascii_letters and len(name) <= 255
        assert set(name) <= set(string.ascii_letters + string.digits + "-_.")
        assert ".." not in name and not name.endswith(".")


@given(st.lists(st.from_regex(r"[a-zA-Z0-9][-0-9a-zA-Z_]{0,8}", fullmatch=True), min_size=1, max_size=5),
       st.sampled_from(string.ascii_letters))
def test_is_valid_name_accepts_dotted_segments(segments, first):
    assert is_valid_name(first + ".".join(segments))


def test_parse_event_type_reports_bad_name_as_field_problems():
    assert refused(parse_event_type, body(name="")) == (
        'Field "name" format not allowed\nField "name" the length of the name must be >= 1 and <= 255\n')
    assert refused(parse_event_type, body(name="../etc")) == 'Field "name" format not allowed\n'


# Reading a request


def test_parse_event_type_fills_defaults_and_ignores_unknown_fields():
    et = parse_event_type(body(unknown={"x": 1}, enrichment_strategies=..., category="undefined"))
    assert et.enrichment_strategies == ()
    assert et.partition_strategy == "random"
    assert et.partition_key_fields == ()
    assert et.compatibility_mode is CompatibilityMode.FORWARD
    assert et.cleanup_policy is CleanupPolicy.DELETE
    assert (et.default_statistic, et.retention_ms, et.authorization, et.audience) == (None, None, None, None)
    assert (et.annotations, et.labels, et.created_at, et.schema.version) == (None, None, None, None)


def test_parse_event_type_reads_enums_case_insensitively_except_audience():
    et = parse_event_type(body(category="BUSINESS", enrichment_strategies=["Metadata_Enrichment"],
                               compatibility_mode="Compatible", cleanup_policy="COMPACT",
                               audience="company-internal", schema={"type": "JSON_SCHEMA", "schema": "{}"}))
    assert et.category is Category.BUSINESS
    assert et.enrichment_strategies == (EnrichmentStrategy.METADATA_ENRICHMENT,)
    assert (et.compatibility_mode, et.cleanup_policy) == (CompatibilityMode.COMPATIBLE, CleanupPolicy.COMPACT)
    assert et.audience is Audience.COMPANY_INTERNAL
    with pytest.raises(InvalidRequestError):
        parse_event_type(body(audience="Company-Internal"))


@pytest.mark.parametrize(("field", "value", "possible"), [
    ("category", "event", "undefined, data, business"),
    ("compatibility_mode", "strict", "forward, compatible, none"),
    ("cleanup_policy", "keep", "delete, compact, compact_and_delete"),
    ("enrichment_strategies", ["x"], "metadata_enrichment"),
    ("audience", "public", "component-internal, business-unit-internal, company-internal, external-partner, "
                           "external-public"),
])
def test_parse_event_type_refuses_unknown_enum_value_with_400(field, value, possible):
    with pytest.raises(InvalidRequestError) as e:
        parse_event_type(body(**{field: value}))
    shown = value[0] if isinstance(value, list) else value
    assert e.value.detail == f"Illegal enum value: '{shown}'. Possible values: [{possible}]"


def test_parse_event_type_lists_every_missing_required_field():
    assert refused(parse_event_type, {"compatibility_mode": None, "cleanup_policy": None}) == (
        'Field "name" may not be null\nField "owning_application" may not be null\n'
        'Field "category" may not be null\nField "schema" may not be null\n'
        'Field "compatibility_mode" may not be null\nField "cleanup_policy" may not be null\n')


def test_parse_event_type_checks_nested_objects():
    detail = refused(parse_event_type, body(
        schema={"type": "json_schema"},
        default_statistic={"messages_per_minute": -1, "message_size": 0, "read_parallelism": 0},
        authorization={"admins": [], "readers": [{"value": "x"}], "writers": [{"data_type": "a", "value": "b"}]},
        event_owner_selector={"type": "path", "name": ""}))
    assert detail.splitlines() == [
        'Field "schema.schema" may not be null',
        'Field "default_statistic.messages_per_minute" can\'t be less then zero',
        'Field "default_statistic.message_size" can\'t be less then 1',
        'Field "default_statistic.read_parallelism" at least one reader expected',
        'Field "default_statistic.write_parallelism" may not be null',
        'Field "authorization.admins" must contain at least one attribute',
        'Field "authorization.readers[0].data_type" may not be null',
        'Field "event_owner_selector.name" the length of the name must be >= 1',
        'Field "event_owner_selector.value" may not be null',
    ]


@pytest.mark.parametrize("request_body", [[], "x", body(name=5), body(schema="{}"), body(partition_key_fields="a"),
                                          body(default_statistic={"read_parallelism": True}),
                                          body(options={"retention_time": "1"}), body(annotations={"a": 1})])
def test_parse_event_type_refuses_wrong_json_types_with_400(request_body):
    with pytest.raises(InvalidRequestError):
        parse_event_type(request_body)


def test_parse_event_type_ignores_server_set_fields():
    et = parse_event_type(body(created_at="2020-01-01T00:00:00.000Z",
                               schema={"type": "json_schema", "schema": "{}", "version": "9.9.9"}))
    assert (et.created_at, et.schema.version) == (None, None)


def test_parse_event_type_checks_annotation_and_label_keys_and_values():
    detail = refused(parse_event_type, body(
        annotations={"Example.com/x": "v", "ok.example/key": "v" * 1001, "": "v"},
        labels={"team": "a b", "x" * 64: "v", "-x": "v"}))
    assert set(detail.splitlines()) == {
        'Field "annotations" Key name should be an optional lowercase domain name with path',
        'Field "annotations" Key prefix cannot be more than 253 characters.',
        'Field "annotations" Key name cannot be more than 63 characters.',
        'Field "annotations[ok.example/key]" size must be between 0 and 1000',
        'Field "annotations" Key cannot be empty',
        'Field "labels[team]" Should contain only allowed symbols',
        'Field "labels" Key name cannot be more than 63 characters.',
        'Field "labels" Key name should start and end with a letter or a digit',
    }
    et = parse_event_type(body(annotations={"nakadi.io/owner": "x", "a.b/c-d": "y"}, labels={"tier": "gold_1"}))
    assert dict(et.annotations) == {"nakadi.io/owner": "x", "a.b/c-d": "y"}


# Creation


def test_check_create_sets_version_times_and_defaults():
    et = created()
    assert et.schema.version == "1.0.0"
    assert et.created_at == et.updated_at == et.schema.created_at == NOW.replace(microsecond=123000)
    assert et.retention_ms == 172_800_000
    assert (dict(et.annotations), dict(et.labels)) == ({}, {})


@pytest.mark.parametrize(("retention", "detail"), [
    (10_799_999, 'Field "options.retention_time" can not be less than 10800000'),
    (345_600_001, 'Field "options.retention_time" can not be more than 345600000'),
])
def test_check_create_bounds_retention(retention, detail):
    assert refused(created, options={"retention_time": retention}) == detail


@pytest.mark.parametrize("retention", [10_800_000, 345_600_000])
def test_check_create_accepts_retention_bounds(retention):
    assert created(options={"retention_time": retention}).retention_ms == retention


def test_check_create_retention_bounds_are_configurable():
    et = parse_event_type(body(options={"retention_time": 1000}))
    assert check_create(et, now=NOW, limits=EventTypeLimits(retention_ms_min=1000)).retention_ms == 1000


@pytest.mark.parametrize(("fields", "detail"), [
    ({"category": "data", "enrichment_strategies": []}, "must define metadata enrichment strategy"),
    ({"category": "business", "enrichment_strategies": ...}, "must define metadata enrichment strategy"),
    ({"category": "undefined"}, "must not define enrichment strategy for undefined event type"),
    ({"enrichment_strategies": ["metadata_enrichment"] * 2},
     "enrichment strategies must not contain duplicated entries"),
    ({"partition_strategy": "hash"}, "partition_key_fields field should be set for partition strategy 'hash'"),
    ({"partition_strategy": "HASH"}, "partition strategy does not exist: HASH"),
    ({"partition_strategy": None}, "partition strategy must not be null"),
    ({"category": "undefined", "enrichment_strategies": ..., "partition_strategy": "user_defined"},
     "'user_defined' partition strategy can't be used for EventType of category 'undefined'"),
    ({"category": "undefined", "enrichment_strategies": ..., "cleanup_policy": "compact"},
     "cleanup_policy 'compact' and 'compact_and_delete' is not available for 'undefined' event type category"),
    ({"schema": {"type": "avro_schema", "schema": "{}"}}, "schema type avro_schema is not supported"),
    ({"schema": with_schema({"properties": {"metadata": {}}})}, '"metadata" property is reserved'),
    ({"ordering_instance_ids": ["order_number"]},
     "`ordering_instance_ids` field can not be defined without defining `ordering_key_fields`"),
    ({"ordering_key_fields": ["order_number", "missing", "customer.name"]},
     "ordering_key_fields [missing, customer.name] absent in schema"),
    ({"event_owner_selector": {"type": "path", "name": "owner", "value": "customer.team"}},
     "event_owner_selector.value [customer.team] absent in schema"),
    ({"event_owner_selector": {"type": "metadata", "name": "owner", "value": "x"}},
     "event_owner_selector specifying value for type 'metadata' is not supported"),
    ({"authorization": {**AUTHORIZATION, "admins": [{"data_type": "user", "value": "a"}] * 3,
                        "writers": [{"data_type": "user", "value": "b"}] * 2}},
     "authorization property 'ADMIN' contains duplicated attribute(s): user:a; "
     "authorization property 'WRITE' contains duplicated attribute(s): user:b"),
])
def test_check_create_refuses_broken_rule(fields, detail):
    assert refused(created, **fields) == detail


def test_check_create_accepts_the_allowed_combinations():
    created(category="data", ordering_key_fields=["data.order_number", "metadata.occurred_at"],
            ordering_instance_ids=["data.customer.id"], cleanup_policy="compact_and_delete")
    created(partition_strategy="hash", partition_key_fields=["not_in_schema_as_in_nakadi"],
            authorization=AUTHORIZATION, audience="external-public")
    created(event_owner_selector={"type": "path", "name": "owner", "value": "customer.id"})
    created(event_owner_selector={"type": "metadata", "name": "owner"})
    created(category="undefined", enrichment_strategies=[], schema=with_schema({"type": "object"}))


# Partition count


@pytest.mark.parametrize(("read", "write", "partitions"), [(1, 1, 1), (4, 2, 4), (2, 7, 7), (9, 3, 8), (100, 100, 8)])
def test_partition_count_is_max_parallelism_capped(read, write, partitions):
    assert partition_count(Statistic(1, 1, read, write)) == partitions


def test_partition_count_defaults_to_one_and_cap_is_configurable():
    assert partition_count(None) == 1
    assert partition_count(Statistic(1, 1, 30, 1), EventTypeLimits(partitions_max=16)) == 16


# JSON form


def test_to_json_writes_nakadis_shape():
    et = created(default_statistic=STATISTIC, authorization=AUTHORIZATION, audience="component-internal",
                 event_owner_selector={"type": "STATIC", "name": "owner", "value": "team-a"})
    assert to_json(et) == {
        "name": "shop.order-created_v2", "owning_application": "shop", "category": "business",
        "enrichment_strategies": ["metadata_enrichment"], "partition_strategy": "random",
        "partition_key_fields": [], "cleanup_policy": "delete", "ordering_key_fields": [],
        "ordering_instance_ids": [],
        "schema": {"type": "json_schema", "schema": json.dumps(SCHEMA), "version": "1.0.0",
                   "created_at": "2024-04-11T10:15:30.123Z"},
        "default_statistic": STATISTIC, "options": {"retention_time": 172800000},
        "authorization": AUTHORIZATION, "annotations": {}, "labels": {}, "compatibility_mode": "forward",
        "audience": "component-internal",
        "event_owner_selector": {"type": "static", "name": "owner", "value": "team-a"},
        "updated_at": "2024-04-11T10:15:30.123Z", "created_at": "2024-04-11T10:15:30.123Z",
    }


def test_to_json_omits_absent_audience_and_selector_but_writes_null_objects():
    document = to_json(created())
    assert "audience" not in document and "event_owner_selector" not in document
    assert document["authorization"] is None and document["default_statistic"] is None


def test_to_json_writes_times_in_utc():
    now = datetime(2024, 1, 1, 14, 0, 0, 5999, tzinfo=timezone(timedelta(hours=2)))
    assert to_json(check_create(parse_event_type(body()), now=now))["created_at"] == "2024-01-01T12:00:00.005Z"


def test_from_json_reads_back_what_to_json_wrote():
    et = created(default_statistic=STATISTIC, authorization=AUTHORIZATION, audience="external-partner",
                 annotations={"a/b": "c"}, ordering_key_fields=["order_number"], partition_strategy="hash",
                 partition_key_fields=["order_number"])
    assert from_json(json.loads(json.dumps(to_json(et)))) == et


# Updates


def test_check_update_keeps_creation_time_and_bumps_schema_version():
    bigger = {**SCHEMA, "properties": {**SCHEMA["properties"], "note": {"type": "string"}}}
    et = updated({}, {"schema": with_schema(bigger)})
    assert et.schema.version == "1.1.0"
    assert et.schema.created_at == et.updated_at == LATER.replace(microsecond=123000)
    assert et.created_at == NOW.replace(microsecond=123000)


def test_check_update_same_schema_keeps_schema_version_and_time():
    old = created()
    et = check_update(old, parse_event_type(body(owning_application="other")), now=LATER)
    assert et.schema == old.schema
    assert et.owning_application == "other"


def test_check_update_refuses_incompatible_schema_change():
    assert update_refusal({}, {"schema": with_schema({"properties": {"order_number": {"type": "number"}}})}) == (
        "Invalid schema: #/properties/order_number: schema types must be the same, "
        "#/properties/customer: schema properties cannot be removed, #/required: required array changed")


def test_check_update_refuses_name_other_than_path():
    assert update_refusal({}, {"name": "shop.other"}) == "path does not match resource name"


def test_check_update_allows_category_undefined_to_business():
    undefined = {"category": "undefined", "enrichment_strategies": []}
    et = updated(undefined, {"category": "business", "enrichment_strategies": ["metadata_enrichment"]})
    assert et.category is Category.BUSINESS


@pytest.mark.parametrize(("old", "new"), [
    ({"category": "business"}, {"category": "data"}),
    ({"category": "data"}, {"category": "business"}),
    ({"category": "undefined", "enrichment_strategies": []},
     {"category": "business", "enrichment_strategies": ["metadata_enrichment"], "compatibility_mode": "compatible"}),
    ({"category": "undefined", "enrichment_strategies": [], "compatibility_mode": "none"},
     {"category": "business", "enrichment_strategies": ["metadata_enrichment"], "compatibility_mode": "compatible"}),
])
def test_check_update_refuses_other_category_changes(old, new):
    assert update_refusal(old, new) == ("Category change is allowed only from 'undefined' to 'business'. "
                                        "'enrichment_strategies' should be properly set as well")


def test_check_update_refuses_business_category_without_enrichment():
    assert update_refusal({"category": "undefined", "enrichment_strategies": []}, {"category": "business"}) == (
        "Category change is allowed only from 'undefined' to 'business'. "
        "'enrichment_strategies' should be properly set as well")


def test_check_update_refuses_enrichment_change():
    assert update_refusal({"category": "business"}, {"enrichment_strategies": []}) == (
        "changing enrichment_strategies is not allowed")


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("random", "hash", True), ("random", "user_defined", True), ("hash", "hash", True),
    ("hash", "random", False), ("user_defined", "hash", False),
])
def test_check_update_partition_strategy_only_leaves_random(old, new, allowed):
    keys = {"partition_key_fields": ["order_number"]}
    old_fields, new_fields = {"partition_strategy": old, **keys}, {"partition_strategy": new}
    if allowed:
        assert updated(old_fields, new_fields).partition_strategy == new
    else:
        assert update_refusal(old_fields, new_fields) == (
            "changing partition_strategy is only allowed if the original strategy was 'random'")
        assert updated(old_fields, new_fields, is_admin=True).partition_strategy == new


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("none", "forward", True), ("forward", "compatible", True), ("none", "none", True),
    ("none", "compatible", False), ("forward", "none", False), ("compatible", "forward", False),
])
def test_check_update_compatibility_mode_only_tightens_one_step(old, new, allowed):
    old_fields, new_fields = {"compatibility_mode": old}, {"compatibility_mode": new}
    if allowed:
        assert updated(old_fields, new_fields).compatibility_mode == new
    else:
        assert update_refusal(old_fields, new_fields) == "changing compatibility_mode is not allowed"
        assert updated(old_fields, new_fields, is_event_type_admin=True).compatibility_mode == new


def test_check_update_default_statistic_is_immutable_but_may_be_omitted():
    old = {"default_statistic": STATISTIC}
    assert updated(old, {"default_statistic": ...}).default_statistic == Statistic(**STATISTIC)
    assert updated(old, {"default_statistic": {**STATISTIC, "message_size": 9}}).default_statistic.message_size == 9
    for new in ({**STATISTIC, "read_parallelism": 5}, {**STATISTIC, "write_parallelism": 1}):
        assert update_refusal(old, {"default_statistic": new}) == "default statistics must not be changed"
    assert update_refusal({}, old) == "default statistics must not be changed"


@pytest.mark.parametrize(("old", "new", "allowed"), [
    ("delete", "compact_and_delete", True), ("compact", "compact", True),
    ("delete", "compact", False), ("compact", "delete", False), ("compact_and_delete", "delete", False),
])
def test_check_update_cleanup_policy_only_from_delete_to_compact_and_delete(old, new, allowed):
    if allowed:
        assert updated({"cleanup_policy": old}, {"cleanup_policy": new}).cleanup_policy == new
    else:
        assert update_refusal({"cleanup_policy": old}, {"cleanup_policy": new}) == (
            f"Invalid cleanup_policy change: {old.upper()} cannot be changed to {new.upper()}")


def test_check_update_refuses_removing_authorization():
    assert update_refusal({"authorization": AUTHORIZATION}, {"authorization": ...}) == (
        "Changing authorization object to `null` is not possible due to existing one")
    assert updated({}, {"authorization": AUTHORIZATION}).authorization is not None


def test_check_update_refuses_resetting_audience():
    assert update_refusal({"audience": "company-internal"}, {"audience": ...}) == (
        "event audience must not be set back to null")
    assert updated({"audience": "company-internal"}, {"audience": "external-public"}).audience == "external-public"


def test_check_update_event_owner_selector_may_be_added_but_not_changed():
    selector = {"type": "static", "name": "owner", "value": "a"}
    assert updated({}, {"event_owner_selector": selector}).event_owner_selector.value == "a"
    assert update_refusal({"event_owner_selector": selector}, {"event_owner_selector": ...}) == (
        "event_owner_selector can't be set back to null")
    assert update_refusal({"event_owner_selector": selector}, {"event_owner_selector": {**selector, "value": "b"}}) == (
        "event_owner_selector must not be changed, original: { type: STATIC, name: owner, value: a }, "
        "updated: { type: STATIC, name: owner, value: b }")
    changed = updated({"event_owner_selector": selector}, {"event_owner_selector": {**selector, "value": "b"}},
                      is_admin=True)
    assert changed.event_owner_selector.value == "b"


def test_check_update_keeps_omitted_retention_annotations_and_labels():
    old = {"options": {"retention_time": 20_000_000}, "annotations": {"a/b": "c"}, "labels": {"l": "v"}}
    et = updated(old, {"options": ..., "annotations": ..., "labels": ...})
    assert (et.retention_ms, dict(et.annotations), dict(et.labels)) == (20_000_000, {"a/b": "c"}, {"l": "v"})
    assert updated(old, {"options": {"retention_time": 30_000_000}, "labels": {}}).retention_ms == 30_000_000


def test_check_update_bounds_retention_unless_admin():
    too_long = {"options": {"retention_time": 400_000_000}}
    assert update_refusal({}, too_long) == 'Field "options.retention_time" can not be more than 345600000'
    assert updated({}, too_long, is_admin=True).retention_ms == 400_000_000


def test_check_update_revalidates_the_schema():
    assert update_refusal({}, {"schema": with_schema({"type": "array"})}) == (
        '"type" of root element in schema can only be "object"')


# Validators


def test_event_validator_uses_the_current_schema_and_category():
    validator = event_validator(created(category="data"))
    event = {"metadata": {"eid": "5c4f1c4e-2d4b-4f4e-9b1a-3f2a1b0c9d8e", "occurred_at": "2024-04-11T10:15:30Z",
                          "event_type": "shop.order-created_v2"},
             "data_type": "order", "data_op": "C", "data": {"order_number": "1"}}
    assert validator.validate(event) is None
    assert validator.validate({**event, "data": {}}) == "#/data: required key [order_number] not found"
