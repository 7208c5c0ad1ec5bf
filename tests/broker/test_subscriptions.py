"""Subscriptions: reading requests, the creation and update rules, the JSON
form, the service over a real metastore, and the broker facade (the 409 on
deleting a read event type, persistence across a reopen)."""

from datetime import UTC, datetime, timedelta

import pytest

from broker.broker import Broker, BrokerConfig
from broker.errors import (
    ConflictError,
    InvalidFieldsError,
    InvalidRequestError,
    NotFoundError,
    UnprocessableError,
)
from broker.metastore import Metastore
from broker.subscription_json import from_json, parse_subscription, to_json
from broker.subscription_model import check_create, check_update
from broker.subscriptions import Subscription, Subscriptions, list_link

NOW = datetime(2024, 4, 11, 10, 15, 30, 123456, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
# Event type "a" has two partitions: 0 holds offsets [0, 10), 1 holds [5, 7) (0..4 expired).
BOUNDS = {"a": [(0, 10), (5, 7)], "b": [(0, 0)]}
AUTH = {"admins": [{"data_type": "user", "value": "jo"}], "readers": [{"data_type": "service", "value": "shop"}]}


def body(**fields):
    """A valid request body with `fields` changed; a field set to `...` is left out."""
    request = {"owning_application": "shop", "event_types": ["a"]}
    request.update(fields)
    return {name: value for name, value in request.items() if value is not ...}


def created(request_body, bounds=BOUNDS, **kwargs):
    return check_create(parse_subscription(request_body), {n: bounds.get(n) for n in request_body["event_types"]},
                        id="id-1", now=NOW, **kwargs)


def cursors(*triples):
    return [{"event_type": et, "partition": p, "offset": o} for et, p, o in triples]


ALL_OF_A = cursors(("a", "0", "BEGIN"), ("a", "1", "001-0001-000000000000000006"))


# -- reading requests ------------------------------------------------------------

def test_subscription_request_defaults_and_event_types_as_a_sorted_set():
    subscription = parse_subscription(body(event_types=["b", "a", "b"], unknown_field=1))
    assert subscription == Subscription(owning_application="shop", event_types=["a", "b"])
    assert subscription.consumer_group == "default" and subscription.read_from == "end"
    assert subscription.initial_cursors is None and subscription.authorization is None
    assert parse_subscription(body(read_from="BEGIN", initial_cursors=None)).read_from == "begin"


@pytest.mark.parametrize("fields, detail", [
    ({"owning_application": ...}, 'Field "owning_application" may not be null\n'),
    ({"owning_application": ""}, 'Field "owning_application" must contain at least one character\n'),
    ({"event_types": ...}, 'Field "event_types" may not be null\n'),
    ({"event_types": []}, 'Field "event_types" must contain at least one element\n'),
    ({"consumer_group": ""}, 'Field "consumer_group" must contain at least one character\n'),
    ({"consumer_group": None}, 'Field "consumer_group" may not be null\n'),
    ({"read_from": None}, 'Field "read_from" may not be null\n'),
    ({"initial_cursors": [{"partition": "", "offset": "1"}]},
     'Field "initial_cursors[0].event_type" may not be null\n'
     'Field "initial_cursors[0].partition" cursor partition cannot be empty\n'),
    ({"initial_cursors": [{"event_type": "a", "partition": "0", "offset": ""}]},
     'Field "initial_cursors[0].offset" cursor offset cannot be empty\n'),
    ({"authorization": {"admins": [], "readers": [{"data_type": "user"}]}},
     'Field "authorization.admins" must contain at least one attribute\n'
     'Field "authorization.readers[0].value" may not be null\n'),
    ({"annotations": {"nakadi.zalando.org/subscription-max-event-send-count": "x"}},
     'Field "annotations" nakadi.zalando.org/subscription-max-event-send-count must be an integer\n'),
    ({"annotations": {"nakadi.zalando.org/subscription-max-event-send-count": "11"}},
     'Field "annotations" nakadi.zalando.org/subscription-max-event-send-count must be between 2 and 10\n'),
    ({"annotations": {"nakadi.zalando.org/subscription-max-event-send-count": "3"}},
     'Field "annotations" nakadi.zalando.org/subscription-unprocessable-event-policy must be also set when '
     'setting nakadi.zalando.org/subscription-max-event-send-count\n'),
    ({"annotations": {"nakadi.zalando.org/subscription-unprocessable-event-policy": "DROP"}},
     'Field "annotations" nakadi.zalando.org/subscription-unprocessable-event-policy must be one of: '
     'SKIP_EVENT, DEAD_LETTER_QUEUE\n'),
    ({"annotations": {"nakadi.zalando.org/subscription-unprocessable-event-policy": "SKIP_EVENT"}},
     'Field "annotations" nakadi.zalando.org/subscription-max-event-send-count must be also set when '
     'setting nakadi.zalando.org/subscription-unprocessable-event-policy\n'),
    ({"labels": {"team": "a b"}}, 'Field "labels[team]" Should contain only allowed symbols\n'),
])
def test_subscription_request_field_problems_are_nakadis_validation_texts(fields, detail):
    with pytest.raises(InvalidFieldsError) as e:
        parse_subscription(body(**fields))
    assert e.value.detail == detail


def test_subscription_request_dead_letter_annotations_together_are_accepted():
    annotations = {"nakadi.zalando.org/subscription-max-event-send-count": "2",
                   "nakadi.zalando.org/subscription-unprocessable-event-policy": "DEAD_LETTER_QUEUE"}
    assert parse_subscription(body(annotations=annotations)).annotations == annotations


@pytest.mark.parametrize("request_body, detail", [
    ([], "The request body must be a JSON object"),
    (body(event_types="a"), 'Field "event_types" has the wrong JSON type'),
    (body(event_types=["a", 1]), 'Field "event_types" must be a list of strings'),
    (body(owning_application=1), 'Field "owning_application" has the wrong JSON type'),
    (body(read_from="middle"), "Illegal enum value: 'middle'. Possible values: [begin, end, cursors]"),
])
def test_subscription_request_of_the_wrong_shape_is_a_400(request_body, detail):
    with pytest.raises(InvalidRequestError) as e:
        parse_subscription(request_body)
    assert detail in e.value.detail


# -- creation rules ------------------------------------------------------------------

def test_subscription_create_sets_id_times_in_milliseconds_and_empty_maps():
    subscription = created(body())
    assert subscription.id == "id-1" and subscription.created_at == subscription.updated_at
    assert subscription.created_at == NOW.replace(microsecond=123000)
    assert subscription.annotations == {} and subscription.labels == {}


def test_subscription_create_names_every_missing_event_type():
    with pytest.raises(UnprocessableError) as e:
        created(body(event_types=["zz", "a", "c"]))
    assert e.value.detail == "Failed to create subscription, event type(s) not found: 'c', 'zz'"


def test_subscription_create_limits_the_total_partition_count():
    assert created(body(event_types=["a", "b"]), partitions_max=3).event_types == ["a", "b"]
    with pytest.raises(UnprocessableError) as e:
        created(body(event_types=["a", "b"]), partitions_max=2)
    assert e.value.detail == "total partition count for subscription is 3, but the maximum partition count is 2"


def test_subscription_create_accepts_one_available_cursor_for_every_partition():
    subscription = created(body(read_from="cursors", initial_cursors=ALL_OF_A))
    assert subscription.read_from == "cursors" and subscription.initial_cursors == ALL_OF_A
    oldest = cursors(("a", "1", "4"), ("a", "0", "-1"))  # before the first retained event, version zero
    assert created(body(read_from="cursors", initial_cursors=oldest)).initial_cursors == oldest


@pytest.mark.parametrize("initial, detail", [
    (None, "initial_cursors should contain cursors for all partitions of subscription"),
    (cursors(("a", "0", "BEGIN")), "initial_cursors should contain cursors for all partitions of subscription"),
    (cursors(("a", "0", "BEGIN"), ("a", "01", "BEGIN")),
     "initial_cursors should contain cursors for all partitions of subscription"),
    (ALL_OF_A + cursors(("a", "2", "BEGIN")),
     "initial_cursors should contain cursors only for partitions of this subscription"),
    (ALL_OF_A + cursors(("a", "0", "1")),
     "there should be no more than 1 cursor for each partition in initial_cursors"),
    (cursors(("a", "0", "BEGIN"), ("a", "1", "3")),
     "offset 000000000000000003 for partition 1 event type a is unavailable as retention time of data elapsed. "
     "PATCH partition offset with valid and available offset"),
    (cursors(("a", "0", "10"), ("a", "1", "BEGIN")),
     "offset 000000000000000010 for partition 0 event type a is unavailable as retention time of data elapsed. "
     "PATCH partition offset with valid and available offset"),
    (cursors(("a", "0", "x1"), ("a", "1", "BEGIN")), "invalid offset x1 for partition 0"),
])
def test_subscription_create_refuses_initial_cursors_as_nakadi(initial, detail):
    with pytest.raises(UnprocessableError) as e:
        created(body(read_from="cursors", initial_cursors=initial))
    assert e.value.detail == detail


def test_subscription_create_keeps_initial_cursors_unchecked_unless_reading_from_them():
    stale = cursors(("a", "0", "nonsense"))
    assert created(body(read_from="begin", initial_cursors=stale)).initial_cursors == stale


def test_subscription_create_refuses_duplicated_authorization_attributes():
    twice = {"admins": AUTH["admins"] * 2, "readers": AUTH["readers"] * 3}
    with pytest.raises(UnprocessableError) as e:
        created(body(authorization=twice))
    assert e.value.detail == ("authorization property 'ADMIN' contains duplicated attribute(s): user:jo; "
                              "authorization property 'READ' contains duplicated attribute(s): service:shop")


# -- update rules ----------------------------------------------------------------------

@pytest.mark.parametrize("fields, detail", [
    ({"consumer_group": "other"}, "Not allowed to change subscription consumer group"),
    ({"event_types": ["a", "b"]}, "Not allowed to change subscription event types"),
    ({"owning_application": "other"}, "Not allowed to change owning application"),
    ({"read_from": "begin"}, "Not allowed to change read from"),
    ({"initial_cursors": cursors(("a", "0", "1"))}, "Not allowed to change initial cursors"),
])
def test_subscription_update_refuses_changing_a_key_or_start_field(fields, detail):
    with pytest.raises(UnprocessableError) as e:
        check_update(created(body()), parse_subscription(body(**fields)), now=LATER)
    assert e.value.detail == detail


def test_subscription_update_replaces_authorization_and_keeps_maps_left_out():
    old = created(body(event_types=["b", "a"], annotations={"k": "v"}, labels={"l": "1"}))
    new = check_update(old, parse_subscription(body(event_types=["a", "b"], authorization=AUTH,
                                                    labels={"l": "2"}, initial_cursors=[])), now=LATER)
    assert new.authorization == AUTH and new.annotations == {"k": "v"} and new.labels == {"l": "2"}
    assert new.created_at == old.created_at and new.updated_at == LATER.replace(microsecond=123000)
    with pytest.raises(UnprocessableError) as e:
        check_update(new, parse_subscription(body(event_types=["a", "b"])), now=LATER)
    assert e.value.detail == "Changing authorization object to `null` is not possible due to existing one"


# -- JSON ---------------------------------------------------------------------------------

def test_subscription_json_has_nakadis_fields_in_order_and_reads_back():
    subscription = created(body(authorization=AUTH, labels={"l": "1"}))
    document = to_json(subscription)
    assert list(document) == ["owning_application", "event_types", "consumer_group", "read_from",
                              "initial_cursors", "authorization", "annotations", "labels", "id", "created_at",
                              "updated_at"]
    assert document["created_at"] == "2024-04-11T10:15:30.123Z" and document["initial_cursors"] == []
    assert from_json(document) == subscription
    assert to_json(subscription, [])["status"] == []


# -- the service ------------------------------------------------------------------------

@pytest.fixture
def store(tmp_path):
    metastore = Metastore(str(tmp_path / "meta.db"))
    yield metastore
    metastore.close()


@pytest.fixture
def service(store):
    return Subscriptions(store, BOUNDS.get)


async def test_subscriptions_create_is_idempotent_on_the_key_and_ignores_the_rest(service):
    first, new = await service.create(body(event_types=["b", "a"]), NOW)
    assert new and service.get(first.id) == first
    again, new = await service.create(body(event_types=["a", "b"], read_from="begin", authorization=AUTH), LATER)
    assert not new and again == first and again.read_from == "end" and again.authorization is None
    other, new = await service.create(body(event_types=["a", "b"], consumer_group="g2"), LATER)
    assert new and other.id != first.id


async def test_subscriptions_get_update_delete_of_an_unknown_id_are_404(service):
    for call in (lambda: service.get("nope"), lambda: service.get_json("nope")):
        with pytest.raises(NotFoundError) as e:
            call()
        assert e.value.detail == 'Subscription with id "nope" does not exist'
    with pytest.raises(NotFoundError):
        await service.update("nope", body(), LATER)
    with pytest.raises(NotFoundError):
        await service.delete("nope")


async def test_subscriptions_invalid_creates_store_nothing(service, store):
    for request_body in (body(event_types=["missing"]), body(owning_application="")):
        with pytest.raises(UnprocessableError):
            await service.create(request_body, NOW)
    assert store.all_subscriptions() == []


async def test_subscriptions_update_and_delete_are_durable(service, store):
    subscription, _ = await service.create(body(), NOW)
    await service.update(subscription.id, body(annotations={"k": "v"}), LATER)
    reopened = Subscriptions(store, BOUNDS.get)
    assert reopened.get(subscription.id).annotations == {"k": "v"}
    assert reopened.get(subscription.id).updated_at == LATER.replace(microsecond=123000)
    await service.delete(subscription.id)
    with pytest.raises(NotFoundError):
        Subscriptions(store, BOUNDS.get).get(subscription.id)
    assert store.all_subscriptions() == [] and await service.ids_reading("a") == []


async def test_subscriptions_list_newest_first_with_filters_and_nakadis_links(service):
    made = []
    for i in range(5):
        subscription, _ = await service.create(body(owning_application=f"app{i % 2}", consumer_group=f"g{i}",
                                                    event_types=["a", "b"] if i < 3 else ["a"]), NOW + timedelta(i))
        made.append(subscription.id)
    page = await service.list(limit=2)
    assert [item["id"] for item in page["items"]] == made[:2:-1] and "status" not in page["items"][0]
    assert page["_links"] == {"next": {"href": "/subscriptions?offset=2&limit=2"}}
    page = await service.list(event_types=["b", "a", "b"], owning_application="app0", limit=1, offset=1,
                              show_status=True)
    assert [item["id"] for item in page["items"]] == [made[0]] and page["items"][0]["status"]
    assert page["_links"] == {
        "prev": {"href": "/subscriptions?event_type=b&event_type=a&owning_application=app0&show_status=true"
                         "&offset=0&limit=1"},
        "next": {"href": "/subscriptions?event_type=b&event_type=a&owning_application=app0&show_status=true"
                         "&offset=2&limit=1"}}
    last = await service.list(offset=4, limit=3)
    assert len(last["items"]) == 1 and list(last["_links"]) == ["prev"]
    assert (await service.list(offset=9))["_links"]["prev"]["href"] == "/subscriptions?offset=0&limit=20"


async def test_subscriptions_list_filters_by_reader(service):
    readable, _ = await service.create(body(authorization=AUTH), NOW)
    await service.create(body(consumer_group="g2"), NOW)
    page = await service.list(reader="service:shop", limit=1)
    assert [item["id"] for item in page["items"]] == [readable.id]
    assert page["_links"]["next"]["href"] == "/subscriptions?reader=service:shop&offset=1&limit=1"
    assert (await service.list(reader="user:jo"))["items"] == []


@pytest.mark.parametrize("kwargs, detail", [
    ({"limit": 0}, "'limit' parameter should have value between 1 and 1000"),
    ({"limit": 1001}, "'limit' parameter should have value between 1 and 1000"),
    ({"offset": -1}, "'offset' parameter can't be lower than 0"),
    ({"offset": 10**20}, "'offset' parameter can't be greater than 2147483647"),
    ({"reader": ""}, "Authorization query is empty"),
    ({"reader": "user"}, "Authorization format is incorrect. Should be data_type:value"),
    ({"reader": "a:b:c"}, "Authorization format is incorrect. Should be data_type:value"),
])
async def test_subscriptions_list_bad_parameters_are_400(service, kwargs, detail):
    with pytest.raises(InvalidRequestError) as e:
        await service.list(**kwargs)
    assert e.value.detail == detail


def test_subscriptions_list_link_encodes_only_what_would_break_the_query():
    href = list_link(owning_application="a b&c", event_types=["x.y"], reader=("user", "jo@z"), show_status=False,
                     offset=0, limit=5)
    assert href == "/subscriptions?event_type=x.y&reader=user:jo@z&owning_application=a%20b%26c&offset=0&limit=5"


async def test_subscriptions_status_is_unassigned_until_streaming_provides_it(service):
    subscription, _ = await service.create(body(event_types=["b", "a"]), NOW)
    unassigned = {"state": "unassigned", "stream_id": ""}
    assert service.get_json(subscription.id, show_status=True)["status"] == [
        {"event_type": "a", "partitions": [{"partition": "0", **unassigned}, {"partition": "1", **unassigned}]},
        {"event_type": "b", "partitions": [{"partition": "0", **unassigned}]}]
    service.status_of = lambda s: [{"event_type": s.event_types[0], "partitions": []}]
    assert service.get_json(subscription.id, show_status=True)["status"] == [{"event_type": "a", "partitions": []}]
    assert (await service.list(show_status=True))["items"][0]["status"] == [{"event_type": "a", "partitions": []}]


# -- the broker facade --------------------------------------------------------------------

EVENT_TYPE = {"name": "t.undefined", "owning_application": "a", "category": "undefined",
              "schema": {"type": "json_schema", "schema": "{}"}}


async def test_broker_refuses_to_delete_an_event_type_a_subscription_reads(tmp_path):
    broker = Broker.open(BrokerConfig(str(tmp_path / "data")))
    await broker.create_event_type(EVENT_TYPE)
    subscription, new = await broker.create_subscription(body(event_types=["t.undefined"]))
    assert new
    with pytest.raises(ConflictError) as e:
        await broker.delete_event_type("t.undefined")
    assert e.value.detail == "Can't remove event type t.undefined, as it has subscriptions"
    assert broker.get_event_type("t.undefined")["name"] == "t.undefined"
    assert broker.partitions("t.undefined", None)[0]["partition"] == "0"
    await broker.delete_subscription(subscription["id"])
    await broker.delete_event_type("t.undefined")
    with pytest.raises(NotFoundError):
        await broker.delete_event_type("t.undefined")
    broker.close()


async def test_broker_subscriptions_and_their_cursors_survive_a_reopen(tmp_path):
    config = BrokerConfig(str(tmp_path / "data"))
    broker = Broker.open(config)
    await broker.create_event_type(EVENT_TYPE)
    subscription, _ = await broker.create_subscription(body(event_types=["t.undefined"], labels={"l": "1"}))
    await broker.update_subscription(subscription["id"], body(event_types=["t.undefined"], authorization=AUTH))
    broker._metastore.initialize_subscription_cursors(subscription["id"], {("t.undefined", 0): -1})
    stored = broker.get_subscription(subscription["id"])
    broker.close()
    again = Broker.open(config)
    assert again.get_subscription(subscription["id"]) == stored and stored["authorization"] == AUTH
    assert (await again.list_subscriptions())["items"] == [stored]
    assert again.subscriptions.get(subscription["id"]).event_types == ["t.undefined"]
    assert again._metastore.subscription_cursors(subscription["id"]) == {("t.undefined", 0): -1}
    _, new = await again.create_subscription(body(event_types=["t.undefined"]))
    assert not new
    again.close()


async def test_broker_subscription_partition_limit_is_configured(tmp_path):
    broker = Broker.open(BrokerConfig(str(tmp_path / "data"), subscription_partitions_max=0))
    await broker.create_event_type(EVENT_TYPE)
    with pytest.raises(UnprocessableError, match="the maximum partition count is 0"):
        await broker.create_subscription(body(event_types=["t.undefined"]))
    broker.close()
