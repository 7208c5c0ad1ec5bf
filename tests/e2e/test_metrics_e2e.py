"""Metrics and JSON log lines of a real `nakadi serve` process."""

import json
import signal

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.helpers import business_event, business_type
from tests.server import serving

pytestmark = pytest.mark.slow

ET = "order.created"


def test_metrics_e2e_publish_shows_in_metrics_and_in_json_log_lines(tmp_path):
    with serving(tmp_path, tmp_path / "data") as server:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
            assert client.post("/event-types", json=business_type()).status_code == 201
            published = client.post(f"/event-types/{ET}/events", json=[business_event("o1")],
                                    headers={"X-Flow-Id": "e2e-metrics-flow", "Authorization": "Bearer e2e-secret"})
            assert published.status_code == 200
            response = client.get("/metrics")
        status, stdout, stderr = server.stop(signal.SIGTERM)
    assert status == 0, stderr
    assert stdout == f"{server.url}\n"
    assert response.status_code == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(response.text) for s in family.samples}
    assert samples[("nakadi_published_events_total", (("event_type", ET),))] == 1
    assert samples[("nakadi_fsync_duration_seconds_count", ())] >= 1
    assert samples[("nakadi_storage_bytes", (("event_type", ET),))] > 0
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert any(line["message"].startswith(f"serving {server.url}") for line in lines)
    [access] = [line for line in lines if line["logger"] == "nakadi.access" and line["method"] == "POST"
                and line["path"] == f"/event-types/{ET}/events"]
    assert (access["status"], access["flow_id"], access["level"]) == (200, "e2e-metrics-flow", "INFO")
    assert "e2e-secret" not in stderr
