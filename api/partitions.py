"""Routes of partitions and cursor operations."""

from __future__ import annotations

from quart import Response, request
from quart_trio import QuartTrio

from broker.broker import Broker

from .access import subject
from .event_types import json_body
from .wire import json_response


def register(app: QuartTrio, broker: Broker) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]

    async def partitions(name: str) -> Response:
        return json_response(broker.partitions(name, request.args.get("cursors"), subject=subject()))

    async def partition(name: str, partition: str) -> Response:
        return json_response(broker.partition(name, partition, request.args.get("consumed_offset"),
                                              subject=subject()))

    async def cursor_distances(name: str) -> Response:
        return json_response(broker.cursor_distances(name, await json_body(limit), subject=subject()))

    async def cursors_lag(name: str) -> Response:
        return json_response(broker.cursors_lag(name, await json_body(limit), subject=subject()))

    async def shifted_cursors(name: str) -> Response:
        return json_response(broker.shifted_cursors(name, await json_body(limit), subject=subject()))

    app.add_url_rule("/event-types/<name>/partitions", view_func=partitions, methods=["GET"])
    app.add_url_rule("/event-types/<name>/partitions/<partition>", view_func=partition, methods=["GET"])
    app.add_url_rule("/event-types/<name>/cursor-distances", view_func=cursor_distances, methods=["POST"])
    app.add_url_rule("/event-types/<name>/cursors-lag", view_func=cursors_lag, methods=["POST"])
    app.add_url_rule("/event-types/<name>/shifted-cursors", view_func=shifted_cursors, methods=["POST"])
