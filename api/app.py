"""The HTTP application: the Quart-Trio app, its routes, and its one error
pipeline.

Every error leaves as RFC 7807 Problem JSON in Nakadi's shape (a `type` of
about:blank is left out, as Nakadi does); an unexpected exception becomes a
500 whose detail carries an error id that is also logged with the
traceback, which never leaves the server. Every response carries the
request's `X-Flow-Id`, generated when the request has none.
"""

from __future__ import annotations

import json
import logging
import secrets

from quart import Response, g, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
FLOW_ID = "X-Flow-Id"


def create_app() -> QuartTrio:
    app = QuartTrio(__name__)
    app.add_url_rule("/health", view_func=health, methods=["GET"])
    app.after_request(_add_flow_id)
    app.register_error_handler(HTTPException, _http_problem)
    app.register_error_handler(InternalServerError, _unexpected)
    app.register_error_handler(Exception, _unexpected)
    return app


async def health() -> Response:
    """Liveness, answered as Nakadi does: 200 with the text `OK`."""
    return Response("OK", content_type="text/plain")


def problem(status: int, title: str, detail: str = "", *, headers: dict[str, str] | None = None) -> Response:
    """A Problem JSON response of type about:blank, so without `type`, and
    without `detail` when it is empty, as Nakadi writes them."""
    body: dict[str, object] = {"title": title, "status": status}
    if detail:
        body["detail"] = detail
    return Response(json.dumps(body, separators=(",", ":")), status=status, headers=headers,
                    content_type=PROBLEM_JSON)


def flow_id() -> str:
    """This request's flow id: its `X-Flow-Id`, or 24 random characters as Nakadi generates."""
    if "flow_id" not in g:
        g.flow_id = request.headers.get(FLOW_ID) or secrets.token_hex(12)
    return g.flow_id


async def _add_flow_id(response: Response) -> Response:
    response.headers[FLOW_ID] = flow_id()
    return response


async def _http_problem(error: HTTPException) -> Response:
    headers = {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
    return problem(error.code or 500, error.name, error.description or "", headers=headers)


async def _unexpected(error: Exception) -> Response:
    cause = getattr(error, "original_exception", None) or error
    error_id = "ETI" + secrets.token_hex(12)
    log.error("unexpected error %s on %s %s (flow id %s)", error_id, request.method, request.path,
              flow_id(), exc_info=cause)
    return problem(500, "Internal Server Error", f"An internal error happened. Please report it. ({error_id})")
