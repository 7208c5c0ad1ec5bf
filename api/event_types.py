"""Routes of event types, their schema versions and the registry lists."""

from __future__ import annotations

import orjson
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import BadRequest

from broker.broker import Broker

from .access import subject
from .wire import empty_response, json_response, read_json_body

PARTITION_STRATEGIES = ["hash", "user_defined", "random"]
ENRICHMENT_STRATEGIES = ["metadata_enrichment"]
INT_MIN, INT_MAX = -(2**31), 2**31 - 1


def register(app: QuartTrio, broker: Broker) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]

    async def list_event_types() -> Response:
        return json_response(broker.list_event_types(owning_application=request.args.get("owning_application"),
                                                     writer=request.args.get("writer")))

    async def create_event_type() -> Response:
        await broker.create_event_type(await json_body(limit))
        return empty_response(201)

    async def get_event_type(name: str) -> Response:
        return json_response(broker.get_event_type(name))

    async def update_event_type(name: str) -> Response:
        await broker.update_event_type(name, await json_body(limit), subject=subject())
        return empty_response(200)

    async def delete_event_type(name: str) -> Response:
        await broker.delete_event_type(name, subject=subject())
        return empty_response(200)

    async def list_schemas(name: str) -> Response:
        limit_arg, offset = int_arg("limit", 20), int_arg("offset", 0)
        items, total = broker.schemas(name, limit_arg, offset)
        return json_response({"_links": page_links(request.path, limit_arg, offset, total), "items": items})

    async def add_schema(name: str) -> Response:
        body = await json_body(limit)
        if request.args.get("fetch", "false").lower() == "true":
            return json_response(broker.find_schema(name, body))
        await broker.add_schema(name, body, subject=subject())
        return empty_response(200)

    async def check_compatibility(name: str, version: str) -> Response:
        return json_response(broker.schema_compatibility(name, version, await json_body(limit)))

    async def get_schema(name: str, version: str) -> Response:
        return json_response(broker.schema(name, version))

    async def partition_strategies() -> Response:
        return json_response(PARTITION_STRATEGIES)

    async def enrichment_strategies() -> Response:
        return json_response(ENRICHMENT_STRATEGIES)

    app.add_url_rule("/event-types", view_func=list_event_types, methods=["GET"])
    app.add_url_rule("/event-types", view_func=create_event_type, methods=["POST"])
    app.add_url_rule("/event-types/<name>", view_func=get_event_type, methods=["GET"])
    app.add_url_rule("/event-types/<name>", view_func=update_event_type, methods=["PUT"])
    app.add_url_rule("/event-types/<name>", view_func=delete_event_type, methods=["DELETE"])
    app.add_url_rule("/event-types/<name>/schemas", view_func=list_schemas, methods=["GET"])
    app.add_url_rule("/event-types/<name>/schemas", view_func=add_schema, methods=["POST"])
    app.add_url_rule("/event-types/<name>/schemas/<version>", view_func=get_schema, methods=["GET"])
    app.add_url_rule("/event-types/<name>/schemas/<version>/compatibility-check", view_func=check_compatibility,
                     methods=["POST"])
    app.add_url_rule("/registry/partition-strategies", view_func=partition_strategies, methods=["GET"])
    app.add_url_rule("/registry/enrichment-strategies", view_func=enrichment_strategies, methods=["GET"])


async def json_body(limit: int) -> object:
    """The request body parsed as JSON; 400 when it is not."""
    try:
        return orjson.loads(await read_json_body(limit))
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"Malformed JSON: {e}") from e


def int_arg(name: str, default: int) -> int:
    """A query parameter bound as Nakadi's Spring binds an `int`: 400 when
    it is not one, or lies outside 32 bits (which no store below can take
    for granted)."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"'{name}' must be an integer, not {text!r}") from None
    if not INT_MIN <= value <= INT_MAX:
        raise BadRequest(f"'{name}' must be a 32-bit integer, not {text!r}")
    return value


def page_links(path: str, limit: int, offset: int, total: int) -> dict:
    links = {}
    if offset > 0:
        links["prev"] = {"href": f"{path}?offset={max(0, offset - limit)}&limit={limit}"}
    if offset + limit < total:
        links["next"] = {"href": f"{path}?offset={offset + limit}&limit={limit}"}
    return links
