"""The access log: one line per request, at INFO on `nakadi.access`, and
the count of responses by method and status.

It wraps the app at the ASGI boundary, so it sees every request however
it ends (a 401 before any hook, an error, a stream cut by the client).
The line is written when the response ends: for a stream, when the
stream ends, so `duration_ms` is the stream's whole life (the stream's
own open and close lines come from `nakadi.streams`). Fields: `method`,
`path` (with its query string), `status` (null if the client left before
any response), `duration_ms`, `flow_id` (the response's `X-Flow-Id`) and
`completed` (false when the response was cut short). No header is
logged, so neither is any token.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope

log = logging.getLogger("nakadi.access")

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]


def log_requests(app: ASGIApp, responded: Callable[[str, int], None]) -> ASGIApp:
    """`app`, logging each HTTP request and calling `responded(method,
    status)` as each response starts."""
    async def asgi(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        flow_id = ""
        completed = False

        async def observed_send(message: ASGISendEvent) -> None:
            nonlocal status, flow_id, completed
            if message["type"] == "http.response.start":
                status = message["status"]
                flow_id = _header(message.get("headers", ()), b"x-flow-id")
                responded(scope["method"], status)
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                completed = True
            await send(message)
        try:
            await app(scope, receive, observed_send)
        finally:
            _log_request(scope, status, time.perf_counter() - started, flow_id, completed)
    return asgi


def _log_request(scope: Scope, status: int | None, seconds: float, flow_id: str, completed: bool) -> None:
    query = scope.get("query_string", b"").decode("latin-1")
    path = scope["path"] + (f"?{query}" if query else "")
    duration_ms = round(seconds * 1000, 3)
    cut = "" if completed else " (not completed)"
    log.info("%s %s %s %.3f ms flow id %s%s", scope["method"], path, status if status is not None else "-",
             duration_ms, flow_id or "-", cut,
             extra={"method": scope["method"], "path": path, "status": status, "duration_ms": duration_ms,
                    "flow_id": flow_id, "completed": completed})


def _header(headers: object, name: bytes) -> str:
    for key, value in headers:  # type: ignore[attr-defined]
        if key.lower() == name:
            return value.decode("latin-1")
    return ""
