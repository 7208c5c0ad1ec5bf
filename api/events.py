"""Routes of publishing and of the low-level event stream."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator

from quart import Response, request
from quart_trio import QuartTrio

from broker.broker import Broker
from broker.errors import BrokerError
from broker.stream_params import parse_stream_params

from .access import subject
from .wire import empty_response, flow_id, json_response, read_json_body

log = logging.getLogger(__name__)

STREAM_TYPE = "application/x-json-stream"
DEPRECATION = '299 - nakadi - the Low-level API is deprecated and will be removed from a future release. ' \
              'Please consider migrating to the Subscriptions API.'


def register(app: QuartTrio, broker: Broker) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    rng = random.Random()

    async def publish(name: str) -> Response:
        body = await read_json_body(limit)
        outcome = await broker.publish(name, body, flow_id=flow_id(), subject=subject())
        if outcome.items is None:
            return empty_response(200)
        return json_response(outcome.items, outcome.status)

    async def publish_deletions(name: str) -> Response:
        outcome = broker.publish_deletions(name, await read_json_body(limit), subject=subject())
        return json_response(outcome.items, outcome.status)

    async def stream(name: str) -> Response:
        args = request.args
        params = parse_stream_params(
            rng=rng, batch_limit=args.get("batch_limit"), stream_limit=args.get("stream_limit"),
            batch_flush_timeout=args.get("batch_flush_timeout"), stream_timeout=args.get("stream_timeout"),
            stream_keep_alive_limit=args.get("stream_keep_alive_limit"))
        lines = broker.open_stream(name, request.headers.get("X-Nakadi-Cursors"), params, args.get("filters"),
                                   subject=subject(), flow_id=flow_id())
        response = Response(_ended_cleanly(lines, name), content_type=STREAM_TYPE,
                            headers={"Warning": DEPRECATION})
        response.timeout = None
        return response

    app.add_url_rule("/event-types/<name>/events", view_func=publish, methods=["POST"])
    app.add_url_rule("/event-types/<name>/events", view_func=stream, methods=["GET"])
    app.add_url_rule("/event-types/<name>/deleted-events", view_func=publish_deletions, methods=["POST"])


async def _ended_cleanly(lines: AsyncIterator[bytes], name: str) -> AsyncIterator[bytes]:
    """The stream's lines; after the 200 an error can only end the stream, so it is logged."""
    try:
        async for chunk in lines:
            yield chunk
    except BrokerError as e:
        log.warning("stream of %s ended by an error: %s", name, e.detail)
