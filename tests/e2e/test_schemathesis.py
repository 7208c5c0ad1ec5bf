"""The live server against its own `/openapi.json`: schemathesis generates
requests for every operation (valid and invalid ones) and checks that no
answer is a 5xx and none contradicts the document (status, content type,
body schema).

Bounded: a few derandomized examples per operation and mode, no shrinking,
a real event type and subscription substituted into half the requests so
that they reach more than the 404s, and the streams given a one-second
`stream_timeout` so that they end. Only 127.0.0.1 is reached: the server
is started there and requests go through a session that ignores proxy
variables.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.helpers import business_event, business_type
from tests.server import serving

pytestmark = pytest.mark.slow

ET = "order.created"
EXAMPLES_PER_MODE = 10
REQUEST_SECONDS_MAX = 10
RUN_SECONDS_MAX = 90
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
STREAM_OPERATIONS = frozenset({"streamEvents", "streamSubscription", "streamSubscriptionWithBody"})
STREAM_SECONDS = 1


def populate(url: str) -> str:
    """The event type (one event) and the subscription requests may name; the subscription's id."""
    with httpx.Client(base_url=url, trust_env=False, timeout=REQUEST_SECONDS_MAX) as client:
        assert client.post("/event-types", json=business_type(ET)).status_code == 201
        assert client.post(f"/event-types/{ET}/events", json=[business_event("o1")]).status_code == 200
        response = client.post("/subscriptions", json={"owning_application": "shop", "event_types": [ET],
                                                       "read_from": "begin"})
        assert response.status_code == 201
        return response.json()["id"]


def aim(case, real: bool, subscription_id: str) -> None:
    """Name the real resources when `real` (never in a DELETE, which would
    remove them for the rest of the run); end streams after a second."""
    if real and case.method != "DELETE" and case.path_parameters:
        if "name" in case.path_parameters:
            case.path_parameters["name"] = ET
        if "subscription_id" in case.path_parameters:
            case.path_parameters["subscription_id"] = subscription_id
    if case.operation.definition.raw.get("operationId") in STREAM_OPERATIONS:
        short = {"stream_timeout": STREAM_SECONDS, "batch_flush_timeout": STREAM_SECONDS}
        if case.method == "GET":
            case.query = {**(case.query or {}), **short}
        elif isinstance(case.body, dict):
            case.body = {**case.body, **short}


def fixed_path_parameters(operation, subscription_id: str) -> dict[str, str]:
    """Path parameters for negative cases, which could not make a path
    string invalid anyway: the real resources (unknown ones for a DELETE)."""
    real = {"name": ET, "subscription_id": subscription_id, "version": "1.0.0", "partition": "0"}
    names = re.findall(r"{(\w+)}", operation.path)
    return {name: "unknown" if operation.method.upper() == "DELETE" else real[name] for name in names}


def run_operation(operation, mode, url: str, session: requests.Session, subscription_id: str,
                  failures: list[str]) -> None:
    kwargs = {}
    if mode is schemathesis.GenerationMode.NEGATIVE:
        kwargs["path_parameters"] = fixed_path_parameters(operation, subscription_id)

    @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
              verbosity=Verbosity.quiet)
    @given(case=operation.as_strategy(generation_mode=mode, **kwargs), real=st.booleans())
    def run(case, real):
        aim(case, real, subscription_id)
        try:
            case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=REQUEST_SECONDS_MAX)
        except FailureGroup as failure:  # each check that failed
            failures.append(f"{operation.label} [{mode.value}]: {failure}")
    try:
        run()
    except Unsatisfiable:
        # Nothing of the operation can be made invalid (free strings only): no negative case.
        assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label


def test_schemathesis_finds_no_server_error_and_no_contradiction(tmp_path):
    started = time.monotonic()
    with serving(tmp_path, tmp_path / "data") as server:
        assert urlsplit(server.url).hostname == "127.0.0.1"
        subscription_id = populate(server.url)
        with httpx.Client(trust_env=False, timeout=REQUEST_SECONDS_MAX) as client:
            document = client.get(f"{server.url}/openapi.json").json()
        schema = schemathesis.openapi.from_dict(document)
        failures: list[str] = []
        with requests.Session() as session:
            session.trust_env = False  # no proxy: only the server on 127.0.0.1
            operations = [result.ok() for result in schema.get_all_operations()]
            assert len(operations) == sum(len(item) - ("parameters" in item) for item in document["paths"].values())
            for operation in operations:
                for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
                    run_operation(operation, mode, server.url, session, subscription_id, failures)
        problems = server.log_problems()
    assert not failures, "\n\n".join(failures)
    assert not problems, "".join(problems)
    assert time.monotonic() - started < RUN_SECONDS_MAX
