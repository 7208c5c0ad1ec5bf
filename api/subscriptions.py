"""Routes of the subscription resource: create, list, get, update, delete
(streaming, cursors and stats are `subscription_streams`')."""

from __future__ import annotations

from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import BadRequest

from broker.broker import Broker

from .access import subject
from .event_types import int_arg, json_body
from .wire import empty_response, json_response

# What Spring reads as a boolean request parameter; anything else is a 400.
_TRUE = frozenset({"true", "on", "yes", "1"})
_FALSE = frozenset({"false", "off", "no", "0"})


def register(app: QuartTrio, broker: Broker) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]

    async def create_subscription() -> Response:
        subscription, created = await broker.create_subscription(await json_body(limit), subject=subject())
        location = subscription_path(subscription["id"])
        if created:
            return json_response(subscription, 201, {"Location": location, "Content-Location": location})
        return json_response(subscription, 200, {"Location": location})

    async def list_subscriptions() -> Response:
        return json_response(await broker.list_subscriptions(
            owning_application=request.args.get("owning_application"),
            event_types=request.args.getlist("event_type"), reader=request.args.get("reader"),
            show_status=bool_arg("show_status"), limit=int_arg("limit", 20), offset=int_arg("offset", 0)))

    async def get_subscription(subscription_id: str) -> Response:
        return json_response(broker.get_subscription(subscription_id, show_status=bool_arg("show_status")))

    async def update_subscription(subscription_id: str) -> Response:
        await broker.update_subscription(subscription_id, await json_body(limit), subject=subject())
        return empty_response(204)

    async def delete_subscription(subscription_id: str) -> Response:
        await broker.delete_subscription(subscription_id, subject=subject())
        return empty_response(204)

    app.add_url_rule("/subscriptions", view_func=create_subscription, methods=["POST"])
    app.add_url_rule("/subscriptions", view_func=list_subscriptions, methods=["GET"])
    app.add_url_rule("/subscriptions/<subscription_id>", view_func=get_subscription, methods=["GET"])
    app.add_url_rule("/subscriptions/<subscription_id>", view_func=update_subscription, methods=["PUT"])
    app.add_url_rule("/subscriptions/<subscription_id>", view_func=delete_subscription, methods=["DELETE"])


def subscription_path(subscription_id: str) -> str:
    """The relative URI of a subscription, as Nakadi's `Location` carries it."""
    return f"/subscriptions/{subscription_id}"


def bool_arg(name: str) -> bool:
    """A boolean query parameter, false when absent or empty."""
    text = request.args.get(name, "").strip().lower()
    if text == "" or text in _FALSE:
        return False
    if text in _TRUE:
        return True
    raise BadRequest(f"'{name}' must be true or false, not {text!r}")
