"""The publish front (api/publish_front.py): the publishes it answers get
the answers Quart's publish route gives, and every other request reaches
Quart with its body unread."""

import gzip
import logging

import orjson
import pytest
import trio
import trio.testing

from api.app import create_app
from api.auth import AUTHENTICATION_OFF, authenticator
from api.publish_front import serve_publishes

from .auth_helpers import BOB_TOKEN, TOKENS_AUTH, UNKNOWN_TOKEN, bearer
from .helpers import business_event, business_type

ET = "order.created"
PATH = f"/event-types/{ET}/events"
LIMIT = 64 * 1024


def scope(method="POST", path=PATH, headers=(), body_length: int | None = 0):
    """An HTTP scope as Hypercorn builds it (header names in lower case)."""
    headers = [(name.lower().encode(), value.encode()) for name, value in headers]
    if body_length is not None:
        headers.append((b"content-length", str(body_length).encode()))
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2), "extensions": {}}


class Exchange:
    """The receive and send of one request: the body in `chunks`, what the app sent in `sent`."""

    def __init__(self, *chunks: bytes, then_disconnect: bool = False, stall: bool = False) -> None:
        self.messages = [{"type": "http.request", "body": chunk, "more_body": i + 1 < len(chunks) or stall
                          or then_disconnect} for i, chunk in enumerate(chunks)]
        if then_disconnect:
            self.messages.append({"type": "http.disconnect"})
        self.received = 0
        self.sent: list[dict] = []

    async def receive(self):
        if self.received == len(self.messages):
            await trio.sleep_forever()
        self.received += 1
        return self.messages[self.received - 1]

    async def send(self, message):
        self.sent.append(message)

    @property
    def status(self):
        return self.sent[0]["status"]

    @property
    def headers(self):
        return {name: value for name, value in self.sent[0]["headers"]}

    @property
    def body(self):
        return b"".join(message.get("body", b"") for message in self.sent[1:])


class Quart:
    """The app behind the front: records the requests handed to it."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@pytest.fixture
async def ready(broker):
    await broker.create_event_type(business_type(ET, partitions=2))
    return broker


def front(broker, auth=AUTHENTICATION_OFF, body_timeout_s=60.0):
    inner = Quart()
    return serve_publishes(inner, broker, auth, request_bytes_max=LIMIT, body_timeout_s=body_timeout_s), inner


async def stored(broker):
    events = []
    for partition in (0, 1):
        runs = await broker._logs.read_runs(ET, partition, 0, 1000, 1 << 20)
        events += [orjson.loads(payload) for run in runs for payload in run.payloads]
    return events


async def test_front_publishes_a_plain_json_body_itself(ready):
    app, inner = front(ready)
    body = orjson.dumps([business_event("a"), business_event("b")])
    exchange = Exchange(body[:10], body[10:])
    await app(scope(body_length=len(body), headers=[("Content-Type", "application/json; charset=utf-8"),
                                                    ("X-Flow-Id", "flow-7")]), exchange.receive, exchange.send)
    assert inner.calls == 0
    assert exchange.status == 200 and exchange.body == b""
    assert exchange.headers == {b"content-length": b"0", b"x-flow-id": b"flow-7"}
    assert sorted(e["order_id"] for e in await stored(ready)) == ["a", "b"]
    assert {e["metadata"]["flow_id"] for e in await stored(ready)} == {"flow-7"}


@pytest.mark.parametrize(("method", "path", "headers", "length"), [
    ("GET", PATH, [], 0),
    ("POST", "/event-types", [], 2),
    ("POST", f"{PATH}/", [], 2),
    ("POST", "/event-types//events", [], 2),
    ("POST", PATH, [("Content-Encoding", "gzip")], 2),
    ("POST", PATH, [("Content-Type", "text/plain")], 2),
    ("POST", PATH, [], LIMIT + 1),
    ("POST", PATH, [("X-Flow-Id", "a"), ("X-Flow-Id", "b")], 2),
], ids=["GET", "other route", "trailing slash", "empty name", "gzip", "not JSON", "declared too large",
        "repeated header"])
async def test_front_hands_other_requests_to_quart_unread(ready, method, path, headers, length):
    app, inner = front(ready)
    exchange = Exchange(b"[]")
    await app(scope(method, path, headers, length), exchange.receive, exchange.send)
    assert inner.calls == 1 and exchange.received == 0 and exchange.status == 599


async def test_front_leaves_a_caller_who_proves_nothing_to_quart(ready):
    app, inner = front(ready, authenticator(TOKENS_AUTH))
    for headers in ([], [("Authorization", f"Bearer {UNKNOWN_TOKEN}")]):
        exchange = Exchange(b"[]")
        await app(scope(headers=headers, body_length=2), exchange.receive, exchange.send)
        assert exchange.received == 0 and exchange.status == 599
    exchange = Exchange(orjson.dumps([business_event("a")]))
    await app(scope(headers=list(bearer(BOB_TOKEN).items()), body_length=len(exchange.messages[0]["body"])),
              exchange.receive, exchange.send)
    assert exchange.status == 200 and inner.calls == 2
    assert (await stored(ready))[0]["metadata"]["published_by"] == "bob"


async def test_front_reads_a_body_of_no_declared_length_only_up_to_the_limit(ready):
    app, inner = front(ready)
    exchange = Exchange(b"[" + b" " * (LIMIT - 1), b"]", b"never read")
    await app(scope(body_length=None), exchange.receive, exchange.send)
    assert exchange.status == 413 and exchange.headers[b"content-type"] == b"application/problem+json"
    assert orjson.loads(exchange.body)["title"] == "Request Entity Too Large"
    assert exchange.received == 2 and inner.calls == 0 and await stored(ready) == []


async def test_front_answers_nobody_who_left_and_stores_nothing(ready):
    app, _ = front(ready)
    exchange = Exchange(b"[", then_disconnect=True)
    await app(scope(body_length=100), exchange.receive, exchange.send)
    assert exchange.sent == [] and await stored(ready) == []


async def test_front_times_out_a_body_that_stops_coming(ready, autojump_clock):
    app, _ = front(ready, body_timeout_s=60.0)
    exchange = Exchange(b"[", stall=True)
    started = trio.current_time()
    await app(scope(body_length=100), exchange.receive, exchange.send)
    assert trio.current_time() - started == pytest.approx(60.0)
    assert exchange.status == 408 and orjson.loads(exchange.body)["status"] == 408


async def test_front_answers_an_unexpected_error_with_a_500_problem_and_logs_it(ready, monkeypatch, caplog):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(ready, "publish", broken)
    app, _ = front(ready)
    exchange = Exchange(b"[]")
    with caplog.at_level(logging.ERROR):
        await app(scope(body_length=2, headers=[("X-Flow-Id", "f-500")]), exchange.receive, exchange.send)
    assert exchange.status == 500
    detail = orjson.loads(exchange.body)["detail"]
    error_id = detail.rsplit("(", 1)[1].rstrip(")")
    assert error_id.startswith("ETI") and "boom" not in detail
    assert any(error_id in record.getMessage() and "f-500" in record.getMessage() for record in caplog.records)


def cases():
    valid = [business_event("a"), business_event("b")]
    invalid = [business_event("a"), business_event(7)]
    return [("valid", ET, orjson.dumps(valid)), ("invalid", ET, orjson.dumps(invalid)),
            ("unparseable", ET, b"[{"), ("not an array", ET, b"{}"), ("empty", ET, b""),
            ("unknown type", "no.such.type", b"[]"), ("bad name", "..", b"[]")]


@pytest.mark.parametrize(("case", "name", "body"), cases(), ids=[case[0] for case in cases()])
async def test_front_and_quart_give_the_same_answer(ready, case, name, body):
    """The same body, plain (the front answers) and gzipped (Quart's route answers)."""
    client = create_app(ready, request_bytes_max=LIMIT).test_client()
    path = f"/event-types/{name}/events"
    headers = {"Content-Type": "application/json", "X-Flow-Id": "same-flow"}
    plain = await client.post(path, data=body, headers={**headers, "Content-Length": str(len(body))})
    zipped = await client.post(path, data=gzip.compress(body), headers={**headers, "Content-Encoding": "gzip"})
    assert plain.status_code == zipped.status_code
    assert await plain.get_data() == await zipped.get_data()
    assert plain.headers.get("Content-Type") == zipped.headers.get("Content-Type")
    assert plain.headers["X-Flow-Id"] == zipped.headers["X-Flow-Id"] == "same-flow"
