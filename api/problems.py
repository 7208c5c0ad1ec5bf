"""The one mapping from errors to HTTP: Problem JSON (RFC 7807) bodies.

Nakadi's shape: `{"title", "status", "detail"}`; a `type` of about:blank is
left out and so is an empty `detail`, except that field-validation problems
carry `"type": "http://httpstatus.es/422"` as Nakadi's do. Every `BrokerError` subclass has its
status here; a test checks none is missing. A caller who has not proven
who it is gets 401 with RFC 6750's `WWW-Authenticate: Bearer` challenge;
one who has, but is not allowed, gets the broker's 403.
"""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus

import orjson
from quart import Response
from werkzeug.exceptions import HTTPException

from broker.errors import (
    BrokerError,
    ConflictError,
    ForbiddenError,
    InsufficientStorageError,
    InvalidFieldsError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    UnavailableError,
    UnprocessableError,
)

from .auth import Unauthenticated

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_OF: dict[type[BrokerError], int] = {
    InvalidRequestError: 400,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    UnprocessableError: 422,
    UnavailableError: 503,
    InsufficientStorageError: 507,
}


def problem(status: int, detail: str = "", *, title: str | None = None, type_uri: str | None = None,
            headers: dict[str, str] | None = None) -> Response:
    return Response(problem_json(status, detail, title=title, type_uri=type_uri), status=status, headers=headers,
                    content_type=PROBLEM_JSON)


def problem_json(status: int, detail: str = "", *, title: str | None = None, type_uri: str | None = None) -> bytes:
    """The Problem JSON body of a `problem`."""
    body: dict[str, object] = {"title": title or HTTPStatus(status).phrase, "status": status}
    if type_uri is not None:
        body = {"type": type_uri, **body}
    if detail:
        body["detail"] = detail
    return orjson.dumps(body)


def unauthenticated_problem(error: Unauthenticated) -> Response:
    challenge = f'Bearer error="{error.error}"' if error.error else "Bearer"
    return problem(401, error.detail, headers={"WWW-Authenticate": challenge})


def status_of(error: BrokerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    raise LookupError(f"{type(error).__name__} has no HTTP status")


def broker_problem(error: BrokerError) -> Response:
    status, body = broker_problem_json(error)
    return Response(body, status=status, content_type=PROBLEM_JSON)


def broker_problem_json(error: BrokerError) -> tuple[int, bytes]:
    """The status and Problem JSON body of a `broker_problem`."""
    status = status_of(error)
    type_uri = f"http://httpstatus.es/{status}" if isinstance(error, InvalidFieldsError) else None
    return status, problem_json(status, error.detail, type_uri=type_uri)


def http_problem_json(error: HTTPException) -> tuple[int, bytes]:
    """The status and Problem JSON body of an HTTP error (404, 413 ...)."""
    status = error.code or 500
    return status, problem_json(status, error.description or "", title=error.name)


def unexpected_problem_json(error: BaseException, method: str, path: str, flow_id: str) -> bytes:
    """The body of the 500 answering an unexpected exception: a fresh error
    id, also logged with the traceback, which never leaves the server."""
    error_id = "ETI" + secrets.token_hex(12)
    log.error("unexpected error %s on %s %s (flow id %s)", error_id, method, path, flow_id, exc_info=error)
    return problem_json(500, f"An internal error happened. Please report it. ({error_id})")
