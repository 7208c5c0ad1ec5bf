"""Routes of subscription streams, commits, cursors and stats."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from quart import Response, request
from quart_trio import QuartTrio

from broker.broker import Broker
from broker.errors import BrokerError, InvalidRequestError

from .access import subject
from .event_types import json_body
from .subscriptions import bool_arg
from .wire import empty_response, flow_id, json_response

log = logging.getLogger(__name__)

STREAM_TYPE = "application/x-json-stream"
STREAM_ID = "X-Nakadi-StreamId"
_STREAM_PARAMS = ("batch_limit", "max_uncommitted_events", "stream_limit", "batch_flush_timeout", "stream_timeout",
                  "stream_keep_alive_limit", "commit_timeout")


def register(app: QuartTrio, broker: Broker) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]

    async def stream_get(subscription_id: str) -> Response:
        values = {name: request.args.get(name) for name in _STREAM_PARAMS}
        return _streaming(subscription_id, *await broker.open_subscription_stream(subscription_id, values,
                                                                                 subject=subject(), flow_id=flow_id()))

    async def stream_post(subscription_id: str) -> Response:
        body = await json_body(limit)
        if not isinstance(body, dict):
            raise InvalidRequestError("the body must be a JSON object")
        values = {name: body.get(name) for name in _STREAM_PARAMS}
        return _streaming(subscription_id, *await broker.open_subscription_stream(
            subscription_id, values, body.get("partitions"), subject=subject(), flow_id=flow_id()))

    async def cursors_get(subscription_id: str) -> Response:
        return json_response({"items": await broker.subscription_cursors(subscription_id, subject=subject())})

    async def cursors_commit(subscription_id: str) -> Response:
        items = await broker.commit_cursors(subscription_id, request.headers.get(STREAM_ID), await json_body(limit),
                                            subject=subject())
        return empty_response(204) if items is None else json_response({"items": items})

    async def cursors_reset(subscription_id: str) -> Response:
        await broker.reset_cursors(subscription_id, await json_body(limit), subject=subject())
        return empty_response(204)

    async def stats(subscription_id: str) -> Response:
        return json_response({"items": await broker.subscription_stats(subscription_id, bool_arg("show_time_lag"),
                                                                                subject=subject())})

    app.add_url_rule("/subscriptions/<subscription_id>/events", view_func=stream_get, methods=["GET"])
    app.add_url_rule("/subscriptions/<subscription_id>/events", view_func=stream_post, methods=["POST"])
    app.add_url_rule("/subscriptions/<subscription_id>/cursors", view_func=cursors_get, methods=["GET"])
    app.add_url_rule("/subscriptions/<subscription_id>/cursors", view_func=cursors_commit, methods=["POST"])
    app.add_url_rule("/subscriptions/<subscription_id>/cursors", view_func=cursors_reset, methods=["PATCH"])
    app.add_url_rule("/subscriptions/<subscription_id>/stats", view_func=stats, methods=["GET"])


def _streaming(subscription_id: str, stream_id: str, lines: AsyncIterator[bytes]) -> Response:
    response = Response(_ended_cleanly(lines, subscription_id), content_type=STREAM_TYPE,
                        headers={STREAM_ID: stream_id})
    response.timeout = None
    return response


async def _ended_cleanly(lines: AsyncIterator[bytes], subscription_id: str) -> AsyncIterator[bytes]:
    """The stream's lines; after the 200 an error can only end the stream, so it is logged."""
    try:
        async for chunk in lines:
            yield chunk
    except BrokerError as e:
        log.warning("stream of subscription %s ended by an error: %s", subscription_id, e.detail)
