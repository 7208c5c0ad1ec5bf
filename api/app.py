"""The HTTP application: the Quart-Trio app, its routes, and its one error
pipeline.

Every request but those to `/health` and `/ready` is authenticated first
(`api/access.py`), by the authenticator of the configured mode; a caller
who proves nothing gets a 401 with `WWW-Authenticate: Bearer`.

Every error leaves as Problem JSON (`api/problems.py`): broker errors with
their status, HTTP errors (404, 405, 413, 415 ...) with theirs, and an
unexpected exception as a 500 whose detail carries an error id that is
also logged with the traceback, which never leaves the server. Every
response carries the request's `X-Flow-Id`, generated when it has none.

Each request gets one access log line (`api/access_log.py`), and
`GET /metrics` serves the app's Prometheus metrics (`api/metrics.py`),
which the broker feeds as its observer.

Plain JSON publishes are answered ahead of Quart, at the ASGI boundary
(`api/publish_front.py`), with the same answers, checks and problems;
every other request, and any publish that front leaves alone, goes
through Quart's routes.
"""

from __future__ import annotations

import trio
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, InternalServerError

from broker.broker import Broker
from broker.errors import BrokerError

from . import event_types, events, metrics, openapi, partitions, subscription_streams, subscriptions
from .access import authenticate_requests
from .access_log import log_requests
from .auth import AUTHENTICATION_OFF, Authenticator, Unauthenticated
from .problems import (
    PROBLEM_JSON,
    broker_problem,
    http_problem_json,
    unauthenticated_problem,
    unexpected_problem_json,
)
from .publish_front import serve_publishes
from .wire import FLOW_ID, flow_id, json_response, refuse_encoding_without_post

def create_app(broker: Broker, *, request_bytes_max: int = 16 * 1024 * 1024,
               authenticator: Authenticator = AUTHENTICATION_OFF) -> QuartTrio:
    app = QuartTrio(__name__, static_folder=None)
    authenticate_requests(app, authenticator)
    # "/subscriptions//cursors" is a 404, not a redirect to another resource.
    app.url_map.merge_slashes = False
    app.config.update(MAX_CONTENT_LENGTH=request_bytes_max, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=60)
    app.add_url_rule("/health", view_func=health, methods=["GET"])

    async def ready() -> Response:
        state = await broker.readiness()
        return json_response(state, 200 if state["status"] == "ready" else 503)
    app.add_url_rule("/ready", view_func=ready, methods=["GET"])
    app_metrics = metrics.Metrics()
    metrics.register(app, broker, app_metrics)
    app.asgi_app = log_requests(  # type: ignore[method-assign]
        serve_publishes(app.asgi_app, broker, authenticator, request_bytes_max=request_bytes_max,
                        body_timeout_s=app.config["BODY_TIMEOUT"]),
        app_metrics.responded)
    for module in (event_types, events, partitions, subscriptions, subscription_streams):
        module.register(app, broker)
    openapi.register(app)
    app.before_request(refuse_encoding_without_post)
    app.after_request(_add_flow_id)
    app.register_error_handler(Unauthenticated, _unauthenticated)
    app.register_error_handler(BrokerError, _broker_problem)
    app.register_error_handler(HTTPException, _http_problem)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(Exception, _unexpected)
    return app


def shield_last_send(app: QuartTrio) -> ASGIFramework:
    """The app as Hypercorn should call it: the last message of a response
    sent under a shield.

    Hypercorn closes the connection inside that last `send` and queues
    `http.disconnect` for the app, which makes quart-trio cancel the
    request's tasks, interrupting the close half-way: a response sent
    before its request body was read (415, 413 from Content-Length) or
    with `Connection: close` would leave the socket open and the client
    waiting. Shielding that one send lets the close finish.
    """
    async def asgi(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        async def send_last_shielded(message: ASGISendEvent) -> None:
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)
        await app(scope, receive, send_last_shielded)
    return asgi


async def health() -> Response:
    """Liveness, answered as Nakadi does: 200 with the text `OK`."""
    return Response("OK", content_type="text/plain")


async def _add_flow_id(response: Response) -> Response:
    response.headers[FLOW_ID] = flow_id()
    return response


async def _unauthenticated(error: Unauthenticated) -> Response:
    return unauthenticated_problem(error)


async def _broker_problem(error: BrokerError) -> Response:
    return broker_problem(error)


async def _http_problem(error: HTTPException) -> Response:
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    status, body = http_problem_json(error)
    return Response(body, status=status, headers=headers, content_type=PROBLEM_JSON)


async def _unexpected(error: Exception) -> Response:
    cause = getattr(error, "original_exception", None) or error
    if isinstance(cause, BrokerError):
        return broker_problem(cause)
    body = unexpected_problem_json(cause, request.method, request.path, flow_id())
    return Response(body, status=500, content_type=PROBLEM_JSON)
