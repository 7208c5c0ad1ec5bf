"""Request bodies in and JSON out: content types, gzip, size limits, flow ids.

A POST body is read whole but never beyond `MAX_CONTENT_LENGTH` (Quart
answers 413 from the `Content-Length` alone, or stops buffering a chunked
body once it passes the limit). A gzip body is inflated with the same
bound, so a small compressed bomb cannot grow past it either.
"""

from __future__ import annotations

import secrets
import zlib

import orjson
from quart import Response, g, request
from werkzeug.exceptions import (
    BadRequest,
    NotAcceptable,
    RequestEntityTooLarge,
    UnsupportedMediaType,
)

JSON_TYPES = frozenset({"application/json", ""})
FLOW_ID = "X-Flow-Id"


def flow_id() -> str:
    """This request's flow id: its `X-Flow-Id`, or 24 random characters as Nakadi generates."""
    if "flow_id" not in g:
        g.flow_id = request.headers.get(FLOW_ID) or secrets.token_hex(12)
    return g.flow_id


async def read_body(limit_bytes: int) -> bytes:
    """The request body, inflated if gzipped, at most `limit_bytes`."""
    encoding = content_encoding()
    if encoding not in ("identity", "gzip"):
        raise UnsupportedMediaType(f"Content-Encoding {encoding!r} is not supported; use gzip or none")
    data = await request.get_data(cache=False)
    if encoding == "gzip":
        data = _gunzip(data, limit_bytes)
    return data


def content_encoding() -> str:
    return request.headers.get("Content-Encoding", "identity").strip().lower()


async def refuse_encoding_without_post() -> None:
    """Nakadi accepts `Content-Encoding` on POST only: 406 elsewhere."""
    if content_encoding() != "identity" and request.method != "POST":
        raise NotAcceptable("Content-Encoding is only accepted on POST requests")


async def read_json_body(limit_bytes: int) -> bytes:
    """The body of a JSON request; other content types answer 415. A missing
    `Content-Type` is read as JSON, as curl users expect."""
    mimetype = request.mimetype
    if not is_json_type(mimetype):
        raise UnsupportedMediaType(f"Content-Type {mimetype!r} is not supported; send application/json")
    return await read_body(limit_bytes)


def is_json_type(mimetype: str) -> bool:
    """Whether a request's media type (lower case, without parameters) is
    JSON; a missing `Content-Type` counts as JSON."""
    return mimetype in JSON_TYPES or mimetype.endswith("+json")


def _gunzip(data: bytes, limit_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit_bytes + 1)
    except zlib.error as e:
        raise BadRequest(f"the gzip body is corrupt: {e}") from e
    if len(out) > limit_bytes or inflater.unconsumed_tail:
        raise RequestEntityTooLarge(f"the inflated body exceeds {limit_bytes} bytes")
    if not inflater.eof:
        raise BadRequest("the gzip body is truncated")
    return out


def json_response(value: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(value), status=status, headers=headers, content_type="application/json")


def empty_response(status: int) -> Response:
    """A response without a body (and so without a content type), as Nakadi's 200/201."""
    response = Response(b"", status=status)
    del response.headers["Content-Type"]
    return response
