"""api.app in process: /health, Problem JSON for every error, X-Flow-Id."""

import json
import logging
import re

from quart import Response


async def body(response: Response) -> dict:
    return json.loads(await response.get_data())


async def test_app_health_answers_ok_as_nakadi_does(client):
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert await response.get_data() == b"OK"


async def test_app_unknown_route_is_a_problem_404(client):
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    problem = await body(response)
    assert problem["title"] == "Not Found"
    assert problem["status"] == 404
    assert problem["detail"]
    assert "type" not in problem


async def test_app_wrong_method_is_a_problem_405_naming_the_allowed_ones(client):
    response = await client.delete("/health")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert (await body(response))["status"] == 405
    assert "GET" in response.headers["Allow"]


async def test_app_unexpected_error_is_a_problem_500_whose_id_is_logged(app, caplog):

    async def fail() -> str:
        raise RuntimeError("secret internals")

    app.add_url_rule("/fail", view_func=fail)
    with caplog.at_level(logging.ERROR, logger="api.app"):
        response = await app.test_client().get("/fail", headers={"X-Flow-Id": "flow-500"})
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    problem = await body(response)
    assert problem["title"] == "Internal Server Error"
    error_id = re.fullmatch(r"An internal error happened\. Please report it\. \((ETI[0-9a-f]{24})\)",
                            problem["detail"]).group(1)
    assert "secret internals" not in json.dumps(problem)
    assert response.headers["X-Flow-Id"] == "flow-500"
    [record] = caplog.records
    assert error_id in record.getMessage() and "flow-500" in record.getMessage()
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_app_flow_id_is_echoed_on_success_and_error(client):
    for path in ("/health", "/missing"):
        response = await client.get(path, headers={"X-Flow-Id": "my-flow"})
        assert response.headers["X-Flow-Id"] == "my-flow"


async def test_app_flow_id_is_generated_when_absent(client):
    first, second = [(await client.get("/health")).headers["X-Flow-Id"] for _ in range(2)]
    assert re.fullmatch(r"[0-9a-zA-Z]{24}", first)
    assert first != second


async def test_app_content_encoding_is_refused_on_anything_but_post(client):
    response = await client.get("/health", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 406 and response.mimetype == "application/problem+json"
    response = await client.post("/event-types", data=b"x", headers={"Content-Encoding": "br",
                                                                      "Content-Type": "application/json"})
    assert response.status_code == 415


async def test_ready_reports_storage_and_metadata_and_is_503_while_storage_refuses_writes(client, broker):
    response = await client.get("/ready")
    assert response.status_code == 200
    assert await response.get_json() == {"status": "ready", "storage": {"writable": True},
                                         "metadata": {"available": True, "writable": True}}
    broker._logs.write_failure = "the disk is full: cannot write (ENOSPC)"
    response = await client.get("/ready")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "not ready"
    assert body["storage"] == {"writable": False, "detail": "the disk is full: cannot write (ENOSPC)"}
