"""Every route of the app times every kind of caller, in `tokens` and in
`jwt` mode, through the in-process app.

The routes come from the app's own URL map, so a route added without an
entry in `ROUTES` fails the suite. Each route gets a concrete request on an
event type and a subscription whose authorization lists name distinct
subjects: `admin` (event type and subscription admins), `writer` (event
type writers) and `reader` (event type and subscription readers); `nobody`
is in no list. The caller "not listed" of a route is a subject listed in
the *other* lists of the resource, so a route checking the wrong list
fails too.

Columns: no header, `Basic` credentials, `Bearer` without a token, an
unknown token, an expired JWT, a JWT signed with another key (in `tokens`
mode the two JWTs are just unknown tokens): 401 with `WWW-Authenticate:
Bearer` and Problem JSON. A subject not listed: 403 on a route guarded by
a list, the route's answer on one that needs authentication only. A listed
subject: the route's answer, never 401 or 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import trio

from api.app import create_app
from api.auth import authenticator
from api.auth_config import AuthConfig, TokenConfig
from broker.broker import Broker, BrokerConfig
from tests.reliability.harness import Report

from .auth_helpers import JWT_AUTH, UNKNOWN_TOKEN, bearer, jwt_for, unverified_jwts
from .helpers import SCHEMA, business_event, business_type

ET = "matrix.orders"
PUBLIC = "public"
SUBJECTS = ("admin", "writer", "reader", "nobody")
TOKEN_OF = {name: f"matrix-token-{name}-0123456789abcdef" for name in SUBJECTS}
TOKENS_AUTH = AuthConfig("tokens", tokens=tuple(TokenConfig(TOKEN_OF[name], "user", name) for name in SUBJECTS))
AUTH_OF_MODE = {"tokens": TOKENS_AUTH, "jwt": JWT_AUTH}
REFUSED_COLUMNS = ("no header", "Basic", "Bearer without token", "unknown token", "expired JWT",
                   "wrong-signature JWT")
COLUMNS = (*REFUSED_COLUMNS, "not listed", "listed")


def user(name: str) -> dict[str, str]:
    return {"data_type": "user", "value": name}


ET_AUTH = {"admins": [user("admin")], "writers": [user("writer")], "readers": [user("reader")]}
SUBSCRIPTION_AUTH = {"admins": [user("admin")], "readers": [user("reader")]}
SUBSCRIPTION = {"owning_application": "shop", "event_types": [ET], "read_from": "begin",
                "authorization": SUBSCRIPTION_AUTH}
BEGIN = [{"partition": "0", "offset": "BEGIN"}]
NEWER_SCHEMA = {"type": "json_schema", "schema": json.dumps(
    {**SCHEMA, "properties": {**SCHEMA["properties"], "note": {"type": "string"}}})}


@dataclass(frozen=True)
class Call:
    """A route's request ({et} and {sid} filled in, a body made per column
    when callable), a caller who may make it, one who is not listed, whether
    a list guards it at all, and the answer a caller who may gets."""

    listed: str
    not_listed: str
    status: int
    path: str
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    guarded: bool = True


def event_type_admin(status: int, path: str, body: object = None) -> Call:
    return Call("admin", "writer", status, path, body)


def event_type_writer(status: int, path: str, body: object = None) -> Call:
    return Call("writer", "reader", status, path, body)


def event_type_reader(status: int, path: str, body: object = None, headers: dict[str, str] | None = None) -> Call:
    return Call("reader", "writer", status, path, body, headers or {})


def public(path: str) -> Call:
    return Call(PUBLIC, PUBLIC, 200, path, guarded=False)


def subscription_admin(status: int, path: str, body: object = None) -> Call:
    return Call("admin", "reader", status, path, body)


def subscription_reader(status: int, path: str, body: object = None) -> Call:
    return Call("reader", "admin", status, path, body)


def authenticated(status: int, path: str, body: object = None) -> Call:
    """A route any authenticated caller may use: `nobody` gets its answer too."""
    return Call("reader", "nobody", status, path, body, guarded=False)


ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/health"): public("/health"),
    ("GET", "/ready"): public("/ready"),
    ("GET", "/openapi.json"): authenticated(200, "/openapi.json"),
    ("GET", "/metrics"): authenticated(200, "/metrics"),
    ("GET", "/event-types"): authenticated(200, "/event-types"),
    ("POST", "/event-types"): authenticated(201, "/event-types", lambda column: business_type(f"new.{column}")),
    ("GET", "/event-types/<name>"): authenticated(200, "/event-types/{et}"),
    ("PUT", "/event-types/<name>"): event_type_admin(200, "/event-types/{et}",
                                                     business_type(ET, authorization=ET_AUTH)),
    ("DELETE", "/event-types/<name>"): event_type_admin(409, "/event-types/{et}"),  # a subscription reads it
    ("GET", "/event-types/<name>/schemas"): authenticated(200, "/event-types/{et}/schemas"),
    ("POST", "/event-types/<name>/schemas"): event_type_admin(200, "/event-types/{et}/schemas", NEWER_SCHEMA),
    ("GET", "/event-types/<name>/schemas/<version>"): authenticated(200, "/event-types/{et}/schemas/1.0.0"),
    ("POST", "/event-types/<name>/schemas/<version>/compatibility-check"): authenticated(
        200, "/event-types/{et}/schemas/1.0.0/compatibility-check", NEWER_SCHEMA),
    ("GET", "/registry/partition-strategies"): authenticated(200, "/registry/partition-strategies"),
    ("GET", "/registry/enrichment-strategies"): authenticated(200, "/registry/enrichment-strategies"),
    ("POST", "/event-types/<name>/events"): event_type_writer(200, "/event-types/{et}/events",
                                                              [business_event("o2")]),
    ("GET", "/event-types/<name>/events"): event_type_reader(
        200, "/event-types/{et}/events?stream_limit=1&batch_flush_timeout=1",
        headers={"X-Nakadi-Cursors": json.dumps(BEGIN)}),
    ("POST", "/event-types/<name>/deleted-events"): event_type_writer(  # not a compacted event type
        422, "/event-types/{et}/deleted-events", [business_event("o1")]),
    ("GET", "/event-types/<name>/partitions"): event_type_reader(200, "/event-types/{et}/partitions"),
    ("GET", "/event-types/<name>/partitions/<partition>"): event_type_reader(200, "/event-types/{et}/partitions/0"),
    ("POST", "/event-types/<name>/cursor-distances"): event_type_reader(
        200, "/event-types/{et}/cursor-distances", [{"initial_cursor": BEGIN[0], "final_cursor": BEGIN[0]}]),
    ("POST", "/event-types/<name>/cursors-lag"): event_type_reader(200, "/event-types/{et}/cursors-lag", BEGIN),
    ("POST", "/event-types/<name>/shifted-cursors"): event_type_reader(
        200, "/event-types/{et}/shifted-cursors", [{**BEGIN[0], "shift": 1}]),
    ("POST", "/subscriptions"): event_type_reader(
        201, "/subscriptions", lambda column: {**SUBSCRIPTION, "consumer_group": column}),
    ("GET", "/subscriptions"): authenticated(200, "/subscriptions"),
    ("GET", "/subscriptions/<subscription_id>"): authenticated(200, "/subscriptions/{sid}"),
    ("PUT", "/subscriptions/<subscription_id>"): subscription_admin(204, "/subscriptions/{sid}", SUBSCRIPTION),
    ("DELETE", "/subscriptions/<subscription_id>"): subscription_admin(204, "/subscriptions/{sid}"),
    ("GET", "/subscriptions/<subscription_id>/events"): subscription_reader(
        200, "/subscriptions/{sid}/events?stream_timeout=1&batch_flush_timeout=1"),
    ("POST", "/subscriptions/<subscription_id>/events"): subscription_reader(
        200, "/subscriptions/{sid}/events", {"stream_timeout": 1, "batch_flush_timeout": 1}),
    ("GET", "/subscriptions/<subscription_id>/cursors"): subscription_reader(200, "/subscriptions/{sid}/cursors"),
    ("POST", "/subscriptions/<subscription_id>/cursors"): subscription_reader(  # no stream to commit for
        422, "/subscriptions/{sid}/cursors", {"items": []}),
    ("PATCH", "/subscriptions/<subscription_id>/cursors"): subscription_admin(
        204, "/subscriptions/{sid}/cursors", {"items": [{**BEGIN[0], "event_type": ET}]}),
    ("GET", "/subscriptions/<subscription_id>/stats"): subscription_reader(200, "/subscriptions/{sid}/stats"),
}
AUTOMATIC_METHODS = frozenset({"HEAD", "OPTIONS"})
CALL_SECONDS_MAX = 10


def app_routes(app) -> set[tuple[str, str]]:
    return {(method, rule.rule) for rule in app.url_map.iter_rules() for method in rule.methods - AUTOMATIC_METHODS}


class Credentials:
    """The `Authorization` header of each column in one mode."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        expired, wrong_signature = unverified_jwts()
        self.refused = {"no header": {}, "Basic": {"Authorization": "Basic dXNlcjpwYXNzd29yZA=="},
                        "Bearer without token": {"Authorization": "Bearer"},
                        "unknown token": bearer(UNKNOWN_TOKEN),
                        "expired JWT": bearer(expired), "wrong-signature JWT": bearer(wrong_signature)}

    def of(self, subject: str) -> dict[str, str]:
        return bearer(TOKEN_OF[subject] if self.mode == "tokens" else jwt_for(subject))


class World:
    """A fresh broker and app, with the event type (one event published) and
    the subscription every request names."""

    def __init__(self, broker: Broker, mode: str) -> None:
        self.client = create_app(broker, authenticator=authenticator(AUTH_OF_MODE[mode])).test_client()
        self.credentials = Credentials(mode)
        self.sid = ""

    async def populate(self) -> None:
        await self.expect(201, "POST", "/event-types", business_type(ET, authorization=ET_AUTH), "admin")
        await self.expect(200, "POST", f"/event-types/{ET}/events", [business_event("o1")], "writer")
        response = await self.expect(201, "POST", "/subscriptions", SUBSCRIPTION, "reader")
        self.sid = (await response.get_json())["id"]

    async def expect(self, status: int, method: str, path: str, body: object, subject: str):
        response = await self.client.open(path, method=method, json=body, headers=self.credentials.of(subject))
        assert response.status_code == status, (method, path, await response.get_data())
        return response

    async def call(self, method: str, call: Call, column: str, headers: dict[str, str]):
        body = call.body(column.replace(" ", "-")) if callable(call.body) else call.body
        path = call.path.format(et=ET, sid=self.sid)
        kwargs = {} if body is None else {"json": body}
        with trio.fail_after(CALL_SECONDS_MAX):
            return await self.client.open(path, method=method, headers={**call.headers, **headers}, **kwargs)


@contextmanager
def fresh_broker(tmp_path: Path, name: str) -> Iterator[Broker]:
    broker = Broker.open(BrokerConfig(str(tmp_path / name)))
    try:
        yield broker
    finally:
        broker.close()


async def problem_of(response) -> dict:
    assert response.mimetype == "application/problem+json"
    return await response.get_json()


async def cell_failure(call: Call, column: str, headers: dict[str, str], response) -> str | None:
    """What is wrong with `response` in this cell, or None."""
    status = response.status_code
    credentials = headers.get("Authorization", "").partition(" ")[2]
    if credentials and credentials.encode() in await response.get_data() + str(response.headers).encode():
        return "the response repeats the credentials"
    if call.listed == PUBLIC:
        expected = call.status
    elif column in REFUSED_COLUMNS:
        expected = 401
    elif column == "not listed" and call.guarded:
        expected = 403
    else:
        expected = call.status
    if status != expected:
        return f"{status} (expected {expected}): {(await response.get_data())[:200]!r}"
    if status == 401:
        problem = await problem_of(response)
        if problem["status"] != 401 or problem["title"] != "Unauthorized":
            return f"401 body {problem}"
        if not response.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            return f"WWW-Authenticate {response.headers.get('WWW-Authenticate')!r}"
    if status == 403 and (await problem_of(response))["status"] != 403:
        return "403 body"
    return None


@pytest.mark.parametrize("mode", ["tokens", "jwt"])
async def test_security_matrix_every_route_and_every_caller(tmp_path, mode):
    """Also RELIABILITY.md (6)'s report line: unauthorized requests accepted."""
    failures, cells_checked = [], 0
    report = Report(f"security_{mode}", seed=0)
    assert app_routes(create_app(None)) == set(ROUTES)  # type: ignore[arg-type]
    for index, ((method, rule), call) in enumerate(sorted(ROUTES.items())):
        headers_of = Credentials(mode)
        columns: dict[str, list[tuple[str, dict[str, str]]]] = {
            "refused": [(column, headers_of.refused[column]) for column in REFUSED_COLUMNS],
            "not listed": [("not listed", {} if call.listed == PUBLIC else headers_of.of(call.not_listed))],
            "listed": [("listed", {} if call.listed == PUBLIC else headers_of.of(call.listed))],
        }
        for world_name, cells in columns.items():
            with fresh_broker(tmp_path, f"{index}-{world_name}") as broker:
                world = World(broker, mode)
                await world.populate()
                for column, headers in cells:
                    response = await world.call(method, call, column, headers)
                    cells_checked += 1
                    refused = column in REFUSED_COLUMNS or (column == "not listed" and call.guarded)
                    if call.listed != PUBLIC and refused and response.status_code < 400:
                        report.unauthorized_accepted += 1
                    failure = await cell_failure(call, column, headers, response)
                    if failure:
                        failures.append(f"{method} {rule} [{column}]: {failure}")
    report.cycles = cells_checked
    report.finish()
    assert not failures, "\n".join(failures)
    assert cells_checked == len(ROUTES) * len(COLUMNS)


def test_security_matrix_covers_every_route_of_the_app():
    routes = app_routes(create_app(None))  # type: ignore[arg-type]
    assert routes - set(ROUTES) == set(), "routes without an entry in ROUTES"
    assert set(ROUTES) - routes == set(), "entries of ROUTES the app does not serve"


async def test_security_automatic_methods_and_unknown_paths_need_a_token_too(broker):
    client = create_app(broker, authenticator=authenticator(TOKENS_AUTH)).test_client()
    for rule in create_app(broker).url_map.iter_rules():
        path = rule.rule.replace("<name>", ET).replace("<subscription_id>", "x").replace("<version>", "1.0.0")
        path = path.replace("<partition>", "0")
        for method in sorted(rule.methods & AUTOMATIC_METHODS):
            response = await client.open(path, method=method)
            expected = 200 if path in ("/health", "/ready") else 401
            assert response.status_code == expected, (method, path)
    for path in ("/no/such/route", "/health/", "/static/x"):
        response = await client.get(path)
        assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer", path
