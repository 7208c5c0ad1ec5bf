"""Authentication through the app: Nakadi admins from the configuration,
`published_by`, the 401 answer, and auth off as before."""

import json

import pytest

from api.app import create_app
from api.auth import authenticator
from api.auth_config import AuthConfig, TokenConfig

from .auth_helpers import ALICE_TOKEN, BOB_TOKEN, MALLORY_TOKEN, TOKENS_AUTH, bearer
from .helpers import business_event, business_type

ET = "secured.orders"
ONLY_MALLORY = {"admins": [{"data_type": "user", "value": "mallory"}],
                "writers": [{"data_type": "user", "value": "mallory"}],
                "readers": [{"data_type": "user", "value": "mallory"}]}
BEGIN = json.dumps([{"partition": "0", "offset": "BEGIN"}])


@pytest.fixture
def secured(broker):
    """The app with tokens: alice a Nakadi admin (by her token's flag), bob
    one by the admins list, mallory none."""
    config = AuthConfig("tokens", admins=frozenset({("user", "bob")}), tokens=(
        *TOKENS_AUTH.tokens[:1], TokenConfig(BOB_TOKEN, "user", "bob"), TokenConfig(MALLORY_TOKEN, "user", "mallory")))
    return create_app(broker, authenticator=authenticator(config)).test_client()


async def read_events(client, token):
    response = await client.get(f"/event-types/{ET}/events?stream_limit=1&batch_flush_timeout=1",
                                headers={**bearer(token), "X-Nakadi-Cursors": BEGIN})
    assert response.status_code == 200
    return [event for line in (await response.get_data()).splitlines() for event in json.loads(line).get("events", [])]


async def test_security_nakadi_admins_pass_admin_checks_only(secured):
    assert (await secured.post("/event-types", json=business_type(ET, authorization=ONLY_MALLORY),
                               headers=bearer(MALLORY_TOKEN))).status_code == 201
    for admin_token in (ALICE_TOKEN, BOB_TOKEN):
        publish = await secured.post(f"/event-types/{ET}/events", json=[business_event()], headers=bearer(admin_token))
        assert publish.status_code == 403
        assert (await publish.get_json())["detail"] == f"Access on WRITE event-type:{ET} denied"
        read = await secured.get(f"/event-types/{ET}/partitions", headers=bearer(admin_token))
        assert read.status_code == 403
        update = await secured.put(f"/event-types/{ET}", json=business_type(ET, authorization=ONLY_MALLORY),
                                   headers=bearer(admin_token))
        assert update.status_code == 200


async def test_security_published_by_is_the_subject(secured):
    authorization = {**ONLY_MALLORY, "readers": [{"data_type": "*", "value": "*"}]}
    await secured.post("/event-types", json=business_type(ET, authorization=authorization),
                       headers=bearer(MALLORY_TOKEN))
    published = await secured.post(f"/event-types/{ET}/events", json=[business_event()],
                                   headers=bearer(MALLORY_TOKEN))
    assert published.status_code == 200
    [event] = await read_events(secured, BOB_TOKEN)
    assert event["metadata"]["published_by"] == "mallory"


async def test_security_unauthenticated_answer_is_a_bearer_challenge_in_problem_json(secured):
    response = await secured.get("/event-types", headers={"X-Flow-Id": "flow-401"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["X-Flow-Id"] == "flow-401"
    assert response.mimetype == "application/problem+json"
    assert await response.get_json() == {"title": "Unauthorized", "status": 401,
                                         "detail": "Full authentication is required to access this resource"}
    invalid = await secured.get("/event-types", headers=bearer("x" * 40))
    assert invalid.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert (await invalid.get_json())["detail"] == "The token is not valid"
    malformed = await secured.get("/event-types", headers={"Authorization": "Bearer"})
    assert malformed.headers["WWW-Authenticate"] == 'Bearer error="invalid_request"'


async def test_security_authentication_comes_before_other_request_checks(secured):
    response = await secured.get("/event-types", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 401


async def test_security_health_and_ready_need_no_token(secured):
    assert (await secured.get("/health")).status_code == 200
    assert (await secured.get("/ready")).status_code == 200
    assert (await secured.get("/health", headers={"Authorization": "Bearer nonsense-token-12345"})).status_code == 200


async def test_security_auth_off_serves_everyone_as_unauthenticated(client):
    assert (await client.post("/event-types", json=business_type(ET, authorization=ONLY_MALLORY))).status_code == 201
    published = await client.post(f"/event-types/{ET}/events", json=[business_event()],
                                  headers=bearer(ALICE_TOKEN))
    assert published.status_code == 200
    response = await client.get(f"/event-types/{ET}/events?stream_limit=1&batch_flush_timeout=1",
                                headers={"X-Nakadi-Cursors": BEGIN})
    [line] = (await response.get_data()).splitlines()
    assert json.loads(line)["events"][0]["metadata"]["published_by"] == "unauthenticated"
