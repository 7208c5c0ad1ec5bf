"""The one mapping from errors to HTTP: Problem JSON (RFC 7807) bodies.

Nakadi's shape: `{"title", "status", "detail"}`; a `type` of about:blank is
left out and so is an empty `detail`, except that field-validation problems
carry `"type": "http://httpstatus.es/422"` as Nakadi's do. Every `BrokerError` subclass has its
status here; a test checks none is missing. A caller who has not proven
who it is gets 401 with RFC 6750's `WWW-Authenticate: Bearer` challenge;
one who has, but is not allowed, gets the broker's 403.
"""

from __future__ import annotations

from http import HTTPStatus

import orjson
from quart import Response

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
    body: dict[str, object] = {"title": title or HTTPStatus(status).phrase, "status": status}
    if type_uri is not None:
        body = {"type": type_uri, **body}
    if detail:
        body["detail"] = detail
    return Response(orjson.dumps(body), status=status, headers=headers, content_type=PROBLEM_JSON)


def unauthenticated_problem(error: Unauthenticated) -> Response:
    challenge = f'Bearer error="{error.error}"' if error.error else "Bearer"
    return problem(401, error.detail, headers={"WWW-Authenticate": challenge})


def status_of(error: BrokerError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_OF:
            return STATUS_OF[cls]
    raise LookupError(f"{type(error).__name__} has no HTTP status")


def broker_problem(error: BrokerError) -> Response:
    status = status_of(error)
    type_uri = f"http://httpstatus.es/{status}" if isinstance(error, InvalidFieldsError) else None
    return problem(status, error.detail, type_uri=type_uri)
