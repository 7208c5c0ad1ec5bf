"""Shared request bodies of the API tests."""

import json
import uuid

SCHEMA = {"type": "object", "properties": {"order_id": {"type": "string"}, "amount": {"type": "integer"}},
          "required": ["order_id"]}


def business_type(name="order.created", partitions=1, **extra):
    body = {"name": name, "owning_application": "shop", "category": "business",
            "enrichment_strategies": ["metadata_enrichment"], "partition_strategy": "hash",
            "partition_key_fields": ["order_id"],
            "default_statistic": {"messages_per_minute": 1, "message_size": 1,
                                  "read_parallelism": partitions, "write_parallelism": partitions},
            "schema": {"type": "json_schema", "schema": json.dumps(SCHEMA)}}
    body.update(extra)
    return body


def business_event(order_id="o1", **extra):
    return {"order_id": order_id, "metadata": {"eid": str(uuid.uuid4()), "occurred_at": "2024-05-01T10:00:00Z"},
            **extra}
