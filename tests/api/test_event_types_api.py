"""Event types, schema versions and the registry lists through the app."""

import json

from .helpers import SCHEMA, business_type


async def create(client, body):
    return await client.post("/event-types", json=body)


async def test_event_types_create_get_list_and_duplicate(client):
    response = await create(client, business_type())
    assert response.status_code == 201 and await response.get_data() == b""
    got = await (await client.get("/event-types/order.created")).get_json()
    assert got["schema"]["version"] == "1.0.0" and got["options"] == {"retention_time": 172800000}
    assert got["created_at"].endswith("Z") and got["partition_key_fields"] == ["order_id"]
    listed = await (await client.get("/event-types")).get_json()
    assert [e["name"] for e in listed] == ["order.created"]
    again = await create(client, business_type())
    assert again.status_code == 409 and again.mimetype == "application/problem+json"


async def test_event_types_invalid_definitions_are_422_problems(client):
    bad_name = await create(client, business_type(name="../x"))
    assert bad_name.status_code == 422 and bad_name.mimetype == "application/problem+json"
    reserved = business_type(schema={"type": "json_schema", "schema": json.dumps(
        {"type": "object", "properties": {"metadata": {"type": "string"}}})})
    assert (await create(client, reserved)).status_code == 422
    assert (await create(client, business_type(options={"retention_time": 1}))).status_code == 422


async def test_event_types_malformed_json_is_400_and_text_plain_is_415(client):
    response = await client.post("/event-types", data=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.mimetype == "application/problem+json"
    response = await client.post("/event-types", data=b"{}", headers={"Content-Type": "text/plain"})
    assert response.status_code == 415


async def test_event_types_unknown_is_404_for_get_put_delete(client):
    for method in ("get", "delete"):
        response = await getattr(client, method)("/event-types/missing")
        assert response.status_code == 404 and response.mimetype == "application/problem+json"
    assert (await client.put("/event-types/missing", json=business_type(name="missing"))).status_code == 404


async def test_event_types_update_bumps_schema_version_and_lists_versions(client):
    await create(client, business_type())
    schema = dict(SCHEMA, properties=dict(SCHEMA["properties"], note={"type": "string"}))
    updated = business_type(schema={"type": "json_schema", "schema": json.dumps(schema)})
    response = await client.put("/event-types/order.created", json=updated)
    assert response.status_code == 200
    got = await (await client.get("/event-types/order.created")).get_json()
    assert got["schema"]["version"] == "1.1.0"
    versions = await (await client.get("/event-types/order.created/schemas")).get_json()
    assert [item["version"] for item in versions["items"]] == ["1.1.0", "1.0.0"] and versions["_links"] == {}
    page = await (await client.get("/event-types/order.created/schemas?limit=1")).get_json()
    assert [i["version"] for i in page["items"]] == ["1.1.0"] and "next" in page["_links"]
    one = await (await client.get("/event-types/order.created/schemas/1.0.0")).get_json()
    assert json.loads(one["schema"]) == SCHEMA
    assert (await client.get("/event-types/order.created/schemas/9.9.9")).status_code == 404
    assert (await client.get("/event-types/order.created/schemas/x")).status_code == 400
    assert (await client.get("/event-types/order.created/schemas?limit=0")).status_code == 400


async def test_event_types_page_parameters_beyond_32_bits_are_400(client):
    """Found by the schemathesis run: an offset past SQLite's 64 bits was a 500."""
    assert (await client.post("/event-types", json=business_type())).status_code == 201
    for query in ("offset=99999999999999999999", "offset=2147483648", "limit=-2147483649"):
        response = await client.get(f"/event-types/order.created/schemas?{query}")
        assert response.status_code == 400, query
    for query in ("offset=99999999999999999999", "limit=2147483648"):
        assert (await client.get(f"/subscriptions?{query}")).status_code == 400, query
    assert (await client.get("/event-types/order.created/schemas?offset=2147483647")).status_code == 200


async def test_event_types_put_with_another_name_is_422(client):
    await create(client, business_type())
    response = await client.put("/event-types/order.created", json=business_type(name="other"))
    assert response.status_code == 422


async def test_event_types_delete_removes_type_and_its_data(client, broker, tmp_path):
    await create(client, business_type())
    assert (tmp_path / "data" / "event-types" / "order.created").is_dir()
    assert (await client.delete("/event-types/order.created")).status_code == 200
    assert (await client.get("/event-types/order.created")).status_code == 404
    assert not (tmp_path / "data" / "event-types" / "order.created").exists()


async def test_event_types_registry_lists(client):
    assert await (await client.get("/registry/partition-strategies")).get_json() == ["hash", "user_defined",
                                                                                      "random"]
    assert await (await client.get("/registry/enrichment-strategies")).get_json() == ["metadata_enrichment"]


async def test_event_types_add_schema_version_fetch_and_compatibility_check(client):
    await create(client, business_type())
    wider = dict(SCHEMA, properties=dict(SCHEMA["properties"], note={"type": "string"}))
    body = {"type": "json_schema", "schema": json.dumps(wider)}
    assert (await client.post("/event-types/order.created/schemas", json=body)).status_code == 200
    assert (await (await client.get("/event-types/order.created")).get_json())["schema"]["version"] == "1.1.0"
    again = await client.post("/event-types/order.created/schemas", json=body)
    assert again.status_code == 200
    assert (await (await client.get("/event-types/order.created")).get_json())["schema"]["version"] == "1.1.0"
    fetched = await client.post("/event-types/order.created/schemas?fetch=true",
                                json={"type": "json_schema", "schema": json.dumps(SCHEMA, indent=2)})
    assert (await fetched.get_json())["version"] == "1.0.0"
    missing = await client.post("/event-types/order.created/schemas?fetch=true",
                                json={"type": "json_schema", "schema": "{\"type\": \"object\"}"})
    assert missing.status_code == 404
    narrowed = {"schema": json.dumps(dict(SCHEMA, properties={"order_id": {"type": "integer"}}))}
    check = await (await client.post("/event-types/order.created/schemas/latest/compatibility-check",
                                     json=narrowed)).get_json()
    assert check["compatible"] is False and check["compatibility_mode"] == "forward" and check["error"]
    assert check["validated_against_version"] == "1.1.0"
    fine = await (await client.post("/event-types/order.created/schemas/1.0.0/compatibility-check",
                                    json={"schema": json.dumps(wider)})).get_json()
    assert fine == {"compatible": True, "compatibility_mode": "forward", "validated_against_version": "1.0.0"}


async def test_event_types_field_problems_are_typed_as_nakadi_types_them(client):
    response = await create(client, {"name": "x", "category": "undefined",
                                     "schema": {"type": "json_schema", "schema": "{}"}})
    problem = await response.get_json()
    assert response.status_code == 422
    assert problem["type"] == "http://httpstatus.es/422"
    assert problem["detail"] == 'Field "owning_application" may not be null\n'
    other = await (await create(client, business_type(options={"retention_time": 1}))).get_json()
    assert "type" not in other
