"""Publishing served at the ASGI boundary: `POST /event-types/{name}/events`
answered without Quart's request machinery.

Quart spends about 200 us of CPU on a request around its view (a nursery
and two tasks, a Request object, context pushes, hooks): twice what the
broker spends on a one-event publish, and the largest cost of the publish
path (docs/performance.md). This front answers the publishes a Nakadi
client sends, an authenticated JSON body without `Content-Encoding`,
with the same statuses, headers and bodies as the Quart route. Every
other request is handed to Quart before any of its body is read, and
Quart answers it as before: gzip bodies, 401, 415, a `Content-Length`
beyond the limit (413), every other route.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable

import orjson
import trio
from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable, Scope
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from broker.authorization import Subject
from broker.broker import Broker
from broker.errors import BrokerError

from .auth import Authenticator, Unauthenticated
from .problems import PROBLEM_JSON, broker_problem_json, http_problem_json, unexpected_problem_json
from .wire import is_json_type

ASGIApp = Callable[[Scope, ASGIReceiveCallable, ASGISendCallable], Awaitable[None]]

PUBLISH_PATH = re.compile(r"/event-types/([^/]+)/events")
JSON = b"application/json"
PROBLEM = PROBLEM_JSON.encode()


def serve_publishes(app: ASGIApp, broker: Broker, authenticator: Authenticator, *, request_bytes_max: int,
                    body_timeout_s: float) -> ASGIApp:
    """`app`, with the publishes this front can answer answered here."""
    async def asgi(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        name = _publish_to(scope)
        headers = dict(scope["headers"]) if name is not None else {}
        # dict() keeps a repeated header's last value; Quart reads its first. Such requests go to Quart.
        if name is None or len(headers) != len(scope["headers"]) or not _plain_json(headers, request_bytes_max):
            await app(scope, receive, send)
            return
        try:
            subject = authenticator.authenticate(_text(headers.get(b"authorization")))
        except Unauthenticated:
            await app(scope, receive, send)  # Quart answers the 401
            return
        flow_id = _text(headers.get(b"x-flow-id")) or secrets.token_hex(12)
        try:
            with trio.fail_after(body_timeout_s):
                body = await _read_body(receive, request_bytes_max)
        except trio.TooSlowError:
            answer = (*http_problem_json(RequestTimeout()), PROBLEM)
        except HTTPException as error:
            answer = (*http_problem_json(error), PROBLEM)
        else:
            if body is None:
                return  # the client left; nobody to answer
            answer = await _publish(broker, scope, name, body, flow_id, subject)
        await _respond(send, *answer, flow_id)
    return asgi


async def _publish(broker: Broker, scope: Scope, name: str, body: bytes, flow_id: str,
                   subject: Subject) -> tuple[int, bytes, bytes]:
    """(status, body, content type) of publishing `body` to `name`."""
    try:
        outcome = await broker.publish(name, body, flow_id=flow_id, subject=subject)
    except BrokerError as error:
        return (*broker_problem_json(error), PROBLEM)
    except Exception as error:
        return 500, unexpected_problem_json(error, scope["method"], scope["path"], flow_id), PROBLEM
    if outcome.items is None:
        return 200, b"", b""
    return outcome.status, orjson.dumps(outcome.items), JSON


async def _respond(send: ASGISendCallable, status: int, body: bytes, content_type: bytes, flow_id: str) -> None:
    """The response, with the headers Quart would give it (no content type for an empty body)."""
    headers = [(b"content-length", str(len(body)).encode()), (b"x-flow-id", flow_id.encode())]
    if content_type:
        headers.insert(0, (b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _publish_to(scope: Scope) -> str | None:
    """The event type a plain HTTP POST publishes to, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    match = PUBLISH_PATH.fullmatch(scope["path"])
    return match.group(1) if match else None


def _plain_json(headers: dict[bytes, bytes], request_bytes_max: int) -> bool:
    """Whether the request is one this front answers: a JSON body (or no
    content type), not compressed, not declared larger than the limit."""
    length = headers.get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > request_bytes_max):
        return False  # Quart answers 413 without reading the body
    if b"content-encoding" in headers:
        return False
    mimetype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    return is_json_type(mimetype.decode("latin-1"))


async def _read_body(receive: ASGIReceiveCallable, limit_bytes: int) -> bytes | None:
    """The whole body, or None if the client disconnected first; a body
    without a declared length (chunked, HTTP/2) is read only up to the limit."""
    chunks = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit_bytes:
            raise RequestEntityTooLarge()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")
