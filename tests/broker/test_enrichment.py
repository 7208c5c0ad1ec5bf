"""Metadata enrichment."""

from broker.enrichment import enrich, received_at


def test_enrichment_received_at_is_utc_with_milliseconds():
    assert received_at(1475227140525) == "2016-09-30T09:19:00.525Z"
    assert received_at(0) == "1970-01-01T00:00:00.000Z"


def test_enrichment_sets_server_fields_and_keeps_a_producer_flow_id_and_key_order():
    event = {"metadata": {"eid": "e", "flow_id": "mine", "occurred_at": "t"}, "x": 1}
    enrich([event], ["3"], event_type="t.a", version="1.0.0", published_by="unauthenticated", flow_id="server",
           received_at_text="R")
    assert list(event) == ["metadata", "x"]
    assert event["metadata"] == {"eid": "e", "flow_id": "mine", "occurred_at": "t", "received_at": "R",
                                 "event_type": "t.a", "partition": "3", "version": "1.0.0",
                                 "published_by": "unauthenticated"}
    assert list(event["metadata"])[:3] == ["eid", "flow_id", "occurred_at"]


def test_enrichment_fills_an_empty_flow_id():
    event = {"metadata": {"eid": "e", "flow_id": ""}}
    enrich([event], ["0"], event_type="t", version="1.0.0", published_by="p", flow_id="F", received_at_text="R")
    assert event["metadata"]["flow_id"] == "F"
