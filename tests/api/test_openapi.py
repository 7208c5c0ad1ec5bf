"""The OpenAPI document: valid OpenAPI 3.1, served at `/openapi.json`,
naming exactly the routes of the app, and describing every status and
content type that a sample of real requests (good and bad) gets."""

from __future__ import annotations

import gzip
import json

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from werkzeug.exceptions import MethodNotAllowed, NotFound

from api.app import create_app
from api.auth import authenticator
from api.openapi import DOCUMENT

from .auth_helpers import TOKENS_AUTH
from .helpers import SCHEMA, business_event, business_type

AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
ET = "order.created"
BEGIN = [{"partition": "0", "offset": "BEGIN"}]
# Nakadi answers both adding a schema (no body) and fetch=true (a body) with 200;
# the document cannot tell them apart, so the 200 declares no content and says so.
UNDECLARED_BODY_OPERATIONS = frozenset({"addSchema"})


def app_operations(app) -> set[tuple[str, str]]:
    """(method, OpenAPI path) of every rule of the app."""
    return {(method, rule.rule.replace("<", "{").replace(">", "}"))
            for rule in app.url_map.iter_rules() for method in rule.methods - AUTOMATIC_METHODS}


def document_operations(document: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method != "parameters"}


def operation_of(app, method: str, path: str) -> dict:
    adapter = app.url_map.bind("localhost")
    rule, _ = adapter.match(path.partition("?")[0], method=method, return_rule=True)
    openapi_path = rule.rule.replace("<", "{").replace(">", "}")
    return DOCUMENT["paths"][openapi_path][method.lower()]


def test_openapi_document_is_valid_openapi_3_1():
    assert DOCUMENT["openapi"].startswith("3.1")
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)


def test_openapi_document_names_exactly_the_routes_of_the_app():
    routes, documented = app_operations(create_app(None)), document_operations(DOCUMENT)  # type: ignore[arg-type]
    assert routes - documented == set(), "routes missing from the document"
    assert documented - routes == set(), "operations of the document the app does not serve"


def test_openapi_operation_ids_are_unique_and_errors_are_problems():
    ids = [op["operationId"] for item in DOCUMENT["paths"].values() for method, op in item.items()
           if method != "parameters"]
    assert len(ids) == len(set(ids))
    for path, item in DOCUMENT["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            for status, response in op["responses"].items():
                if int(status) >= 400 and path != "/ready":
                    assert "application/problem+json" in response["content"], (method, path, status)


async def test_openapi_served_as_json_equal_to_the_document(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert await response.get_json() == DOCUMENT


async def test_openapi_needs_a_token_when_authentication_is_on(broker):
    client = create_app(broker, authenticator=authenticator(TOKENS_AUTH)).test_client()
    response = await client.get("/openapi.json")
    assert response.status_code == 401


def documented_media_types(op: dict, status: int) -> set[str]:
    return set(op["responses"][str(status)].get("content", {}))


async def check_documented(app, client, method: str, path: str, failures: list[str], **kwargs) -> int:
    response = await client.open(path, method=method, **kwargs)
    op = operation_of(app, method, path)
    status = response.status_code
    if str(status) not in op["responses"]:
        failures.append(f"{method} {path}: {status} is not documented: {(await response.get_data())[:200]!r}")
        return status
    media_types = documented_media_types(op, status)
    body = await response.get_data()
    if media_types and response.mimetype not in media_types:
        failures.append(f"{method} {path}: {status} {response.mimetype!r} is not one of {media_types}")
    if not media_types and body and op["operationId"] not in UNDECLARED_BODY_OPERATIONS:
        failures.append(f"{method} {path}: {status} has a body the document does not describe")
    return status


@pytest.mark.parametrize("authenticated", [False, True])
async def test_openapi_documents_every_status_of_sampled_requests(broker, authenticated):
    auth = authenticator(TOKENS_AUTH) if authenticated else None
    app = create_app(broker, request_bytes_max=4096, **({"authenticator": auth} if auth else {}))
    client = app.test_client()
    headers = {"Authorization": "Bearer " + TOKENS_AUTH.tokens[0].token} if authenticated else {}
    failures: list[str] = []
    seen: set[int] = set()

    async def call(method: str, path: str, **kwargs) -> int:
        kwargs["headers"] = {**headers, **kwargs.get("headers", {})}
        status = await check_documented(app, client, method, path, failures, **kwargs)
        seen.add(status)
        return status

    assert await call("POST", "/event-types", json=business_type(ET)) == 201
    assert await call("POST", f"/event-types/{ET}/events", json=[business_event("o1")]) == 200
    created = await client.post("/subscriptions", headers=headers,
                                json={"owning_application": "shop", "event_types": [ET], "read_from": "begin"})
    sid = (await created.get_json())["id"]
    samples: list[tuple[str, str, dict]] = [
        ("GET", "/health", {}), ("GET", "/ready", {}), ("GET", "/openapi.json", {}), ("GET", "/metrics", {}),
        ("GET", "/event-types", {}), ("GET", f"/event-types/{ET}", {}), ("GET", "/event-types/nope", {}),
        ("POST", "/event-types", {"json": business_type(ET)}),
        ("POST", "/event-types", {"json": {"name": "x"}}),
        ("POST", "/event-types", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("POST", "/event-types", {"data": b"x" * 5000, "headers": {"Content-Type": "application/json"}}),
        ("POST", "/event-types", {"data": b"<a/>", "headers": {"Content-Type": "application/xml"}}),
        ("POST", "/event-types", {"data": b"{}", "headers": {"Content-Encoding": "br"}}),
        ("GET", "/event-types", {"headers": {"Content-Encoding": "gzip"}}),
        ("PUT", f"/event-types/{ET}", {"json": business_type("other")}),
        ("PUT", f"/event-types/{ET}", {"json": business_type(ET)}),
        ("DELETE", f"/event-types/{ET}", {}), ("DELETE", "/event-types/nope", {}),
        ("GET", f"/event-types/{ET}/schemas?limit=x", {}), ("GET", f"/event-types/{ET}/schemas?limit=0", {}),
        ("GET", f"/event-types/{ET}/schemas", {}),
        ("POST", f"/event-types/{ET}/schemas?fetch=true", {"json": {"type": "json_schema",
                                                                     "schema": json.dumps(SCHEMA)}}),
        ("POST", f"/event-types/{ET}/schemas?fetch=true", {"json": {"type": "json_schema", "schema": "{}"}}),
        ("POST", f"/event-types/{ET}/schemas", {"json": {"type": "json_schema", "schema": json.dumps(SCHEMA)}}),
        ("GET", f"/event-types/{ET}/schemas/1.0.0", {}), ("GET", f"/event-types/{ET}/schemas/latest", {}),
        ("GET", f"/event-types/{ET}/schemas/x.y", {}), ("GET", f"/event-types/{ET}/schemas/9.0.0", {}),
        ("POST", f"/event-types/{ET}/schemas/1.0.0/compatibility-check",
         {"json": {"type": "json_schema", "schema": json.dumps(SCHEMA)}}),
        ("GET", "/registry/partition-strategies", {}), ("GET", "/registry/enrichment-strategies", {}),
        ("POST", f"/event-types/{ET}/events", {"json": [{"order_id": 1}]}),
        ("POST", f"/event-types/{ET}/events", {"data": gzip.compress(b"[]"),
                                               "headers": {"Content-Encoding": "gzip"}}),
        ("POST", "/event-types/nope/events", {"json": []}),
        ("POST", f"/event-types/{ET}/deleted-events", {"json": [business_event("o1")]}),
        ("GET", f"/event-types/{ET}/events?stream_limit=1&batch_flush_timeout=1",
         {"headers": {"X-Nakadi-Cursors": json.dumps(BEGIN)}}),
        ("GET", f"/event-types/{ET}/events", {"headers": {"X-Nakadi-Cursors": "[nope"}}),
        ("GET", f"/event-types/{ET}/events", {"headers": {"X-Nakadi-Cursors": '[{"partition":"9","offset":"BEGIN"}]'}}),
        ("GET", f"/event-types/{ET}/events?batch_limit=0", {}),
        ("GET", f"/event-types/{ET}/partitions", {}),
        ("GET", f"/event-types/{ET}/partitions?cursors=nope", {}),
        ("GET", f"/event-types/{ET}/partitions/0?consumed_offset=BEGIN", {}),
        ("GET", f"/event-types/{ET}/partitions/7", {}),
        ("POST", f"/event-types/{ET}/cursor-distances", {"json": [{"initial_cursor": BEGIN[0],
                                                                   "final_cursor": BEGIN[0]}]}),
        ("POST", f"/event-types/{ET}/cursors-lag", {"json": BEGIN}),
        ("POST", f"/event-types/{ET}/shifted-cursors", {"json": [{**BEGIN[0], "shift": 1}]}),
        ("POST", f"/event-types/{ET}/shifted-cursors", {"json": [{**BEGIN[0], "shift": -1}]}),
        ("POST", "/subscriptions", {"json": {"owning_application": "shop", "event_types": [ET]}}),
        ("POST", "/subscriptions", {"json": {"owning_application": "shop", "event_types": ["nope"]}}),
        ("GET", "/subscriptions?show_status=true", {}), ("GET", "/subscriptions?show_status=maybe", {}),
        ("GET", f"/subscriptions/{sid}", {}), ("GET", "/subscriptions/nope", {}),
        ("PUT", f"/subscriptions/{sid}", {"json": {"owning_application": "shop", "event_types": [ET],
                                                    "consumer_group": "other"}}),
        ("GET", f"/subscriptions/{sid}/events?stream_limit=1&batch_flush_timeout=1&stream_timeout=2", {}),
        ("POST", f"/subscriptions/{sid}/events", {"json": {"stream_limit": 1, "batch_flush_timeout": 1,
                                                            "stream_timeout": 2}}),
        ("POST", f"/subscriptions/{sid}/events", {"json": []}),
        ("GET", f"/subscriptions/{sid}/events?batch_limit=0", {}),
        ("GET", f"/subscriptions/{sid}/cursors", {}),
        ("POST", f"/subscriptions/{sid}/cursors", {"json": {"items": []}, "headers": {"X-Nakadi-StreamId": "x"}}),
        ("PATCH", f"/subscriptions/{sid}/cursors", {"json": {"items": [{**BEGIN[0], "event_type": ET}]}}),
        ("PATCH", f"/subscriptions/{sid}/cursors", {"json": {"items": [{**BEGIN[0], "event_type": "x"}]}}),
        ("GET", f"/subscriptions/{sid}/stats?show_time_lag=true", {}),
        ("DELETE", f"/subscriptions/{sid}", {}), ("DELETE", f"/subscriptions/{sid}", {}),
    ]
    for method, path, kwargs in samples:
        await call(method, path, **kwargs)
    if authenticated:
        await check_documented(app, client, "GET", "/event-types", failures)
        seen.add(401)
    assert not failures, "\n".join(failures)
    assert {200, 201, 204, 400, 404, 409, 413, 415, 422}.issubset(seen), sorted(seen)


def test_openapi_sample_helper_resolves_only_served_routes():
    app = create_app(None)  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        operation_of(app, "GET", "/nothing")
    with pytest.raises(MethodNotAllowed):
        operation_of(app, "PATCH", "/event-types")
