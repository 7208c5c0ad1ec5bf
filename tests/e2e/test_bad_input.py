"""Bad input through a real server over HTTP (RELIABILITY.md (4), the core
endpoints): every refusal has its documented 4xx status and a Problem JSON
body, never a 5xx; a refused publish stores nothing; an oversized body is
refused with the server's memory bounded; event type names never reach the
file system outside the data directory; a schema never makes the server
connect anywhere.

Every checked response is a case counted in one tally; the last test
prints `bad-input: cases=N expected=N 5xx=0 non_problem=0 outside_files=0
outbound=0` and asserts it.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import select
import socket
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import business_event, business_type
from tests.reliability.harness import Report
from tests.server import Server, serving

pytestmark = pytest.mark.slow

PROBLEM_JSON = "application/problem+json"
REQUEST_BYTES_MAX = 16 * 1024 * 1024  # [server] request_bytes_max, the default
OVERSIZED_BYTES = 200 * 1024 * 1024
RSS_GROWTH_KIB_MAX = 60 * 1024
SEND_PIECE_BYTES = 1024 * 1024
SEND_SECONDS_MAX = 20
REFUSED = "bad.input"  # every publish to it is refused: it must stay empty
ACCEPTED = "bad.accepted"
EMPTY_NEWEST = "001-0001--1"
# Asks any stream these tests open by mistake to end within a second.
SHORT_STREAM = "stream_timeout=1&batch_flush_timeout=1"


# -- the tally --------------------------------------------------------------

@dataclass
class Tally:
    cases: int = 0
    expected: int = 0
    http_5xx: int = 0
    non_problem: int = 0
    outside_files: int = 0
    outbound: int = 0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"bad-input: cases={self.cases} expected={self.expected} 5xx={self.http_5xx} "
                f"non_problem={self.non_problem} outside_files={self.outside_files} outbound={self.outbound}")


TALLY = Tally()
STARTED = time.monotonic()


class Cases:
    """The cases of one test, counted into `TALLY`; `verify` fails the test
    with every mismatch at once."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def expect(self, label: str, response: httpx.Response, status: int | set[int], *,
               problem: bool = True) -> None:
        self.record(label, response.status_code, response.headers.get("content-type"), response.content,
                    status, problem=problem)

    def record(self, label: str, actual: int, content_type: str | None, body: bytes,
               status: int | set[int], *, problem: bool = True) -> None:
        """One case: `actual` must be in `status`; an error must be Problem
        JSON whose `status` is the HTTP status and which has a `title`
        (unless `problem` is False: 422 BatchItemResponse lists)."""
        wanted = {status} if isinstance(status, int) else status
        TALLY.cases += 1
        if actual in wanted:
            TALLY.expected += 1
        else:
            self._fail(f"{label}: status {actual}, expected {sorted(wanted)}: {body[:300]!r}")
        if actual >= 500:
            TALLY.http_5xx += 1
        if actual >= 400 and problem and not _is_problem(actual, content_type, body):
            TALLY.non_problem += 1
            self._fail(f"{label}: not a Problem JSON body ({content_type}): {body[:300]!r}")

    def _fail(self, text: str) -> None:
        self.failures.append(text)
        TALLY.failures.append(text)

    def verify(self) -> None:
        assert not self.failures, "\n".join(self.failures)


def _is_problem(status: int, content_type: str | None, body: bytes) -> bool:
    if (content_type or "").split(";")[0].strip() != PROBLEM_JSON:
        return False
    try:
        value = json.loads(body)
    except ValueError:
        return False
    return (isinstance(value, dict) and value.get("status") == status
            and isinstance(value.get("title"), str) and bool(value["title"]))


# -- the server -------------------------------------------------------------

def walked_root(server: Server) -> Path:
    """The temporary directory that holds the data directory four levels down."""
    return server.data_dir.parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad-input")
    # Nested four deep, so that `../` escapes up to four levels stay inside
    # the tree this module walks.
    with serving(root, root / "a" / "b" / "c" / "data") as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        for name in (REFUSED, ACCEPTED):
            assert client.post("/event-types", json=business_type(name=name)).status_code == 201
        yield client


@pytest.fixture
def cases():
    return Cases()


def publish(client: httpx.Client, name: str, body: bytes, content_type: str | None = "application/json",
            **headers: str) -> httpx.Response:
    if content_type not in (None, "application/json"):
        headers.update(ONCE)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return client.post(f"/event-types/{name}/events", content=body, headers=headers)


def newest_offsets(client: httpx.Client, name: str) -> list[str]:
    response = client.get(f"/event-types/{name}/partitions")
    assert response.status_code == 200, response.text
    return [view["newest_available_offset"] for view in response.json()]


def stream_status(client: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response:
    """The response to a request that opens a stream when it succeeds: an
    error is read whole; a stream opened by mistake is closed at once."""
    with client.stream(method, path, **kwargs) as response:
        if response.status_code != 200:
            response.read()
            return response
        return httpx.Response(200, headers=response.headers, content=b"")


def assert_nothing_stored(client: httpx.Client) -> None:
    assert newest_offsets(client, REFUSED) == [EMPTY_NEWEST]


def with_path(client: httpx.Client, method: str, raw_path: bytes, **kwargs) -> httpx.Response:
    """A request to `raw_path` as given. Use it with `encoded` names: httpx
    removes dot segments even from a raw path, so literal dots and slashes
    go through `raw_request` instead."""
    request = client.build_request(method, "/", **kwargs)
    request.url = request.url.copy_with(raw_path=raw_path)
    return client.send(request)


def encoded(name: str) -> bytes:
    """Every byte of the name percent-encoded: the server sees exactly the name."""
    return "".join(f"%{byte:02X}" for byte in name.encode()).encode()


# The server answers a request before reading its body in a few cases
# (415, unmatched routes, 413 from Content-Length). If the body arrives
# after the answer, the next request on that connection hangs (see
# test_publish_answered_before_its_body_leaves_the_connection_usable), so
# those requests ask for a connection of their own.
ONCE = {"Connection": "close"}


def raw_request(server: Server, method: bytes, target: bytes, body: bytes = b"",
                headers: bytes = b"") -> tuple[int, str | None, bytes]:
    """One request on its own socket, sent byte for byte (no client-side
    normalization of `target`); its status, content type and body. Bounded: 5 s."""
    address = urllib.parse.urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(method + b" " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + headers
                     + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            parsed = _parse_response(received)
            if parsed is not None:
                status, response_headers, response_body = parsed
                return status, response_headers.get("content-type"), response_body
    raise AssertionError(f"no complete response to {method!r} {target!r}: {received[:300]!r}")


EID = "8a7c8d5e-0000-4000-8000-0000000000%02d"
METADATA = b'"metadata":{"eid":"' + EID.encode() + b'","occurred_at":"2024-05-01T10:00:00Z"}'


def event_bytes(fields: bytes, n: int = 1) -> bytes:
    return b"{" + fields + b"," + METADATA % n + b"}"


# -- publishing ---------------------------------------------------------------

MALFORMED_BATCHES = {
    "malformed JSON": b'[{"order_id":',
    "empty body": b"",
    "whitespace body": b"  \n ",
    "object, not an array": event_bytes(b'"order_id":"a"'),
    "string, not an array": b'"events"',
    "null": b"null",
    "array of non-objects": b"[1, 2]",
    "array holding null": b"[null]",
    "trailing garbage": b"[] []",
    "trailing comma": b'[{"order_id":"a",}]',
    "unclosed object": b'[{"order_id":"a"]',
    "NaN": b"[" + event_bytes(b'"order_id":"a","x":NaN') + b"]",
    "Infinity": b"[" + event_bytes(b'"order_id":"a","x":Infinity') + b"]",
    "-Infinity": b"[" + event_bytes(b'"order_id":"a","x":-Infinity') + b"]",
    "invalid UTF-8": b"[" + event_bytes(b'"order_id":"\xff\xfe"') + b"]",
    "overlong UTF-8": b"[" + event_bytes(b'"order_id":"\xc0\xaf"') + b"]",
    "UTF-8-encoded surrogate": b"[" + event_bytes(b'"order_id":"\xed\xa0\x80"') + b"]",
    "lone high surrogate escape": b"[" + event_bytes(b'"order_id":"\\ud800"') + b"]",
    "lone low surrogate escape": b"[" + event_bytes(b'"order_id":"\\udc00x"') + b"]",
    "100k-deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "100k-deep objects in an event": b'[{"order_id":"a","x":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_000 + b"}]",
    "100k-deep with a 2^64+ integer": (b'[{"order_id":"a","n":123456789012345678901234,"x":'
                                       + b"[" * 100_000 + b"]" * 100_000 + b"}]"),
}


def test_publish_unparseable_bodies_are_400_problems_and_store_nothing(client, cases):
    for label, body in MALFORMED_BATCHES.items():
        cases.expect(f"publish {label}", publish(client, REFUSED, body), 400)
    cases.verify()
    assert_nothing_stored(client)


def test_publish_schema_violation_is_422_items_and_stores_nothing(client, cases):
    batch = [business_event("fine"), business_event(17), business_event("after")]
    response = client.post(f"/event-types/{REFUSED}/events", json=batch)
    cases.expect("publish schema-violating event", response, 422, problem=False)
    cases.verify()
    items = response.json()
    assert [item["publishing_status"] for item in items] == ["aborted", "failed", "aborted"]
    assert [item["eid"] for item in items] == [event["metadata"]["eid"] for event in batch]
    assert items[1]["step"] == "validating" and items[1]["detail"]
    assert items[2]["step"] == "none"
    assert_nothing_stored(client)


def test_publish_event_over_999000_bytes_is_422_event_too_large(client, cases):
    batch = [business_event("small"), business_event("big", pad="x" * 999_000)]
    response = client.post(f"/event-types/{REFUSED}/events", json=batch)
    cases.expect("publish event > 999000 bytes", response, 422, problem=False)
    cases.verify()
    items = response.json()
    assert items[1]["publishing_status"] == "failed" and items[1]["step"] == "validating"
    assert items[1]["detail"].startswith("Event too large: ")
    assert "max size is 999000 bytes" in items[1]["detail"]
    assert items[0]["publishing_status"] == "aborted"
    assert_nothing_stored(client)


def test_publish_content_types_non_json_is_415_and_missing_is_json(client, cases):
    body = json.dumps([business_event("plain")]).encode()
    for content_type in ("text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                         "application/xml", "multipart/form-data; boundary=x"):
        cases.expect(f"publish as {content_type}", publish(client, REFUSED, body, content_type), 415)
    cases.expect("create event type as text/plain",
                 client.post("/event-types", content=json.dumps(business_type(name="plain.text")),
                             headers={"Content-Type": "text/plain", **ONCE}), 415)
    cases.expect("cursor-distances as text/plain",
                 client.post(f"/event-types/{REFUSED}/cursor-distances", content=b"[]",
                             headers={"Content-Type": "text/plain", **ONCE}), 415)
    cases.verify()
    assert_nothing_stored(client)
    # curl without -H sends no Content-Type: read as JSON.
    request = client.build_request("POST", f"/event-types/{ACCEPTED}/events", content=body)
    assert "content-type" not in request.headers
    cases.expect("publish without Content-Type", client.send(request), 200)
    cases.verify()


def test_publish_corrupt_gzip_is_400_and_a_gzip_bomb_is_413(client, cases):
    cases.expect("publish corrupt gzip", publish(client, REFUSED, b"\x1f\x8b\x08\x00garbage", **{
        "Content-Encoding": "gzip"}), 400)
    bomb = gzip.compress(b"[" + b" " * (REQUEST_BYTES_MAX + 1024) + b"]")
    assert len(bomb) < 100_000
    cases.expect("publish gzip bomb", publish(client, REFUSED, bomb, **{"Content-Encoding": "gzip"}), 413)
    cases.verify()
    assert_nothing_stored(client)


def read_all(client: httpx.Client, name: str) -> list[bytes]:
    """The raw lines of a stream of every partition of `name` from BEGIN (ends within about a second)."""
    partitions = client.get(f"/event-types/{name}/partitions").json()
    cursors = json.dumps([{"partition": view["partition"], "offset": "BEGIN"} for view in partitions])
    with client.stream("GET", f"/event-types/{name}/events?batch_limit=100&{SHORT_STREAM}",
                       headers={"X-Nakadi-Cursors": cursors}) as response:
        assert response.status_code == 200
        return [line.encode() for line in response.iter_lines()]


def test_publish_integers_beyond_64_bits_are_stored_exactly(client, cases):
    numbers = [b"123456789012345678901234567890", b"18446744073709551616", b"-18446744073709551617",
               b"9" * 300, b"-" + b"1" * 308]
    fields = b'"order_id":"big",' + b",".join(b'"n%d":%s' % (i, n) for i, n in enumerate(numbers))
    cases.expect("publish integers > 2^64", publish(client, ACCEPTED, b"[" + event_bytes(fields, 7) + b"]"), 200)
    cases.verify()
    [line] = [line for line in read_all(client, ACCEPTED) if b'"order_id":"big"' in line]
    for i, number in enumerate(numbers):
        assert b'"n%d":%s,' % (i, number) in line, (number, line[:800])


def test_publish_integers_beyond_the_double_range_are_stored_exactly_or_422(client, cases):
    # RELIABILITY.md (4): "stored exactly or rejected with 422, never rounded".
    for digits in (309, 400, 5000):
        fields = b'"order_id":"huge%d","n":%s' % (digits, b"9" * digits)
        response = publish(client, ACCEPTED, b"[" + event_bytes(fields, 8) + b"]")
        cases.expect(f"publish a {digits}-digit integer", response, {200, 422}, problem=False)
        if response.status_code == 200:
            [line] = [line for line in read_all(client, ACCEPTED) if b'"order_id":"huge%d"' % digits in line]
            assert b'"n":%s,' % (b"9" * digits) in line, line[:300]
    cases.verify()


def test_publish_answered_before_its_body_leaves_the_connection_usable(server, cases):
    """A 415 is decided from the headers. If the body arrives after the
    answer, the connection must serve the next request or be closed; it
    must not hang (a keep-alive client would wait for its timeout)."""
    address = urllib.parse.urlsplit(server.url)
    body = json.dumps([business_event("late body")]).encode()
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"POST /event-types/" + REFUSED.encode() + b"/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body))
        received = b""
        deadline = time.monotonic() + 5
        parsed = None
        while parsed is None and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
            parsed = _parse_response(received)
        assert parsed is not None, received
        status, headers, problem_body = parsed
        cases.record("publish as text/plain, body after the answer", status, headers.get("content-type"),
                     problem_body, 415)
        cases.verify()
        time.sleep(0.3)  # the server is done with the answer before the body comes
        outcome = "hang"
        try:
            sock.sendall(body)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            sock.settimeout(3)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    outcome = "closed"
                    break
                received += chunk
                if _parse_response(received) is not None:
                    outcome = "answered"
                    break
        except (BrokenPipeError, ConnectionResetError):
            outcome = "closed"
        except TimeoutError:
            outcome = "hang"
    print(f"after an answer before the body: {outcome}")
    assert outcome in ("answered", "closed"), "the next request on the connection got no answer in 3 s"


# -- bodies over the limit ----------------------------------------------------

@dataclass
class Oversized:
    status: int
    content_type: str | None
    body: bytes
    sent_before_response: int | None
    sent_total: int
    rss_before_kib: int
    rss_peak_kib: int


def _parse_response(buffer: bytes) -> tuple[int, dict[str, str], bytes] | None:
    """Status, headers and body of a complete response with a
    Content-Length at the start of `buffer`, or None if it is incomplete."""
    head, sep, rest = buffer.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    if len(rest) < length:
        return None
    return status, headers, rest[:length]


def _await_response(sock: socket.socket, received: bytes, seconds: float) -> tuple[bytes, tuple | None]:
    """Read until a whole response is in, the peer closes, or `seconds` pass
    (0: only what is there now); the bytes so far and the parsed response."""
    deadline = time.monotonic() + seconds
    while True:
        ready, _, _ = select.select([sock], [], [], min(0.2, max(0.0, deadline - time.monotonic())))
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                return received, _parse_response(received)
            received += chunk
            parsed = _parse_response(received)
            if parsed is not None:
                return received, parsed
        if time.monotonic() >= deadline:
            return received, _parse_response(received)


def post_oversized(server: Server, *, chunked: bool, total_bytes: int,
                   path: bytes = b"/event-types/" + REFUSED.encode() + b"/events") -> Oversized:
    """POST `total_bytes` of body to `path` (the refused event type), 1 MiB at a
    time, watching for the response after every piece. Bounded: stops at
    `total_bytes`, at the first send error or after `SEND_SECONDS_MAX`.
    With Content-Length, no body byte is sent until the response is in
    (up to 5 s): the server must refuse from the header alone."""
    host, port = urllib.parse.urlsplit(server.url).hostname, urllib.parse.urlsplit(server.url).port
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % total_bytes
    head = (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n" + framing + b"\r\n\r\n")
    data = b"[" + b" " * (SEND_PIECE_BYTES - 1)
    piece = b"%x\r\n%s\r\n" % (len(data), data) if chunked else data
    rss_before = rss_peak = server.rss_kib()
    received = b""
    parsed = None
    sent = 0
    sent_before_response = None
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(head)
        if not chunked:
            received, parsed = _await_response(sock, received, 5)
            if parsed is not None:
                sent_before_response = 0
        deadline = time.monotonic() + SEND_SECONDS_MAX
        while sent < total_bytes and time.monotonic() < deadline:
            if parsed is None:
                received, parsed = _await_response(sock, received, 0)
                if parsed is not None and sent_before_response is None:
                    sent_before_response = sent
            try:
                sock.sendall(piece)
            except OSError:  # reset, broken pipe or a 5 s stall: the server stopped reading
                break
            sent += len(data)
            if sent % (16 * SEND_PIECE_BYTES) == 0:
                rss_peak = max(rss_peak, server.rss_kib())
        if parsed is None:
            received, parsed = _await_response(sock, received, 5)
        if parsed is not None and sent_before_response is None:
            sent_before_response = sent  # the server stopped reading, then answered
    rss_peak = max(rss_peak, server.rss_kib())
    if parsed is None:
        return Oversized(0, None, received, sent_before_response, sent, rss_before, rss_peak)
    status, headers, body = parsed
    return Oversized(status, headers.get("content-type"), body, sent_before_response, sent, rss_before, rss_peak)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_publish_body_over_the_limit_is_413_before_it_is_read_with_bounded_memory(server, client, cases, chunked):
    result = post_oversized(server, chunked=chunked, total_bytes=OVERSIZED_BYTES)
    label = f"publish {OVERSIZED_BYTES >> 20} MiB {'chunked' if chunked else 'with Content-Length'}"
    cases.record(label, result.status, result.content_type, result.body, 413)
    cases.verify()
    # Refused before the whole body was read: from the header alone with a
    # Content-Length; with chunks, soon after the limit (socket buffers aside).
    assert result.sent_before_response is not None
    if chunked:
        assert result.sent_before_response < 4 * REQUEST_BYTES_MAX, result
    else:
        assert result.sent_before_response == 0, result
    growth_kib = result.rss_peak_kib - result.rss_before_kib
    print(f"{label}: sent {result.sent_total >> 20} MiB, answered after {result.sent_before_response >> 20} MiB, "
          f"RSS {result.rss_before_kib >> 10} -> peak {result.rss_peak_kib >> 10} MiB")
    assert growth_kib < RSS_GROWTH_KIB_MAX, result
    assert client.get("/health").status_code == 200
    assert_nothing_stored(client)


# -- unknown event types -------------------------------------------------------

def test_unknown_event_type_is_404_on_publish_read_and_partitions(client, cases):
    cursor = json.dumps({"partition": "0", "offset": "BEGIN"})
    for label, response in [
        ("publish", client.post("/event-types/nope/events", json=[business_event()])),
        ("publish empty batch", client.post("/event-types/nope/events", json=[])),
        ("read", client.get(f"/event-types/nope/events?{SHORT_STREAM}")),
        ("read with cursors", client.get(f"/event-types/nope/events?{SHORT_STREAM}",
                                         headers={"X-Nakadi-Cursors": f"[{cursor}]"})),
        ("partitions", client.get("/event-types/nope/partitions")),
        ("partition", client.get("/event-types/nope/partitions/0")),
        ("cursor-distances", client.post("/event-types/nope/cursor-distances", json=[])),
        ("cursors-lag", client.post("/event-types/nope/cursors-lag", json=[])),
        ("shifted-cursors", client.post("/event-types/nope/shifted-cursors", json=[])),
        ("get", client.get("/event-types/nope")),
    ]:
        cases.expect(f"unknown event type: {label}", response, 404)
    cases.verify()


# -- the low-level stream: cursors and limits -----------------------------------

def test_stream_cursor_header_not_json_is_400_and_unusable_cursors_are_412(client, cases):
    bad_syntax = ["not json", "{", '{"partition":"0","offset":"BEGIN"}', "[null]", '"BEGIN"', "[1]",
                  '[{"partition":"0","offset":"BEGIN"}', "[NaN]"]
    for header in bad_syntax:
        response = client.get(f"/event-types/{REFUSED}/events?{SHORT_STREAM}", headers={"X-Nakadi-Cursors": header})
        cases.expect(f"X-Nakadi-Cursors {header!r}", response, 400)
    unusable = [
        "[]",
        '[{"partition":"9","offset":"BEGIN"}]',
        '[{"partition":"-1","offset":"BEGIN"}]',
        '[{"partition":"0","offset":"abc"}]',
        '[{"partition":"0","offset":"001-0001-00000000000000000x"}]',
        '[{"partition":"0","offset":"END"}]',
        '[{"partition":"0","offset":""}]',
        '[{"partition":"0","offset":null}]',
        '[{"partition":null,"offset":"BEGIN"}]',
        '[{"partition":"0","offset":"001-0001-000000000000000005"}]',
        '[{"partition":"0","offset":"999999999"}]',
        '[{"partition":"0","offset":"-7"}]',
        '[{"partition":"0","offset":"001-ffff-000000000000000000"}]',
        '[{"partition":"0","offset":"BEGIN"},{"partition":"0","offset":"BEGIN"}]',
    ]
    for header in unusable:
        response = client.get(f"/event-types/{REFUSED}/events?{SHORT_STREAM}", headers={"X-Nakadi-Cursors": header})
        cases.expect(f"X-Nakadi-Cursors {header}", response, 412)
    cases.verify()


STREAM_LIMITS = {
    "batch_limit=0": 422,
    "batch_limit=-1": 422,
    "batch_limit=-2147483648": 422,
    "stream_limit=-1": 422,
    "batch_limit=5&stream_limit=2": 422,
    "batch_flush_timeout=-1": 422,
    "stream_keep_alive_limit=-1": 422,
    "stream_timeout=1&batch_flush_timeout=5": 422,
    "batch_limit=x": 400,
    "batch_limit=1.5": 400,
    "stream_limit=99999999999": 400,
    "batch_flush_timeout=%00": 400,
}


def test_stream_bad_limits_are_422_and_unparseable_ones_400(client, cases):
    for query, status in STREAM_LIMITS.items():
        cases.expect(f"stream ?{query}", client.get(f"/event-types/{REFUSED}/events?{query}"), status)
    cases.verify()


def test_stream_timeout_out_of_range_draws_the_default_and_unparseable_is_400(client, cases):
    # RELIABILITY.md (4) lists `stream_timeout` out of range as 422; Nakadi's
    # code (and ours, broker/stream_params.py) replaces 0, negative or above
    # 4200 by the default, and refuses only one below batch_flush_timeout
    # (STREAM_LIMITS above). Those streams open; they are closed at once.
    for query in ("stream_timeout=-1", "stream_timeout=0", "stream_timeout=4201", "stream_timeout=2147483647"):
        cases.expect(f"stream ?{query}", stream_status(client, "GET", f"/event-types/{REFUSED}/events?{query}"), 200)
    for query in ("stream_timeout=99999999999", "stream_timeout=1e3", "stream_timeout=x", "stream_timeout=%00"):
        cases.expect(f"stream ?{query}", stream_status(client, "GET", f"/event-types/{REFUSED}/events?{query}"), 400)
    cases.verify()


# -- partitions and cursor operations --------------------------------------------

def test_partition_consumed_offset_nonsense_is_422(client, cases):
    for offset in ["zz", "", "001-0001-99999999999999999999999", "001-ffff-000000000000000000", "%00",
                   "001-0001-0000000000000000zz", "--1", "1e3", "BEGIN%20"]:
        cases.expect(f"partition 0 consumed_offset={offset!r}",
                     client.get(f"/event-types/{REFUSED}/partitions/0?consumed_offset={offset}"), 422)
    cases.expect("partition 7 consumed_offset=BEGIN",
                 client.get(f"/event-types/{REFUSED}/partitions/7?consumed_offset=BEGIN"), 422)
    cases.expect("partition 7", client.get(f"/event-types/{REFUSED}/partitions/7"), 404)
    for cursors in ["zz", '[{"partition":"0","offset":"zz"}]', '[{"partition":"9","offset":"BEGIN"}]',
                    '[{"partition":"0"}]']:
        cases.expect(f"partitions?cursors={cursors}",
                     client.get(f"/event-types/{REFUSED}/partitions", params={"cursors": cursors}), 422)
    cases.verify()


def _distance(initial: dict | None, final: dict | None) -> dict:
    return {"initial_cursor": initial, "final_cursor": final}


def test_cursor_operations_invalid_cursors_are_422(client, cases):
    begin = {"partition": "0", "offset": "BEGIN"}
    distances = {
        "bad offset": [_distance({"partition": "0", "offset": "zz"}, begin)],
        "unknown partition": [_distance({"partition": "7", "offset": "BEGIN"}, {"partition": "7", "offset": "BEGIN"})],
        "different partitions": [_distance(begin, {"partition": "1", "offset": "BEGIN"})],
        "missing final cursor": [_distance(begin, None)],
        "null offset": [_distance({"partition": "0", "offset": None}, begin)],
        "empty partition": [_distance({"partition": "", "offset": "BEGIN"}, begin)],
    }
    for label, body in distances.items():
        cases.expect(f"cursor-distances {label}",
                     client.post(f"/event-types/{REFUSED}/cursor-distances", json=body), 422)
    shifts = {
        "bad offset": [{"partition": "0", "offset": "zz", "shift": 1}],
        "before the first event": [{"partition": "0", "offset": "BEGIN", "shift": -1}],
        "after the newest event": [{"partition": "0", "offset": "BEGIN", "shift": 1_000_000}],
        "by the largest long": [{"partition": "0", "offset": "BEGIN", "shift": 2**63 - 1}],
        "by the smallest long": [{"partition": "0", "offset": "BEGIN", "shift": -(2**63)}],
        "unknown partition": [{"partition": "5", "offset": "BEGIN", "shift": 0}],
        "null cursor fields": [{"partition": None, "offset": None}],
    }
    for label, body in shifts.items():
        cases.expect(f"shifted-cursors {label}",
                     client.post(f"/event-types/{REFUSED}/shifted-cursors", json=body), 422)
    for label, body in {"bad offset": [{"partition": "0", "offset": "zz"}],
                        "unknown partition": [{"partition": "3", "offset": "BEGIN"}]}.items():
        cases.expect(f"cursors-lag {label}", client.post(f"/event-types/{REFUSED}/cursors-lag", json=body), 422)
    for label, body in {"not JSON": b"[{", "object": b"{}", "NaN": b"[NaN]", "invalid UTF-8": b'["\xff"]',
                        "100k deep": b"[" * 100_000 + b"]" * 100_000, "shift 1e400": (
                            b'[{"partition":"0","offset":"BEGIN","shift":1e400}]')}.items():
        cases.expect(f"shifted-cursors body {label}",
                     client.post(f"/event-types/{REFUSED}/shifted-cursors", content=body,
                                 headers={"Content-Type": "application/json"}), 400)
    cases.verify()


# -- event type names and the file system ------------------------------------------

CANARY = f"nakadi-bad-input-{uuid.uuid4().hex}"
BAD_NAMES = [
    "../x", "../../x", "../../../../x", "..", ".", "%2e%2e%2f", "..%2f", "..%2Fx", "a%2Fb", "a/b", "a\\b",
    "..\\x", "%00", "a\x00b", "\x00", "a" * 256, "a" * 1000, f"/tmp/{CANARY}", f"../../../../../../tmp/{CANARY}",
    "", " ", "a b", "a\nb", "a.", ".a", "a..b", "-a", "_a", "1a", "a:b", "a*b", "a?b", "a;b",
    "\u043erder.created",  # Cyrillic o
    "\uff4frder",  # fullwidth o
    "order\u2024created",  # one dot leader
    "order\uff0ecreated",  # fullwidth full stop
    "\u212aelvin",  # Kelvin sign, NFKC K
    "e\u0301",  # combining accent
    "a\u200bb",  # zero width space
    "\u2025",  # two dot leader
    "a\u2215b",  # division slash
    "\u00e4",
]
# Targets sent byte for byte: dot segments, encoded separators, NUL, bad escapes.
RAW_PATHS = [
    b"/event-types/../x", b"/event-types/..", b"/event-types/.", b"/event-types/./", b"/event-types/%2e%2e%2f",
    b"/event-types/..%2f", b"/event-types/a%2Fb", b"/event-types/a\\b", b"/event-types/%00",
    b"/event-types/%2e%2e", b"/event-types/%2E%2E/%2E%2E", b"/event-types/../../metadata.db",
    b"/event-types/..%2F..%2Fmetadata.db", b"/event-types/..%2F..%2F..%2F..%2Fx/events",
    b"/event-types/%2e%2e%2f%2e%2e%2fmetadata.db/partitions", b"/event-types/%c0%ae%c0%ae",
    b"/event-types/%ff", b"/event-types/%", b"/event-types/x/../" + REFUSED.encode(),
]
# Valid by Nakadi's pattern and harmless on POSIX: created inside the data directory.
WINDOWS_DEVICE_NAMES = ["CON", "NUL", "aux", "COM1", "LPT1"]


def tree(root: Path) -> set[Path]:
    found = set()
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(Path(directory, name))
    return found


def outside_the_data(paths: set[Path], data_dir: Path) -> list[Path]:
    """Paths not inside an event type's directory nor the metadata store."""
    event_types = data_dir / "event-types"
    return sorted(p for p in paths if not (p.is_relative_to(event_types) or p.name.startswith("metadata.db")))


def test_event_type_names_unsafe_are_422_and_reach_no_file_outside_the_data_dir(server, client, cases):
    strays = {walked_root(server) / "x", server.data_dir / "x", server.data_dir / "event-types.x"}
    assert outside_the_data(strays | {server.data_dir / "event-types" / "a" / "0"}, server.data_dir) == sorted(strays)
    before = tree(walked_root(server))
    for name in BAD_NAMES:
        cases.expect(f"create {name!r}", client.post("/event-types", json=business_type(name=name)), 422)
    # Names JSON itself cannot carry: the body is malformed.
    for label, name in [("invalid UTF-8", b"a\xffb"), ("lone surrogate", b"a\\ud800b"), ("raw NUL", b"a\x00b")]:
        body = json.dumps(business_type(name="PLACEHOLDER")).encode().replace(b"PLACEHOLDER", name)
        cases.expect(f"create name with {label}", client.post("/event-types", content=body,
                                                               headers={"Content-Type": "application/json"}), 400)
    for name in WINDOWS_DEVICE_NAMES:
        cases.expect(f"create {name!r}", client.post("/event-types", json=business_type(name=name)), {201, 422})
    for name in filter(None, BAD_NAMES):  # "" would be the list's URL
        path = b"/event-types/" + encoded(name)
        # A name with a slash is a path the router does not match: any 4xx Problem.
        status = 404 if "/" not in name else {400, 404, 405}
        for label, method, target, kwargs in [
            ("get", "GET", path, {}),
            ("partitions", "GET", path + b"/partitions", {}),
            ("read", "GET", path + b"/events?" + SHORT_STREAM.encode(), {}),
            ("delete", "DELETE", path, {}),
            ("update", "PUT", path, {"json": business_type(name=name), "headers": ONCE}),
            ("publish", "POST", path + b"/events", {"json": [business_event()], "headers": ONCE}),
        ]:
            # An update may be refused for its body (the name in it) before the lookup.
            wanted = ({status} if isinstance(status, int) else status) | ({422} if method == "PUT" else set())
            cases.expect(f"{label} {name!r}", with_path(client, method, target, **kwargs), wanted)
    for raw in RAW_PATHS:
        for method in (b"GET", b"DELETE", b"PUT"):
            status, content_type, body = raw_request(server, method, raw, b"{}" if method == b"PUT" else b"",
                                                     b"Content-Type: application/json\r\n")
            wanted = {400, 404, 405, 422} if method == b"PUT" else {400, 404, 405}
            cases.record(f"{method.decode()} {raw.decode()}", status, content_type, body, wanted)
    after = tree(walked_root(server))
    outside = outside_the_data(after - before, server.data_dir)
    canaries = sorted(Path("/tmp").glob(CANARY + "*"))
    TALLY.outside_files += len(outside) + len(canaries)
    cases.verify()
    assert outside == [] and canaries == []
    # What DELETE could have hit is still there.
    assert (server.data_dir / "metadata.db").exists()
    assert (server.data_dir / "event-types" / REFUSED).is_dir()
    assert client.get(f"/event-types/{REFUSED}").status_code == 200
    # A look-alike never finds the real event type.
    for name in ("bad\uff0einput", "b\u0430d.input", "BAD.INPUT", "bad.input ", " bad.input", "bad.input\x00"):
        cases.expect(f"lookup look-alike {name!r}", with_path(client, "GET", b"/event-types/" + encoded(name)), 404)
    cases.verify()


def test_event_type_bodies_unparseable_are_400(client, cases):
    """RELIABILITY.md (4)'s parser rows on the event type resource: NaN,
    Infinity, an overflowing float, invalid UTF-8, a lone surrogate, 100k
    nesting; and integers beyond 2^64 where Nakadi binds a Java int."""
    text = json.dumps(business_type(name="bad.parse")).encode()
    stat = b'"messages_per_minute": 1'
    bodies = {
        "NaN": text.replace(stat, b'"messages_per_minute": NaN'),
        "Infinity": text.replace(stat, b'"messages_per_minute": Infinity'),
        "1e400": text.replace(stat, b'"messages_per_minute": 1e400'),
        "an integer beyond 2^64": text.replace(stat, b'"messages_per_minute": 123456789012345678901234567890'),
        "partitions beyond 2^64": text.replace(b'"read_parallelism": 1', b'"read_parallelism": 18446744073709551617'),
        "invalid UTF-8": text.replace(b'"shop"', b'"sh\xffop"'),
        "lone surrogate escape": text.replace(b'"shop"', b'"sh\\ud800op"'),
        "100k-deep": text[:-1] + b',"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    }
    for label, body in bodies.items():
        assert body != text, label
        cases.expect(f"create event type: {label}", client.post(
            "/event-types", content=body, headers={"Content-Type": "application/json"}), 400)
        cases.expect(f"update event type: {label}", client.put(
            f"/event-types/{ACCEPTED}", content=body.replace(b"bad.parse", ACCEPTED.encode()),
            headers={"Content-Type": "application/json"}), 400)
    cases.verify()
    assert client.get("/event-types/bad.parse").status_code == 404


# -- schemas ------------------------------------------------------------------

class Listener:
    """A TCP listener on 127.0.0.1 counting every connection it is offered."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)  # late connections
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()


def _schemas(base: str) -> dict[str, tuple[str, int | set[int]]]:
    remote = {"type": "object", "properties": {"a": {"$ref": f"{base}/s.json"}}}
    return {
        "not JSON": ("{", 422),
        "JSON array": ("[]", 422),
        "JSON string": ('"x"', 422),
        "empty": ("", 422),
        "NaN": ('{"type":"object","properties":{"a":{"maximum":NaN}}}', 422),
        "duplicate keys": ('{"type":"object","type":"object"}', 422),
        "100k deep": ('{"a":' * 100_000 + "1" + "}" * 100_000, 422),
        "unknown type name": (json.dumps({"type": "object", "properties": {"a": {"type": "foo"}}}), 422),
        "draft-3 required": (json.dumps({"type": "object", "required": "a"}), 422),
        "draft-6 exclusiveMinimum": (json.dumps({"type": "object", "properties": {
            "a": {"type": "number", "exclusiveMinimum": 5}}}), 422),
        "draft-7 $schema, draft-6 keyword": (json.dumps({
            "$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
            "properties": {"a": {"type": "number", "exclusiveMaximum": 5}}}), 422),
        "negative minLength": (json.dumps({"type": "object", "properties": {"a": {"minLength": -1}}}), 422),
        "remote $ref": (json.dumps(remote), 422),
        "remote $ref at the root": (json.dumps({"$ref": f"{base}/s.json"}), 422),
        "remote $ref in definitions": (json.dumps({"type": "object", "definitions": {"x": {"$ref": f"{base}/x#/y"}},
                                                   "properties": {"a": {"$ref": "#/definitions/x"}}}), 422),
        "remote $ref in items": (json.dumps({"type": "object", "properties": {
            "a": {"type": "array", "items": {"$ref": f"{base}/i.json"}}}}), 422),
        "remote $ref in allOf": (json.dumps({"type": "object", "allOf": [{"$ref": f"{base}/all.json"}]}), 422),
        "scheme-relative $ref": (json.dumps({"type": "object", "properties": {
            "a": {"$ref": base.removeprefix("http:") + "/s.json"}}}), 422),
        "relative $ref under a remote id": (json.dumps({"id": f"{base}/base.json", "type": "object",
                                                        "properties": {"a": {"$ref": "other.json"}}}), 422),
        "space before a remote $ref": (json.dumps({"type": "object", "properties": {"a": {"$ref": f" {base}/s"}}}),
                                       422),
        "missing local $ref under a remote id": (json.dumps({
            "id": f"{base}/base.json", "type": "object", "properties": {"a": {"$ref": "#/definitions/nope"}}}), 422),
        "missing local $ref under a nested remote id": (json.dumps({"type": "object", "properties": {"a": {
            "id": f"{base}/n.json", "properties": {"b": {"$ref": "#/definitions/y"}}}}}), 422),
        # Accepted or refused, but never fetched.
        "remote $schema": (json.dumps({"$schema": f"{base}/meta.json", "type": "object"}), {201, 422}),
        "remote $ref under an unknown keyword": (json.dumps({"type": "object", "x-ext": {"$ref": f"{base}/s"}}),
                                                 {201, 422}),
        "local $ref under a remote id": (json.dumps({
            "id": f"{base}/base.json", "type": "object", "definitions": {"x": {"type": "string"}},
            "properties": {"a": {"$ref": "#/definitions/x"}}}), {201, 422}),
        "remote $ref in a default": (json.dumps({"type": "object", "properties": {
            "a": {"type": "object", "default": {"$ref": f"{base}/d.json"}}}}), {201, 422}),
        "format uri": (json.dumps({"type": "object", "properties": {"a": {"type": "string", "format": "uri"}}}),
                       {201, 422}),
    }


def test_event_type_schemas_invalid_are_422_and_never_fetched(client, cases):
    with Listener() as listener:
        base = f"http://127.0.0.1:{listener.port}"
        created = []
        for i, (label, (text, status)) in enumerate(_schemas(base).items()):
            name = f"schema.case{i}"
            body = business_type(name=name, schema={"type": "json_schema", "schema": text})
            response = client.post("/event-types", json=body)
            cases.expect(f"schema {label}", response, status)
            if response.status_code == 201:
                created.append((label, name))
        # Validating events compiles the schema again; that must not fetch either.
        for label, name in created:
            response = client.post(f"/event-types/{name}/events",
                                   json=[business_event("s", a=f"{base}/event", x={"$ref": f"{base}/e"})])
            cases.expect(f"publish to schema {label}", response, {200, 422}, problem=False)
        cases.expect("schema as a JSON object, not a string",
                     client.post("/event-types", json=business_type(name="schema.object", schema={
                         "type": "json_schema", "schema": {"$ref": f"{base}/s.json"}})), {400, 422})
        cases.expect("schema type avro_schema",
                     client.post("/event-types", json=business_type(name="schema.avro", schema={
                         "type": "avro_schema", "schema": "{}"})), 422)
    TALLY.outbound += listener.connections
    cases.verify()
    assert listener.connections == 0


# -- subscriptions ------------------------------------------------------------------

SUBSCRIBED = "bad.sub"  # two partitions, six events, read by the subscription below
SUBSCRIBED_EVENTS = 6


@pytest.fixture(scope="module")
def subscription(client) -> str:
    """The id of a subscription reading `SUBSCRIBED` from the beginning."""
    assert client.post("/event-types", json=business_type(name=SUBSCRIBED, partitions=2)).status_code == 201
    events = [business_event(f"s{i}") for i in range(SUBSCRIBED_EVENTS)]
    assert client.post(f"/event-types/{SUBSCRIBED}/events", json=events).status_code == 200
    response = client.post("/subscriptions", json=subscription_body("bad-input"))
    assert response.status_code == 201, response.text
    return response.json()["id"]


def subscription_body(consumer_group: str, **extra) -> dict:
    """A valid subscription of `SUBSCRIBED`; a fresh `consumer_group` makes a new one
    (the same key answers 200 with the stored subscription, unchecked)."""
    return {"owning_application": "bad-input", "event_types": [SUBSCRIBED], "consumer_group": consumer_group,
            "read_from": "begin", **extra}


def cursor(partition: str, offset: str, event_type: str = SUBSCRIBED) -> dict:
    return {"event_type": event_type, "partition": partition, "offset": offset}


SUBSCRIPTION_MALFORMED = {
    "malformed JSON": b'{"owning_application":',
    "empty body": b"",
    "array": b"[]",
    "null": b"null",
    "string": b'"subscription"',
    "trailing garbage": b'{"owning_application":"a","event_types":["bad.sub"]} {}',
    "NaN": b'{"owning_application":"a","event_types":["bad.sub"],"x":NaN}',
    "Infinity": b'{"owning_application":"a","event_types":["bad.sub"],"x":Infinity}',
    "1e400": b'{"owning_application":"a","event_types":["bad.sub"],"x":1e400}',
    "invalid UTF-8": b'{"owning_application":"\xff\xfe","event_types":["bad.sub"]}',
    "lone surrogate escape": b'{"owning_application":"\\ud800","event_types":["bad.sub"]}',
    "100k-deep": b'{"owning_application":"a","event_types":["bad.sub"],"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "owning_application a number": b'{"owning_application":5,"event_types":["bad.sub"]}',
    "consumer_group beyond 2^64": (b'{"owning_application":"a","event_types":["bad.sub"],'
                                   b'"consumer_group":123456789012345678901234567890}'),
    "event_types a string": b'{"owning_application":"a","event_types":"bad.sub"}',
    "event_types holding null": b'{"owning_application":"a","event_types":[null]}',
    "unknown read_from": b'{"owning_application":"a","event_types":["bad.sub"],"read_from":"yesterday"}',
    "initial_cursors an object": b'{"owning_application":"a","event_types":["bad.sub"],"initial_cursors":{}}',
    "authorization a list": b'{"owning_application":"a","event_types":["bad.sub"],"authorization":[]}',
    "labels mapping to a number": b'{"owning_application":"a","event_types":["bad.sub"],"labels":{"a":1}}',
}

# Both partitions from BEGIN: what `read_from: cursors` needs; the cases break one thing each.
_ALL_BEGIN = [cursor("0", "BEGIN"), cursor("1", "BEGIN")]
SUBSCRIPTION_INVALID = {
    "no owning_application": {"owning_application": None},
    "empty owning_application": {"owning_application": ""},
    "no event_types": {"event_types": None},
    "empty event_types": {"event_types": []},
    "unknown event type": {"event_types": ["nope"]},
    "an unknown and a known event type": {"event_types": [SUBSCRIBED, "nope"]},
    "traversal event type": {"event_types": ["../../metadata.db"]},
    "empty consumer_group": {"consumer_group": ""},
    "cursors without initial_cursors": {"read_from": "cursors"},
    "cursors missing a partition": {"read_from": "cursors", "initial_cursors": _ALL_BEGIN[:1]},
    "cursors naming partition 9": {"read_from": "cursors", "initial_cursors": [cursor("0", "BEGIN"),
                                                                              cursor("9", "BEGIN")]},
    "cursors naming partition 00": {"read_from": "cursors", "initial_cursors": [cursor("00", "BEGIN"),
                                                                               cursor("1", "BEGIN")]},
    "cursors twice for a partition": {"read_from": "cursors", "initial_cursors": [*_ALL_BEGIN, cursor("0", "BEGIN")]},
    "cursors of another event type": {"read_from": "cursors", "initial_cursors": [*_ALL_BEGIN,
                                                                                 cursor("0", "BEGIN", REFUSED)]},
    "cursor offset zz": {"read_from": "cursors", "initial_cursors": [cursor("0", "zz"), cursor("1", "BEGIN")]},
    "cursor offset empty": {"read_from": "cursors", "initial_cursors": [cursor("0", ""), cursor("1", "BEGIN")]},
    "cursor offset null": {"read_from": "cursors", "initial_cursors": [{**cursor("0", ""), "offset": None},
                                                                      cursor("1", "BEGIN")]},
    "cursor offset past the newest": {"read_from": "cursors", "initial_cursors": [
        cursor("0", "001-0001-000000000000000999"), cursor("1", "BEGIN")]},
    "cursor offset -5": {"read_from": "cursors", "initial_cursors": [cursor("0", "-5"), cursor("1", "BEGIN")]},
    "cursor offset of 2^64 digits": {"read_from": "cursors", "initial_cursors": [
        cursor("0", "001-0001-99999999999999999999999"), cursor("1", "BEGIN")]},
    "authorization without attributes": {"authorization": {"admins": [], "readers": []}},
    "authorization with a duplicate": {"authorization": {
        "admins": [{"data_type": "user", "value": "jo"}, {"data_type": "user", "value": "jo"}],
        "readers": [{"data_type": "user", "value": "jo"}]}},
    "label of 64 characters": {"labels": {"a": "x" * 64}},
    "annotation of 1001 characters": {"annotations": {"a": "x" * 1001}},
    "dead-letter annotation alone": {"annotations": {"nakadi.zalando.org/subscription-max-event-send-count": "3"}},
}


def test_subscription_create_malformed_is_400_and_invalid_is_422(client, subscription, cases):
    before = client.get("/subscriptions", params={"limit": 1000}).json()["items"]
    for label, body in SUBSCRIPTION_MALFORMED.items():
        cases.expect(f"create subscription: {label}",
                     client.post("/subscriptions", content=body, headers={"Content-Type": "application/json"}), 400)
    for i, (label, change) in enumerate(SUBSCRIPTION_INVALID.items()):
        body = {key: value for key, value in {**subscription_body(f"invalid-{i}"), **change}.items()
                if value is not None}
        cases.expect(f"create subscription: {label}", client.post("/subscriptions", json=body), 422)
    cases.expect("create subscription as text/plain", client.post(
        "/subscriptions", content=json.dumps(subscription_body("plain")),
        headers={"Content-Type": "text/plain", **ONCE}), 415)
    cases.expect("create subscription, corrupt gzip", client.post(
        "/subscriptions", content=b"\x1f\x8b\x08\x00garbage",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}), 400)
    bomb = gzip.compress(b"{" + b" " * (REQUEST_BYTES_MAX + 1024) + b"}")
    cases.expect("create subscription, gzip bomb", client.post(
        "/subscriptions", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}), 413)
    cases.verify()
    # Nothing was stored by any of them.
    assert client.get("/subscriptions", params={"limit": 1000}).json()["items"] == before


def test_subscription_update_malformed_is_400_and_invalid_is_422(client, subscription, cases):
    path = f"/subscriptions/{subscription}"
    for label in ("malformed JSON", "empty body", "array", "NaN", "invalid UTF-8", "100k-deep"):
        cases.expect(f"update subscription: {label}", client.put(
            path, content=SUBSCRIPTION_MALFORMED[label], headers={"Content-Type": "application/json"}), 400)
    for label, change in {"no owning_application": {"owning_application": None},
                          "another consumer_group": {"consumer_group": "other"},
                          "another event type": {"event_types": [REFUSED]},
                          "another read_from": {"read_from": "end"},
                          "label of 64 characters": {"labels": {"a": "x" * 64}}}.items():
        body = {key: value for key, value in {**subscription_body("bad-input"), **change}.items() if value is not None}
        cases.expect(f"update subscription: {label}", client.put(path, json=body), 422)
    cases.verify()
    assert client.get(path).json()["consumer_group"] == "bad-input"


def test_subscription_list_bad_parameters_are_400(client, subscription, cases):
    for query in ("limit=0", "limit=1001", "limit=-1", "limit=x", "limit=99999999999999999999", "offset=-1",
                  "offset=x", "reader=no-colon", "show_status=maybe"):
        cases.expect(f"list subscriptions ?{query}", client.get(f"/subscriptions?{query}"), 400)
    cases.expect("get subscription ?show_status=maybe",
                 client.get(f"/subscriptions/{subscription}?show_status=maybe"), 400)
    cases.verify()


SUBSCRIPTION_STREAM_LIMITS = {
    "batch_limit=0": 422,
    "batch_limit=-1": 422,
    "batch_limit=-9223372036854775808": 422,
    "max_uncommitted_events=0": 422,
    "max_uncommitted_events=-1": 422,
    "batch_flush_timeout=-1": 422,
    "commit_timeout=61": 422,
    "commit_timeout=-1": 422,
    "commit_timeout=9223372036854775807": 422,
    "batch_limit=x": 400,
    "batch_limit=1.5": 400,
    "batch_limit=%20": 400,
    "commit_timeout=%00": 400,
    "stream_limit=9223372036854775808": 400,
    "max_uncommitted_events=1e3": 400,
}
SUBSCRIPTION_STREAM_BODIES = {
    "not JSON": (b"{", 400),
    "array": (b"[]", 400),
    "NaN": (b'{"batch_limit":NaN}', 400),
    "100k-deep": (b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400),
    "batch_limit a string": (b'{"batch_limit":"x"}', 400),
    "batch_limit true": (b'{"batch_limit":true}', 400),
    "batch_limit 1.5": (b'{"batch_limit":1.5}', 400),
    "batch_limit beyond 2^64": (b'{"batch_limit":123456789012345678901234567890}', 400),
    "batch_limit 0": (b'{"batch_limit":0}', 422),
    "commit_timeout 61": (b'{"commit_timeout":61}', 422),
    "partitions an object": (b'{"partitions":{}}', 400),
    "partitions holding null": (b'{"partitions":[null]}', 422),
    "partition without event_type": (b'{"partitions":[{"partition":"0"}]}', 422),
    "unknown partition": (b'{"partitions":[{"event_type":"bad.sub","partition":"9"}]}', 422),
    "partition of another event type": (b'{"partitions":[{"event_type":"bad.input","partition":"0"}]}', 422),
    "the same partition twice": (b'{"partitions":[{"event_type":"bad.sub","partition":"0"},'
                                 b'{"event_type":"bad.sub","partition":"0"}]}', 422),
}


def test_subscription_stream_bad_parameters_are_422_and_unparseable_ones_400(client, subscription, cases):
    path = f"/subscriptions/{subscription}/events"
    for query, status in SUBSCRIPTION_STREAM_LIMITS.items():
        cases.expect(f"subscription stream ?{query}", stream_status(client, "GET", f"{path}?{query}"), status)
    for label, (body, status) in SUBSCRIPTION_STREAM_BODIES.items():
        cases.expect(f"subscription stream POST {label}", stream_status(
            client, "POST", path, content=body, headers={"Content-Type": "application/json"}), status)
    cases.expect("subscription stream POST as text/plain", stream_status(
        client, "POST", path, content=b"{}", headers={"Content-Type": "text/plain", **ONCE}), 415)
    cases.verify()


@contextlib.contextmanager
def direct_stream(server: Server, subscription_id: str) -> Iterator[tuple[str, dict]]:
    """A stream of partition 0 only (direct assignment); its stream id and
    the cursor of its first batch. Whatever was sent is committed at the
    end, so the partition is free again; bounded: 10 s per read."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as streamer:
        body = {"partitions": [{"event_type": SUBSCRIBED, "partition": "0"}], "batch_limit": SUBSCRIBED_EVENTS,
                "batch_flush_timeout": 1, "stream_timeout": 60, "commit_timeout": 60}
        with streamer.stream("POST", f"/subscriptions/{subscription_id}/events", json=body) as response:
            assert response.status_code == 200, response.read()
            stream_id = response.headers["X-Nakadi-StreamId"]
            # next(), not a for loop: leaving a for loop over iter_lines closes the response.
            lines = response.iter_lines()
            first = None
            deadline = time.monotonic() + 10
            while first is None and time.monotonic() < deadline:
                batch = json.loads(next(lines))
                if batch.get("events"):
                    first = batch["cursor"]
            assert first is not None and first["partition"] == "0", first
            yield stream_id, first
            done = streamer.post(f"/subscriptions/{subscription_id}/cursors", json={"items": [first]},
                                 headers={"X-Nakadi-StreamId": stream_id})
            assert done.status_code in (200, 204), done.text


def test_subscription_commit_bad_stream_ids_and_cursors_are_422(server, client, subscription, cases):
    path = f"/subscriptions/{subscription}/cursors"
    other = client.post("/subscriptions", json=subscription_body("commit-other")).json()["id"]
    with direct_stream(server, subscription) as (stream_id, first):
        own = {"X-Nakadi-StreamId": stream_id}
        for label, headers in {"without X-Nakadi-StreamId": {}, "with an empty X-Nakadi-StreamId": {
                "X-Nakadi-StreamId": ""}, "with an unknown X-Nakadi-StreamId": {"X-Nakadi-StreamId": str(uuid.uuid4())},
                "with a traversal X-Nakadi-StreamId": {"X-Nakadi-StreamId": "../../metadata.db"},
                "with a 4 KiB X-Nakadi-StreamId": {"X-Nakadi-StreamId": "a" * 4096}}.items():
            cases.expect(f"commit {label}", client.post(path, json={"items": [first]}, headers=headers), 422)
        cases.expect("commit with another subscription's stream id",
                     client.post(f"/subscriptions/{other}/cursors", json={"items": [{**first}]}, headers=own), 422)
        cases.expect("commit an empty cursor list", client.post(path, json={"items": []}, headers=own), 422)
        cases.expect("commit an empty cursor list without a stream id", client.post(path, json={"items": []}), 422)
        for label, item in {
            "offset zz": {**first, "offset": "zz"},
            "offset empty": {**first, "offset": ""},
            "offset END": {**first, "offset": "END"},
            "offset null": {**first, "offset": None},
            "offset a number": {**first, "offset": 3},
            "offset past the newest": {**first, "offset": "001-0001-000000000000000999"},
            "offset of another version": {**first, "offset": "001-ffff-000000000000000000"},
            "offset of 2^64 digits": {**first, "offset": "001-0001-99999999999999999999999"},
            "partition 9": {**first, "partition": "9"},
            "partition -1": {**first, "partition": "-1"},
            "partition 00": {**first, "partition": "00"},
            "partition null": {**first, "partition": None},
            "partition 1, not held by the stream": {**first, "partition": "1", "offset": "001-0001-000000000000000000"},
            "unknown event type": {**first, "event_type": "nope"},
            "traversal event type": {**first, "event_type": "../../metadata.db"},
            "no cursor_token": {key: value for key, value in first.items() if key != "cursor_token"},
            "cursor null": None,
            "cursor a string": "001-0001-000000000000000000",
        }.items():
            cases.expect(f"commit cursor {label}", client.post(path, json={"items": [item]}, headers=own), 422)
        for label, body in {"not JSON": b"{", "array": b"[]", "without items": b"{}", "items an object": (
                b'{"items":{}}'), "NaN": b'{"items":[NaN]}', "100k-deep": b'{"items":' + b"[" * 100_000
                + b"]" * 100_000 + b"}"}.items():
            cases.expect(f"commit body {label}", client.post(
                path, content=body, headers={"Content-Type": "application/json", **own}), 400)
        # Every refusal above left the stream usable: its cursor commits.
        cases.expect("commit the first batch", client.post(path, json={"items": [first]}, headers=own), 204)
    cases.verify()
    committed = client.get(path).json()["items"]
    assert {c["partition"]: c["offset"] for c in committed}["0"] == first["offset"], committed


def test_subscription_reset_bad_offsets_are_422(client, subscription, cases):
    path = f"/subscriptions/{subscription}/cursors"
    before = client.get(path).json()["items"]
    for label, item in {
        "offset zz": cursor("0", "zz"),
        "offset empty": cursor("0", ""),
        "offset null": {**cursor("0", ""), "offset": None},
        "offset a number": {**cursor("0", ""), "offset": 3},
        "no offset": {"event_type": SUBSCRIBED, "partition": "0"},
        "offset -5": cursor("0", "-5"),
        "offset past the newest": cursor("0", "001-0001-000000000000000999"),
        "offset of another version": cursor("0", "001-ffff-000000000000000000"),
        "offset of 2^64 digits": cursor("0", "001-0001-99999999999999999999999"),
        "partition 9": cursor("9", "BEGIN"),
        "partition null": {**cursor("0", "BEGIN"), "partition": None},
        "partition a number": {**cursor("0", "BEGIN"), "partition": 0},
        "event type not in the subscription": cursor("0", "BEGIN", REFUSED),
        "unknown event type": cursor("0", "BEGIN", "nope"),
        "cursor null": None,
        "timestamp not a date": {"event_type": SUBSCRIBED, "partition": "0", "timestamp": "yesterday"},
        "timestamp without a zone": {"event_type": SUBSCRIBED, "partition": "0", "timestamp": "2024-01-01T00:00:00"},
        "timestamp a number": {"event_type": SUBSCRIBED, "partition": "0", "timestamp": 5},
        "timestamp in year 99999": {"event_type": SUBSCRIBED, "partition": "0", "timestamp": "99999-01-01T00:00:00Z"},
    }.items():
        cases.expect(f"reset cursor {label}", client.patch(path, json={"items": [item]}), 422)
    cases.expect("reset a good and a bad cursor", client.patch(path, json={"items": [
        cursor("1", "BEGIN"), cursor("0", "zz")]}), 422)
    for label, body in {"not JSON": b"{", "array": b"[]", "without items": b"{}", "NaN": b'{"items":[NaN]}',
                        "invalid UTF-8": b'{"items":["\xff"]}'}.items():
        cases.expect(f"reset body {label}", client.patch(path, content=body,
                                                         headers={"Content-Type": "application/json"}), 400)
    cases.expect("reset as text/plain", client.patch(path, content=b'{"items":[]}',
                                                     headers={"Content-Type": "text/plain", **ONCE}), 415)
    cases.verify()
    # A refused reset moved nothing (tokens are fresh on every read: compare offsets).
    after = client.get(path).json()["items"]
    if before:
        assert [(c["partition"], c["offset"]) for c in after] == [(c["partition"], c["offset"]) for c in before]


# Subscription ids that look like paths, escapes or look-alikes; sent percent-encoded.
BAD_SUBSCRIPTION_IDS = [
    "../x", "..", ".", "../../metadata.db", "../event-types/" + REFUSED, "..%2f", "%2e%2e%2f", "a/b", "a\\b",
    "\x00", "a\x00b", "a" * 1000, f"/tmp/{CANARY}", f"../../../../../../tmp/{CANARY}", " ", "\u2025",
    "\uff0e\uff0e", "' OR '1'='1", "00000000-0000-0000-0000-000000000000", "*", "%",
]
# Sent byte for byte (an empty segment, `//`, is a 404 like any unknown path).
RAW_SUBSCRIPTION_PATHS = [
    b"/subscriptions/../x", b"/subscriptions/..", b"/subscriptions/.", b"/subscriptions/%2e%2e",
    b"/subscriptions/..%2fmetadata.db", b"/subscriptions/%2e%2e%2f%2e%2e%2fmetadata.db/cursors",
    b"/subscriptions/a%2Fb", b"/subscriptions/%00", b"/subscriptions/%ff", b"/subscriptions/%",
    b"/subscriptions/a\\b", b"/subscriptions/../../metadata.db/stats", b"/subscriptions/x/../",
    b"/subscriptions/%c0%ae%c0%ae/events", b"/subscriptions/%20", b"/subscriptions//cursors",
]


def _subscription_routes(path: bytes) -> list[tuple[str, str, bytes, dict]]:
    """Every route of a subscription; requests with a body ask for their own
    connection (`ONCE`), as an unmatched route is answered before its body."""
    commit = {"items": [{**cursor("0", "BEGIN"), "cursor_token": str(uuid.uuid4())}]}
    return [
        ("get", "GET", path, {}),
        ("update", "PUT", path, {"json": subscription_body("bad-input"), "headers": ONCE}),
        ("delete", "DELETE", path, {}),
        ("stream", "GET", path + b"/events?stream_timeout=1", {}),
        ("stream POST", "POST", path + b"/events", {"json": {"stream_timeout": 1}, "headers": ONCE}),
        ("cursors", "GET", path + b"/cursors", {}),
        ("commit", "POST", path + b"/cursors", {"json": commit, "headers": {
            "X-Nakadi-StreamId": str(uuid.uuid4()), **ONCE}}),
        ("reset", "PATCH", path + b"/cursors", {"json": {"items": [cursor("0", "BEGIN")]}, "headers": ONCE}),
        ("stats", "GET", path + b"/stats", {}),
    ]


def test_subscription_unknown_ids_are_404_on_every_route(client, subscription, cases):
    for name in (str(uuid.uuid4()), subscription.upper(), subscription + " ", subscription[:-1],
                 subscription.replace("-", "")):
        for label, method, target, kwargs in _subscription_routes(b"/subscriptions/" + encoded(name)):
            cases.expect(f"unknown subscription {name!r}: {label}", stream_status(
                client, method, target.decode(), **kwargs), 404)
    cases.verify()


def test_subscription_ids_unsafe_are_404_and_reach_no_file_outside_the_data_dir(server, client, subscription,
                                                                                 cases):
    before = tree(walked_root(server))
    for name in BAD_SUBSCRIPTION_IDS:
        # An id with a slash is a path the router does not match: any 4xx Problem.
        status = {404} if "/" not in name else {400, 404, 405}
        for label, method, target, kwargs in _subscription_routes(b"/subscriptions/" + encoded(name)):
            request = client.build_request(method, "/", **kwargs)
            request.url = request.url.copy_with(raw_path=target)
            cases.expect(f"subscription id {name!r}: {label}", _send_stream(client, request), status)
    body = json.dumps(subscription_body("bad-input")).encode()
    for raw in RAW_SUBSCRIPTION_PATHS:
        for method, payload in ((b"GET", b""), (b"DELETE", b""), (b"PUT", body), (b"POST", b"{}"),
                                (b"PATCH", b'{"items":[]}')):
            target = raw + b"/cursors" if method == b"PATCH" else raw
            status, content_type, response = raw_request(server, method, target, payload,
                                                         b"Content-Type: application/json\r\n")
            wanted = {400, 404, 405}
            cases.record(f"{method.decode()} {target.decode(errors='replace')}", status, content_type, response,
                         wanted)
    after = tree(walked_root(server))
    outside = outside_the_data(after - before, server.data_dir)
    canaries = sorted(Path("/tmp").glob(CANARY + "*"))
    TALLY.outside_files += len(outside) + len(canaries)
    cases.verify()
    assert outside == [] and canaries == []
    # What a DELETE could have hit is still there.
    assert client.get(f"/subscriptions/{subscription}").status_code == 200
    assert client.get(f"/event-types/{REFUSED}").status_code == 200
    assert (server.data_dir / "metadata.db").exists()


def _send_stream(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    """`request` sent; a stream opened by mistake is closed at once."""
    response = client.send(request, stream=True)
    try:
        if response.status_code != 200:
            response.read()
            return response
        return httpx.Response(200, headers=response.headers, content=b"")
    finally:
        response.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route", ["create", "commit"])
def test_subscription_body_over_the_limit_is_413_with_bounded_memory(server, client, subscription, cases,
                                                                     route, chunked):
    path = b"/subscriptions" if route == "create" else f"/subscriptions/{subscription}/cursors".encode()
    result = post_oversized(server, chunked=chunked, total_bytes=OVERSIZED_BYTES, path=path)
    label = f"{route} subscription {OVERSIZED_BYTES >> 20} MiB {'chunked' if chunked else 'with Content-Length'}"
    cases.record(label, result.status, result.content_type, result.body, 413)
    cases.verify()
    assert result.sent_before_response is not None
    if chunked:
        assert result.sent_before_response < 4 * REQUEST_BYTES_MAX, result
    else:
        assert result.sent_before_response == 0, result
    assert result.rss_peak_kib - result.rss_before_kib < RSS_GROWTH_KIB_MAX, result
    assert client.get("/health").status_code == 200


# -- the report ---------------------------------------------------------------

def test_bad_input_report(server, client):
    if TALLY.cases == 0:
        pytest.skip("run with the whole module: it reports the cases of the tests above")
    assert server.process.poll() is None, "the server exited"
    assert client.get("/health").status_code == 200
    log = "".join(server.stderr)
    unexpected = [line for line in log.splitlines() if "unexpected error" in line or "Traceback" in line]
    print(TALLY.line())
    # RELIABILITY.md "Report format": `cycles` counts the cases here.
    report = Report(suite="bad_input", seed=0, cycles=TALLY.cases, http_5xx=TALLY.http_5xx,
                    non_problem_errors=TALLY.non_problem, started=STARTED)
    extra = {"cases": TALLY.cases, "expected": TALLY.expected, "outside_files": TALLY.outside_files,
             "outbound": TALLY.outbound, "server_errors_logged": len(unexpected)}
    print(f"bad-input extra: {json.dumps(extra)}")
    report.finish()
    assert TALLY.http_5xx == 0 and TALLY.non_problem == 0
    assert TALLY.outside_files == 0 and TALLY.outbound == 0
    assert TALLY.expected == TALLY.cases, "\n".join(TALLY.failures)
    assert unexpected == [], unexpected
