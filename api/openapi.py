"""The OpenAPI 3.1 document of exactly what the app serves, and the route
`GET /openapi.json` that serves it.

The document is built here in Python, once, from small helpers: every
operation gets the `X-Flow-Id` header (echoed on every response), the
optional bearer security of the app (off by default) and the statuses the
app's one error pipeline can give it: 401 when authenticated, 406 for a
`Content-Encoding` on anything but POST, 400/413/415 for a request body,
503 when storage fails or the server shuts down, 507 for a write on a full
disk. Errors are Problem JSON. Tests check that the document validates,
that its paths are exactly the app's URL map, and that a schemathesis run
against a live server finds no response the document does not describe.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from quart import Response
from quart_trio import QuartTrio

from .access import PUBLIC_PATHS
from .problems import PROBLEM_JSON
from .subscription_streams import STREAM_ID, STREAM_TYPE
from .wire import FLOW_ID

JSON = "application/json"
OPENAPI_PATH = "/openapi.json"
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def register(app: QuartTrio) -> None:
    """Serve the document at `/openapi.json` (authenticated like every route but the probes)."""
    body = orjson.dumps(DOCUMENT)

    async def openapi() -> Response:
        return Response(body, content_type=JSON)
    app.add_url_rule(OPENAPI_PATH, view_func=openapi, methods=["GET"])


# -- helpers ----------------------------------------------------------------

def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def obj(properties: dict, *required: str) -> dict:
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def nullable(schema: dict) -> dict:
    """A field Nakadi writes as null when unset."""
    return {"anyOf": [schema, {"type": "null"}]}


STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
DATE_TIME = {"type": "string", "format": "date-time"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}


def path_param(name: str, description: str) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": STRING}


def query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def header(name: str, description: str, *, required: bool = False) -> dict:
    return {"name": name, "in": "header", "required": required, "description": description, "schema": STRING}


def json_body(schema: dict, description: str) -> dict:
    return {"required": True, "description": description, "content": {JSON: {"schema": schema}}}


def returns(description: str, schema: dict | None = None, media_type: str = JSON, **headers: dict) -> dict:
    response: dict = {"description": description}
    if schema is not None:
        response["content"] = {media_type: {"schema": schema}}
    if headers:
        response["headers"] = headers
    return response


def problem(status: int, description: str | None = None) -> dict:
    return returns(description or HTTPStatus(status).phrase, ref("Problem"), PROBLEM_JSON)


def operation(operation_id: str, tag: str, summary: str, responses: dict[int, dict], *,
              parameters: tuple[dict, ...] = (), body: dict | None = None, errors: tuple[int, ...] = ()) -> dict:
    """An operation with its own responses and errors; `_finish` adds what every operation shares."""
    op: dict = {"operationId": operation_id, "tags": [tag], "summary": summary, "parameters": list(parameters),
                "responses": {str(status): response for status, response in responses.items()}}
    for status in errors:
        op["responses"].setdefault(str(status), problem(status))
    if body is not None:
        op["requestBody"] = body
    return op


def _finish(path: str, method: str, op: dict, public: bool) -> dict:
    """Add the flow id, security and the statuses of the shared error pipeline."""
    op["parameters"].append({"$ref": "#/components/parameters/FlowId"})
    if public:
        op["security"] = []
    else:
        op["responses"]["401"] = problem(401, "No valid bearer token (only when authentication is on)")
        op["responses"]["401"]["headers"] = {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}
    shared = [] if path == "/health" else [503]
    shared.append(415 if method == "post" else 406)  # Content-Encoding: unknown on POST, refused elsewhere
    if "requestBody" in op:
        shared += [400, 413, 415]
    if method in WRITE_METHODS and not public:
        shared.append(507)
    for status in shared:
        op["responses"].setdefault(str(status), problem(status))
    flow_id = {FLOW_ID: {"$ref": "#/components/headers/FlowId"}}
    op["responses"] = {status: {**response, "headers": {**response.get("headers", {}), **flow_id}}
                       for status, response in sorted(op["responses"].items())}
    return op


# -- schemas ------------------------------------------------------------------

EVENT_TYPE_NAME = r"^[a-zA-Z][-0-9a-zA-Z_]*(\.[0-9a-zA-Z][-0-9a-zA-Z_]*)*$"
AUTH_ATTRIBUTE = obj({"data_type": STRING, "value": STRING}, "data_type", "value")

SCHEMAS: dict[str, dict] = {
    "Problem": obj({"type": {"type": "string", "format": "uri"}, "title": STRING, "status": INTEGER,
                    "detail": STRING}, "title", "status"),
    "AuthorizationAttribute": AUTH_ATTRIBUTE,
    "EventTypeAuthorization": obj({"admins": array(ref("AuthorizationAttribute")),
                                   "readers": array(ref("AuthorizationAttribute")),
                                   "writers": array(ref("AuthorizationAttribute"))},
                                  "admins", "readers", "writers"),
    "EventTypeSchema": obj({"type": {"type": "string", "enum": ["json_schema"]},
                            "schema": {"type": "string", "description": "a JSON Schema (draft 4), serialised"},
                            "version": {"type": "string", "readOnly": True},
                            "created_at": DATE_TIME | {"readOnly": True}}, "type", "schema"),
    "EventTypeStatistics": obj({"messages_per_minute": INTEGER, "message_size": INTEGER,
                                "read_parallelism": INTEGER, "write_parallelism": INTEGER},
                               "messages_per_minute", "message_size", "read_parallelism", "write_parallelism"),
    "EventTypeOptions": obj({"retention_time": {"type": "integer", "format": "int64",
                                                "description": "milliseconds, 3 hours to 4 days"}}),
    "EventOwnerSelector": obj({"type": {"type": "string", "enum": ["path", "static", "metadata"]},
                               "name": STRING, "value": STRING}, "type", "name", "value"),
    "EventType": obj({
        "name": {"type": "string", "pattern": EVENT_TYPE_NAME, "minLength": 1, "maxLength": 255},
        "owning_application": STRING,
        "category": {"type": "string", "enum": ["undefined", "data", "business"]},
        "enrichment_strategies": array({"type": "string", "enum": ["metadata_enrichment"]}),
        "partition_strategy": {"type": "string", "enum": ["hash", "user_defined", "random"]},
        "partition_key_fields": array(STRING),
        "compatibility_mode": {"type": "string", "enum": ["compatible", "forward", "none"]},
        "schema": ref("EventTypeSchema"),
        "default_statistic": nullable(ref("EventTypeStatistics")),
        "options": ref("EventTypeOptions"),
        "cleanup_policy": {"type": "string", "enum": ["delete", "compact", "compact_and_delete"],
                           "description": "compaction is refused with 422"},
        "authorization": nullable(ref("EventTypeAuthorization")),
        "audience": {"type": "string", "enum": ["component-internal", "business-unit-internal",
                                                "company-internal", "external-partner", "external-public"]},
        "ordering_key_fields": array(STRING),
        "ordering_instance_ids": array(STRING),
        "event_owner_selector": ref("EventOwnerSelector"),
        "annotations": nullable(STRING_MAP),
        "labels": nullable(STRING_MAP),
        "created_at": DATE_TIME | {"readOnly": True},
        "updated_at": DATE_TIME | {"readOnly": True},
    }, "name", "owning_application", "category", "schema"),
    "Link": obj({"href": STRING}, "href"),
    "PaginationLinks": obj({"prev": ref("Link"), "next": ref("Link")}),
    "EventTypeSchemaPage": obj({"_links": ref("PaginationLinks"), "items": array(ref("EventTypeSchema"))},
                               "_links", "items"),
    "CompatibilityCheck": obj({"compatible": BOOLEAN, "compatibility_mode": STRING, "error": STRING,
                               "validated_against_version": STRING},
                              "compatible", "compatibility_mode", "validated_against_version"),
    "Event": {"type": "object", "description": "an event of the event type's category (business, data or "
                                               "undefined), as its effective schema says"},
    "BatchItemResponse": obj({"eid": STRING, "partition": {"type": ["string", "null"]},
                              "publishing_status": {"type": "string", "enum": ["submitted", "failed", "aborted"]},
                              "step": {"type": "string",
                                       "enum": ["none", "validating", "partitioning", "enriching", "publishing"]},
                              "detail": STRING}, "publishing_status"),
    "Cursor": obj({"partition": STRING, "offset": {"type": "string",
                                                   "description": "an offset such as 001-0001-000000000000000042, "
                                                                  "or BEGIN"}}, "partition", "offset"),
    "Partition": obj({"partition": STRING, "oldest_available_offset": STRING, "newest_available_offset": STRING,
                      "unconsumed_events": INTEGER},
                     "partition", "oldest_available_offset", "newest_available_offset"),
    "CursorDistanceQuery": obj({"initial_cursor": ref("Cursor"), "final_cursor": ref("Cursor")},
                               "initial_cursor", "final_cursor"),
    "CursorDistanceResult": obj({"initial_cursor": ref("Cursor"), "final_cursor": ref("Cursor"),
                                 "distance": INTEGER}, "initial_cursor", "final_cursor", "distance"),
    "ShiftedCursor": obj({"partition": STRING, "offset": STRING, "shift": INTEGER}, "partition", "offset", "shift"),
    "SubscriptionCursorWithoutToken": obj({"event_type": STRING, "partition": STRING, "offset": STRING},
                                          "event_type", "partition", "offset"),
    "SubscriptionResetCursor": obj({"event_type": STRING, "partition": STRING,
                                    "offset": {"type": "string", "description": "an offset, BEGIN or END (ours)"},
                                    "timestamp": DATE_TIME | {"description": "ours, instead of an offset"}},
                                   "event_type", "partition"),
    "SubscriptionCursor": obj({"event_type": STRING, "partition": STRING, "offset": STRING, "cursor_token": STRING},
                              "event_type", "partition", "offset", "cursor_token"),
    "SubscriptionAuthorization": obj({"admins": array(ref("AuthorizationAttribute")),
                                      "readers": array(ref("AuthorizationAttribute"))}, "admins", "readers"),
    "SubscriptionPartitionStatus": obj({"partition": STRING, "state": STRING, "stream_id": STRING,
                                        "assignment_type": STRING}, "partition", "state"),
    "SubscriptionEventTypeStatus": obj({"event_type": STRING,
                                        "partitions": array(ref("SubscriptionPartitionStatus"))},
                                       "event_type", "partitions"),
    "Subscription": obj({
        "id": {"type": "string", "readOnly": True},
        "owning_application": {"type": "string", "minLength": 1},
        "event_types": array(STRING) | {"minItems": 1},
        "consumer_group": {"type": "string", "minLength": 1},
        "read_from": {"type": "string", "enum": ["begin", "end", "cursors"]},
        "initial_cursors": array(ref("SubscriptionCursorWithoutToken")),
        "authorization": nullable(ref("SubscriptionAuthorization")),
        "annotations": nullable(STRING_MAP),
        "labels": nullable(STRING_MAP),
        "status": array(ref("SubscriptionEventTypeStatus")) | {"readOnly": True},
        "created_at": DATE_TIME | {"readOnly": True},
        "updated_at": DATE_TIME | {"readOnly": True},
    }, "owning_application", "event_types"),
    "SubscriptionList": obj({"_links": ref("PaginationLinks"), "items": array(ref("Subscription"))},
                            "_links", "items"),
    "StreamParameters": obj({
        "partitions": array(obj({"event_type": STRING, "partition": STRING}, "event_type", "partition")),
        "max_uncommitted_events": INTEGER, "batch_limit": INTEGER, "stream_limit": INTEGER,
        "batch_flush_timeout": INTEGER, "stream_timeout": INTEGER, "stream_keep_alive_limit": INTEGER,
        "commit_timeout": INTEGER}),
    "SubscriptionCursors": obj({"items": array(ref("SubscriptionCursor"))}, "items"),
    "SubscriptionResetCursors": obj({"items": array(ref("SubscriptionResetCursor"))}, "items"),
    "CommitResults": obj({"items": array(obj({"cursor": ref("SubscriptionCursor"), "result": STRING},
                                             "cursor", "result"))}, "items"),
    "PartitionStats": obj({"partition": STRING, "state": STRING, "unconsumed_events": INTEGER,
                           "consumer_lag_seconds": INTEGER, "stream_id": STRING, "assignment_type": STRING},
                          "partition", "state"),
    "SubscriptionStats": obj({"items": array(obj({"event_type": STRING,
                                                  "partitions": array(ref("PartitionStats"))},
                                                 "event_type", "partitions"))}, "items"),
    "Readiness": obj({"status": {"type": "string", "enum": ["ready", "not ready"]},
                      "storage": obj({"writable": BOOLEAN, "detail": STRING}, "writable"),
                      "metadata": obj({"available": BOOLEAN, "writable": BOOLEAN, "detail": STRING},
                                      "available", "writable")}, "status", "storage", "metadata"),
}

# -- operations ---------------------------------------------------------------

NAME = path_param("name", "the event type's name")
SID = path_param("subscription_id", "the subscription's id")
EMPTY_200 = returns("Done; the body is empty")
EMPTY_204 = returns("Done; no body")
LIMIT = query("limit", INTEGER, "page size, 1 to 1000 (20)")
OFFSET = query("offset", INTEGER, "items to skip (0)")
STREAM_HEADERS = {STREAM_ID: {"$ref": "#/components/headers/StreamId"}}
STREAM_BODY_DESCRIPTION = ("one batch per line: {\"cursor\": {...}, \"events\": [...]}; a keep-alive has no "
                           "events; subscription batches may carry info.debug")
LOW_LEVEL_STREAM_PARAMS = tuple(query(name, INTEGER, description) for name, description in (
    ("batch_limit", "events per batch (1)"), ("stream_limit", "events after which the stream ends (0: none)"),
    ("batch_flush_timeout", "seconds before a partial batch is sent (30)"),
    ("stream_timeout", "seconds after which the stream ends (0: about an hour)"),
    ("stream_keep_alive_limit", "keep-alives in a row on every partition that end the stream (0: none)")))
SUBSCRIPTION_STREAM_PARAMS = LOW_LEVEL_STREAM_PARAMS + (
    query("max_uncommitted_events", INTEGER, "events sent but not committed before the stream pauses (10)"),
    query("commit_timeout", INTEGER, "seconds to commit a batch before the stream ends (60, at most 60)"))


def _paths() -> dict[str, dict[str, dict]]:
    et, sub, reg, ops = "event types", "subscriptions", "schema registry", "operations"
    return {
        "/health": {"get": operation("health", ops, "Liveness", {200: returns("OK", STRING, "text/plain")})},
        "/ready": {"get": operation("ready", ops, "Readiness: storage and metadata take writes", {
            200: returns("Ready", ref("Readiness")), 503: returns("Not ready, and why", ref("Readiness"))})},
        "/metrics": {"get": operation("metrics", ops, "Prometheus metrics (docs/metrics.md)", {
            200: returns("The Prometheus text exposition format, version 0.0.4", STRING, "text/plain")})},
        OPENAPI_PATH: {"get": operation("openapi", ops, "This document", {
            200: returns("The OpenAPI 3.1 document", {"type": "object"})})},
        "/event-types": {
            "get": operation("listEventTypes", et, "List event types", {200: returns("The event types",
                                                                                   array(ref("EventType")))},
                             parameters=(query("owning_application", STRING, "only those of this application"),
                                         query("writer", STRING, "only those this writer (data_type:value) may "
                                                                 "publish to")), errors=(400, 422)),
            "post": operation("createEventType", et, "Create an event type", {201: returns("Created; no body")},
                              body=json_body(ref("EventType"), "the event type"), errors=(409, 422)),
        },
        "/event-types/{name}": {
            "parameters": [NAME],
            "get": operation("getEventType", et, "Get an event type", {200: returns("The event type",
                                                                                  ref("EventType"))},
                             errors=(404,)),
            "put": operation("updateEventType", et, "Update an event type", {200: EMPTY_200},
                             body=json_body(ref("EventType"), "the whole event type"), errors=(403, 404, 422)),
            "delete": operation("deleteEventType", et, "Delete an event type and its events", {200: EMPTY_200},
                                errors=(403, 404, 409)),
        },
        "/event-types/{name}/schemas": {
            "parameters": [NAME],
            "get": operation("listSchemas", reg, "Schema versions, newest first",
                             {200: returns("A page of versions", ref("EventTypeSchemaPage"))},
                             parameters=(LIMIT, OFFSET), errors=(400, 404)),
            "post": operation("addSchema", reg, "Add a schema version, or with fetch=true find an equal one",
                              {200: returns("Added (empty body); with fetch=true, the matching version as an "
                                            "EventTypeSchema (application/json)")},
                              parameters=(query("fetch", BOOLEAN, "look up instead of adding (false)"),),
                              body=json_body(ref("EventTypeSchema"), "the schema"), errors=(403, 404, 422)),
        },
        "/event-types/{name}/schemas/{version}": {
            "parameters": [NAME, path_param("version", "a semantic version, or latest")],
            "get": operation("getSchema", reg, "One schema version",
                             {200: returns("The version", ref("EventTypeSchema"))}, errors=(400, 404)),
        },
        "/event-types/{name}/schemas/{version}/compatibility-check": {
            "parameters": [NAME, path_param("version", "a semantic version, or latest")],
            "post": operation("checkCompatibility", reg, "Whether a schema could follow this version",
                              {200: returns("The verdict", ref("CompatibilityCheck"))},
                              body=json_body(ref("EventTypeSchema"), "the candidate schema"), errors=(404, 422)),
        },
        "/registry/partition-strategies": {"get": operation(
            "partitionStrategies", reg, "Partition strategies", {200: returns("Their names", array(STRING))})},
        "/registry/enrichment-strategies": {"get": operation(
            "enrichmentStrategies", reg, "Enrichment strategies", {200: returns("Their names", array(STRING))})},
        "/event-types/{name}/events": {
            "parameters": [NAME],
            "post": operation("publish", et, "Publish a batch of events", {
                200: returns("Every event stored; the body is empty"),
                207: returns("Some events stored, one item per event", array(ref("BatchItemResponse"))),
                422: {"description": "Nothing stored: one item per event, or a Problem",
                      "content": {JSON: {"schema": array(ref("BatchItemResponse"))},
                                  PROBLEM_JSON: {"schema": ref("Problem")}}},
            }, body=json_body(array(ref("Event")), "the batch"), errors=(403, 404)),
            "get": operation("streamEvents", et, "The low-level event stream (deprecated)", {
                200: returns(STREAM_BODY_DESCRIPTION, STRING, STREAM_TYPE,
                             Warning={"$ref": "#/components/headers/Deprecation"}),
            }, parameters=(header("X-Nakadi-Cursors", "a JSON array of cursors to start after (default: the newest "
                                                      "of every partition)"),
                           *LOW_LEVEL_STREAM_PARAMS,
                           query("filters", STRING, "a JSON list of filter expressions (ours)")),
                errors=(400, 403, 404, 412, 422)),
        },
        "/event-types/{name}/deleted-events": {
            "parameters": [NAME],
            "post": operation("publishDeletions", et, "Publish tombstones (refused: nothing is compacted)", {
                422: {"description": "Every event aborted, or a Problem",
                      "content": {JSON: {"schema": array(ref("BatchItemResponse"))},
                                  PROBLEM_JSON: {"schema": ref("Problem")}}},
            }, body=json_body(array(ref("Event")), "the batch"), errors=(403, 404)),
        },
        "/event-types/{name}/partitions": {
            "parameters": [NAME],
            "get": operation("listPartitions", et, "The partitions and their offsets",
                             {200: returns("The partitions", array(ref("Partition")))},
                             parameters=(query("cursors", STRING, "a JSON array of cursors: their partitions get "
                                                                  "unconsumed_events"),),
                             errors=(400, 403, 404, 422)),
        },
        "/event-types/{name}/partitions/{partition}": {
            "parameters": [NAME, path_param("partition", "the partition's id")],
            "get": operation("getPartition", et, "One partition", {200: returns("The partition", ref("Partition"))},
                             parameters=(query("consumed_offset", STRING, "adds unconsumed_events after it"),),
                             errors=(400, 403, 404, 422)),
        },
        "/event-types/{name}/cursor-distances": {
            "parameters": [NAME],
            "post": operation("cursorDistances", et, "Events between pairs of cursors",
                              {200: returns("The pairs with their distance", array(ref("CursorDistanceResult")))},
                              body=json_body(array(ref("CursorDistanceQuery")), "pairs of cursors"),
                              errors=(403, 404, 422)),
        },
        "/event-types/{name}/cursors-lag": {
            "parameters": [NAME],
            "post": operation("cursorsLag", et, "Unconsumed events after each cursor",
                              {200: returns("One partition view per cursor", array(ref("Partition")))},
                              body=json_body(array(ref("Cursor")), "the cursors"), errors=(403, 404, 422)),
        },
        "/event-types/{name}/shifted-cursors": {
            "parameters": [NAME],
            "post": operation("shiftedCursors", et, "Cursors moved by a number of events",
                              {200: returns("The moved cursors, in request order", array(ref("Cursor")))},
                              body=json_body(array(ref("ShiftedCursor")), "cursors and shifts"),
                              errors=(403, 404, 422)),
        },
        "/subscriptions": {
            "post": operation("createSubscription", sub, "Create a subscription, or get the one with its key", {
                201: returns("Created", ref("Subscription"), Location={"$ref": "#/components/headers/Location"},
                             **{"Content-Location": {"$ref": "#/components/headers/Location"}}),
                200: returns("It existed", ref("Subscription"), Location={"$ref": "#/components/headers/Location"}),
            }, body=json_body(ref("Subscription"), "the subscription"), errors=(403, 409, 422)),
            "get": operation("listSubscriptions", sub, "List subscriptions, newest first", {
                200: returns("A page of subscriptions", ref("SubscriptionList"))},
                parameters=(query("owning_application", STRING, "only those of this application"),
                            query("event_type", array(STRING), "only those reading every one of these")
                            | {"style": "form", "explode": True},
                            query("reader", STRING, "only those this reader (data_type:value) may read"),
                            query("show_status", BOOLEAN, "add each partition's status"), LIMIT, OFFSET),
                errors=(400, 422)),
        },
        "/subscriptions/{subscription_id}": {
            "parameters": [SID],
            "get": operation("getSubscription", sub, "Get a subscription",
                             {200: returns("The subscription", ref("Subscription"))},
                             parameters=(query("show_status", BOOLEAN, "add each partition's status"),),
                             errors=(400, 404)),
            "put": operation("updateSubscription", sub, "Update authorization, annotations and labels",
                             {204: EMPTY_204}, body=json_body(ref("Subscription"), "the whole subscription"),
                             errors=(403, 404, 422)),
            "delete": operation("deleteSubscription", sub, "Delete a subscription", {204: EMPTY_204},
                                errors=(403, 404)),
        },
        "/subscriptions/{subscription_id}/events": {
            "parameters": [SID],
            "get": operation("streamSubscription", sub, "Open a subscription stream", {
                200: returns(STREAM_BODY_DESCRIPTION, STRING, STREAM_TYPE, **STREAM_HEADERS)},
                parameters=SUBSCRIPTION_STREAM_PARAMS, errors=(400, 403, 404, 409, 412, 422)),
            "post": operation("streamSubscriptionWithBody", sub,
                              "Open a subscription stream, parameters and direct partitions in the body", {
                                  200: returns(STREAM_BODY_DESCRIPTION, STRING, STREAM_TYPE, **STREAM_HEADERS)},
                              body=json_body(ref("StreamParameters"), "the stream's parameters"),
                              errors=(400, 403, 404, 409, 412, 422)),
        },
        "/subscriptions/{subscription_id}/cursors": {
            "parameters": [SID],
            "get": operation("getCursors", sub, "The committed cursors",
                             {200: returns("The cursors, with fresh tokens", ref("SubscriptionCursors"))},
                             errors=(403, 404)),
            "post": operation("commitCursors", sub, "Commit cursors of a stream", {
                204: returns("Every cursor committed"),
                200: returns("At least one cursor was not newer", ref("CommitResults"))},
                parameters=(header(STREAM_ID, "the stream committing", required=True),),
                body=json_body(ref("SubscriptionCursors"), "the cursors"), errors=(403, 404, 422)),
            "patch": operation("resetCursors", sub, "Reset the cursors (ends every stream)", {204: EMPTY_204},
                               body=json_body(ref("SubscriptionResetCursors"), "the new cursors"),
                               errors=(403, 404, 409, 422)),
        },
        "/subscriptions/{subscription_id}/stats": {
            "parameters": [SID],
            "get": operation("subscriptionStats", sub, "Each partition's state and lag",
                             {200: returns("The stats", ref("SubscriptionStats"))},
                             parameters=(query("show_time_lag", BOOLEAN, "add consumer_lag_seconds"),),
                             errors=(400, 403, 404)),
        },
    }


def _document() -> dict:
    paths = _paths()
    for path, item in paths.items():
        for method, op in item.items():
            if method != "parameters":
                _finish(path, method, op, public=path in PUBLIC_PATHS)
    return {
        "openapi": "3.1.0",
        "info": {"title": "nakadi", "version": "0.1.0",
                 "description": "Nakadi's event bus API as this server serves it (docs/api.md lists each "
                                "difference from Nakadi). Every error is Problem JSON; POST bodies may be "
                                "gzip-compressed (Content-Encoding: gzip)."},
        "security": [{}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "a static token or a JWT; only when authentication "
                                                          "is on (it is off by default)"}},
            "parameters": {"FlowId": header(FLOW_ID, "a flow id to echo; generated when absent")},
            "headers": {
                "FlowId": {"description": "the request's flow id, or a generated one", "schema": STRING},
                "WWWAuthenticate": {"description": "a Bearer challenge", "schema": STRING},
                "StreamId": {"description": "the stream's id, to commit with", "schema": STRING},
                "Location": {"description": "/subscriptions/{id}", "schema": STRING},
                "Deprecation": {"description": "the low-level API is deprecated", "schema": STRING},
            },
        },
    }


DOCUMENT = _document()
