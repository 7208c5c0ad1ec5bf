"""The subscription resource through the app: create (201 / 200), get, list
with filters and links, update, delete, and the errors as Problem JSON."""

import pytest

from .helpers import business_event, business_type

SUBSCRIPTION = {"owning_application": "shop", "event_types": ["order.created"]}
AUTH = {"admins": [{"data_type": "user", "value": "jo"}], "readers": [{"data_type": "service", "value": "shop"}]}


@pytest.fixture
async def order_created(client):
    assert (await client.post("/event-types", json=business_type(partitions=1))).status_code == 201
    return "order.created"


async def create(client, **fields):
    return await client.post("/subscriptions", json={**SUBSCRIPTION, **fields})


async def problem(response, status):
    assert response.status_code == status and response.mimetype == "application/problem+json"
    return await response.get_json()


async def test_subscriptions_create_is_201_then_200_for_the_same_key(client, order_created):
    response = await create(client, event_types=[order_created, order_created])
    subscription = await response.get_json()
    location = f"/subscriptions/{subscription['id']}"
    assert response.status_code == 201 and response.mimetype == "application/json"
    assert response.headers["Location"] == location and response.headers["Content-Location"] == location
    assert subscription["event_types"] == [order_created] and subscription["consumer_group"] == "default"
    assert subscription["read_from"] == "end" and subscription["initial_cursors"] == []
    assert subscription["created_at"] == subscription["updated_at"] and subscription["created_at"].endswith("Z")
    again = await create(client, read_from="begin", authorization=AUTH)
    assert again.status_code == 200 and await again.get_json() == subscription
    assert again.headers["Location"] == location and "Content-Location" not in again.headers
    other = await create(client, consumer_group="second")
    assert other.status_code == 201 and (await other.get_json())["id"] != subscription["id"]


async def test_subscriptions_get_returns_the_stored_subscription_or_404(client, order_created):
    subscription = await (await create(client, authorization=AUTH, annotations={"k": "v"})).get_json()
    response = await client.get(f"/subscriptions/{subscription['id']}")
    assert response.status_code == 200 and await response.get_json() == subscription
    assert subscription["authorization"] == AUTH and subscription["annotations"] == {"k": "v"}
    status = (await (await client.get(f"/subscriptions/{subscription['id']}?show_status=true")).get_json())["status"]
    assert status == [{"event_type": order_created, "partitions": [
        {"partition": "0", "state": "unassigned", "stream_id": ""}]}]
    missing = await problem(await client.get("/subscriptions/nope"), 404)
    assert missing == {"title": "Not Found", "status": 404, "detail": 'Subscription with id "nope" does not exist'}


@pytest.mark.parametrize("fields, detail", [
    ({"owning_application": ""}, 'Field "owning_application" must contain at least one character\n'),
    ({"event_types": []}, 'Field "event_types" must contain at least one element\n'),
    ({"consumer_group": ""}, 'Field "consumer_group" must contain at least one character\n'),
    ({"authorization": {"admins": [], "readers": []}},
     'Field "authorization.admins" must contain at least one attribute\n'
     'Field "authorization.readers" must contain at least one attribute\n'),
])
async def test_subscriptions_field_problems_are_typed_422s(client, order_created, fields, detail):
    body = await problem(await create(client, **fields), 422)
    assert body == {"type": "http://httpstatus.es/422", "title": "Unprocessable Entity", "status": 422,
                    "detail": detail}


@pytest.mark.parametrize("fields, detail", [
    ({"event_types": ["order.created", "nope"]}, "Failed to create subscription, event type(s) not found: 'nope'"),
    ({"read_from": "cursors"}, "initial_cursors should contain cursors for all partitions of subscription"),
    ({"read_from": "cursors", "initial_cursors": [{"event_type": "order.created", "partition": "0",
                                                   "offset": "001-0001-000000000000000002"}]},
     "offset 000000000000000002 for partition 0 event type order.created is unavailable as retention time of "
     "data elapsed. PATCH partition offset with valid and available offset"),
    ({"authorization": {"admins": AUTH["admins"] * 2, "readers": AUTH["readers"]}},
     "authorization property 'ADMIN' contains duplicated attribute(s): user:jo"),
])
async def test_subscriptions_invalid_subscriptions_are_untyped_422s(client, order_created, fields, detail):
    body = await problem(await create(client, **fields), 422)
    assert body == {"title": "Unprocessable Entity", "status": 422, "detail": detail}
    assert (await (await client.get("/subscriptions")).get_json())["items"] == []


async def test_subscriptions_too_many_partitions_is_422(client, broker):
    for i in range(13):
        await client.post("/event-types", json=business_type(name=f"t{i}", partitions=8))
    body = await problem(await create(client, event_types=[f"t{i}" for i in range(13)]), 422)
    assert body["detail"] == "total partition count for subscription is 104, but the maximum partition count is 100"


async def test_subscriptions_initial_cursors_at_available_offsets_are_kept(client, order_created):
    events = [business_event(f"o{i}") for i in range(3)]
    assert (await client.post(f"/event-types/{order_created}/events", json=events)).status_code == 200
    initial = [{"event_type": order_created, "partition": "0", "offset": "001-0001-000000000000000001"}]
    response = await create(client, read_from="cursors", initial_cursors=initial)
    assert response.status_code == 201 and (await response.get_json())["initial_cursors"] == initial


async def test_subscriptions_malformed_bodies_are_400(client, order_created):
    response = await client.post("/subscriptions", data=b"{nope", headers={"Content-Type": "application/json"})
    await problem(response, 400)
    body = await problem(await create(client, read_from="sometimes"), 400)
    assert body["detail"] == "Illegal enum value: 'sometimes'. Possible values: [begin, end, cursors]"
    assert (await client.post("/subscriptions", data=b"{}", headers={"Content-Type": "text/plain"})).status_code \
        == 415


async def test_subscriptions_list_filters_pages_and_links(client, order_created):
    await client.post("/event-types", json=business_type(name="order.paid"))
    ids = []
    for group, event_types, app in (("g0", ["order.created"], "shop"), ("g1", ["order.created", "order.paid"], "shop"),
                                    ("g2", ["order.paid"], "shop"), ("g3", ["order.created", "order.paid"], "ops")):
        ids.append((await (await create(client, consumer_group=group, event_types=event_types,
                                        owning_application=app)).get_json())["id"])
    listed = await (await client.get("/subscriptions")).get_json()
    assert [item["id"] for item in listed["items"]] == ids[::-1] and listed["_links"] == {}
    both = await (await client.get("/subscriptions?event_type=order.paid&event_type=order.created"
                                   "&owning_application=shop&limit=1")).get_json()
    assert [item["id"] for item in both["items"]] == [ids[1]]
    assert both["_links"] == {"next": {"href": "/subscriptions?event_type=order.paid&event_type=order.created"
                                               "&owning_application=shop&offset=1&limit=1"}}
    follow = await (await client.get(both["_links"]["next"]["href"])).get_json()
    assert follow["items"] == [] and follow["_links"] == {"prev": {"href": (
        "/subscriptions?event_type=order.paid&event_type=order.created&owning_application=shop&offset=0&limit=1")}}
    page = await (await client.get("/subscriptions?offset=1&limit=2&show_status=true")).get_json()
    assert [item["id"] for item in page["items"]] == [ids[2], ids[1]] and page["items"][0]["status"]
    assert page["_links"] == {"prev": {"href": "/subscriptions?show_status=true&offset=0&limit=2"},
                              "next": {"href": "/subscriptions?show_status=true&offset=3&limit=2"}}


async def test_subscriptions_list_filters_by_reader(client, order_created):
    readable = await (await create(client, authorization=AUTH)).get_json()
    await create(client, consumer_group="other")
    listed = await (await client.get("/subscriptions?reader=service:shop")).get_json()
    assert [item["id"] for item in listed["items"]] == [readable["id"]]


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-1", "limit=x", "show_status=maybe",
                                   "reader=nocolon"])
async def test_subscriptions_list_bad_parameters_are_400(client, query):
    await problem(await client.get(f"/subscriptions?{query}"), 400)


async def test_subscriptions_put_changes_authorization_annotations_and_labels_only(client, order_created):
    subscription = await (await create(client, labels={"team": "a"})).get_json()
    path = f"/subscriptions/{subscription['id']}"
    response = await client.put(path, json={**subscription, "authorization": AUTH, "annotations": {"k": "v"}})
    assert response.status_code == 204 and await response.get_data() == b""
    updated = await (await client.get(path)).get_json()
    assert updated["authorization"] == AUTH and updated["annotations"] == {"k": "v"}
    assert updated["labels"] == {"team": "a"} and updated["created_at"] == subscription["created_at"]
    assert updated["updated_at"] >= subscription["updated_at"]
    changed = await problem(await client.put(path, json={**updated, "consumer_group": "other"}), 422)
    assert changed["detail"] == "Not allowed to change subscription consumer group"
    dropped = await problem(await client.put(path, json={**updated, "authorization": None}), 422)
    assert dropped["detail"] == "Changing authorization object to `null` is not possible due to existing one"
    assert await (await client.get(path)).get_json() == updated
    await problem(await client.put("/subscriptions/nope", json=SUBSCRIPTION), 404)
    await problem(await client.put(path, json={**updated, "owning_application": ""}), 422)


async def test_subscriptions_delete_is_204_then_404(client, order_created):
    subscription = await (await create(client)).get_json()
    path = f"/subscriptions/{subscription['id']}"
    response = await client.delete(path)
    assert response.status_code == 204 and await response.get_data() == b""
    await problem(await client.get(path), 404)
    await problem(await client.delete(path), 404)
    assert (await create(client)).status_code == 201


async def test_subscriptions_keep_their_event_types_from_deletion(client, order_created):
    subscription = await (await create(client)).get_json()
    conflict = await problem(await client.delete(f"/event-types/{order_created}"), 409)
    assert conflict["detail"] == "Can't remove event type order.created, as it has subscriptions"
    assert (await client.get(f"/event-types/{order_created}")).status_code == 200
    assert (await client.delete(f"/subscriptions/{subscription['id']}")).status_code == 204
    assert (await client.delete(f"/event-types/{order_created}")).status_code == 200
