"""The publishing pipeline: item responses, all-or-nothing before writing, 207 and 507."""

import pytest

from broker.errors import InsufficientStorageError, UnavailableError
from broker.event_json import encode
from broker.publishing import ItemFailure, publish


class Target:
    name = "order.created"
    category = "business"
    version = "1.2.0"

    def all_valid(self, events):
        return not any("bad" in event for event in events)

    def validate(self, event):
        return None if "bad" not in event else "#/bad: not allowed"

    def partitions_of(self, events):
        if any("nopart" in event for event in events):
            return None
        return [self.partition_of(event) for event in events]

    def partition_of(self, event):
        if "nopart" in event:
            raise ItemFailure("partition not found")
        return str(event.get("p", 0))


class Log:
    def __init__(self, fail=None):
        self.written = {}
        self.fail = fail or {}

    async def append(self, groups):
        for partition, payloads in groups.items():
            if int(partition) not in self.fail:
                self.written.setdefault(int(partition), []).extend(payloads)
        return {partition: self.fail[int(partition)] for partition in groups if int(partition) in self.fail}


def event(eid, **extra):
    return {"metadata": {"eid": eid, "occurred_at": "2024-01-01T00:00:00Z"}, **extra}


async def run(events, log, target=None):
    return await publish(target or Target(), encode(events), log.append, flow_id="FLOW", published_by="me",
                         now_ms=0)


async def test_publishing_valid_batch_is_200_enriched_compact_and_ordered_per_partition():
    log = Log()
    outcome = await run([event("a", p=1), event("b", p=0), event("c", p=1)], log)
    assert outcome.status == 200 and outcome.items is None
    assert [p.split(b'"eid":"')[1][:1] for p in log.written[1]] == [b"a", b"c"]
    assert log.written[0] == [b'{"metadata":{"eid":"b","occurred_at":"2024-01-01T00:00:00Z",'
                              b'"received_at":"1970-01-01T00:00:00.000Z","event_type":"order.created",'
                              b'"flow_id":"FLOW","partition":"0","version":"1.2.0","published_by":"me"},"p":0}']


async def test_publishing_validation_failure_rejects_all_with_nakadi_items():
    log = Log()
    outcome = await run([event("a"), event("b", bad=1), event("c")], log)
    assert outcome.status == 422 and log.written == {}
    assert outcome.items == [
        {"eid": "a", "partition": None, "publishing_status": "aborted", "step": "validating", "detail": ""},
        {"eid": "b", "partition": None, "publishing_status": "failed", "step": "validating",
         "detail": "#/bad: not allowed"},
        {"eid": "c", "partition": None, "publishing_status": "aborted", "step": "none", "detail": ""},
    ]


async def test_publishing_partitioning_failure_marks_steps_reached():
    outcome = await run([event("a"), event("b", nopart=1), event("c")], Log())
    assert [(i["publishing_status"], i["step"]) for i in outcome.items] == [
        ("aborted", "partitioning"), ("failed", "partitioning"), ("aborted", "validating")]


async def test_publishing_event_too_large_fails_its_item():
    outcome = await run([event("a", big="x" * 999_000)], Log())
    assert outcome.status == 422
    assert outcome.items[0]["detail"].startswith("Event too large: ") and "max size is 999000 bytes" in \
        outcome.items[0]["detail"]


@pytest.mark.parametrize("first, second, failed, detail", [
    ({"big": "x" * 999_000}, {"bad": 1}, 0, "Event too large"),
    ({"bad": 1}, {"big": "x" * 999_000}, 0, "#/bad"),
    ({}, {"bad": 1, "big": "x" * 999_000}, 1, "#/bad"),
])
async def test_publishing_validation_fails_at_the_first_event_failing_its_schema_or_size(first, second, failed,
                                                                                         detail):
    outcome = await run([event("a", **first), event("b", **second)], Log())
    assert outcome.status == 422
    assert [i["publishing_status"] for i in outcome.items] == ["failed" if i == failed else "aborted" for i in (0, 1)]
    assert outcome.items[failed]["detail"].startswith(detail)


async def test_publishing_measures_an_event_as_sent_whitespace_included():
    padded = b'{"metadata":{"eid":"a","occurred_at":"2024-01-01T00:00:00Z"},"x":1' + b" " * 999_000 + b"}"
    outcome = await publish(Target(), b"[" + padded + b"]", Log().append, flow_id="F", published_by="me", now_ms=0)
    assert outcome.status == 422 and outcome.items[0]["detail"] == \
        f"Event too large: {len(padded)} bytes, max size is 999000 bytes"
    log = Log()
    fits = padded[: 999_000 - 1] + b"}"
    outcome = await publish(Target(), b"[" + fits + b"]", log.append, flow_id="F", published_by="me", now_ms=0)
    assert outcome.status == 200 and b" " not in log.written[0][0]


async def test_publishing_partial_failure_is_207_with_submitted_and_failed():
    log = Log(fail={1: UnavailableError("storage failed")})
    outcome = await run([event("a", p=0), event("b", p=1)], log)
    assert outcome.status == 207 and log.written == {0: log.written[0]}
    assert [(i["eid"], i["partition"], i["publishing_status"], i["step"]) for i in outcome.items] == [
        ("a", "0", "submitted", "publishing"), ("b", "1", "failed", "publishing")]


async def test_publishing_disk_full_everywhere_is_507():
    log = Log(fail={0: InsufficientStorageError("the disk is full")})
    with pytest.raises(InsufficientStorageError):
        await run([event("a")], log)


async def test_publishing_undefined_events_are_stored_as_sent_but_compact():
    class Undefined(Target):
        category = "undefined"
    log = Log()
    assert (await run([{"x": [1, 2], "y": {"z": None}}], log, Undefined())).status == 200
    assert log.written[0] == [b'{"x":[1,2],"y":{"z":null}}']


async def test_publishing_empty_batch_is_200():
    assert (await run([], Log())).status == 200
