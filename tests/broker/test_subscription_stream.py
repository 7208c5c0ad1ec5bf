"""The subscription stream shell and its coordinator, under a mock clock:
layout, batching, pausing at max_uncommitted_events, the end rules,
rebalancing between streams and redelivery of what was not committed."""

import json

import pytest
import trio
import trio.testing

from broker.errors import ConflictError
from broker.partition_logs import PartitionLogs
from broker.rebalance import PartitionKey, State
from broker.subscription_coordinator import Coordinator
from broker.subscription_params import SubscriptionStreamParams
from broker.filters import parse_filters
from broker.subscription_stream import subscription_stream
from storage import LogConfig

ET = "order.created"
P0, P1 = PartitionKey(ET, "0"), PartitionKey(ET, "1")
INDEXES = {P0: 0, P1: 1}


@pytest.fixture
def clock():
    # Jumps only after 50 ms of real time with every task blocked, so reads
    # in worker threads finish before the clock moves.
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
async def logs(tmp_path):
    logs = PartitionLogs(str(tmp_path), LogConfig(), "refuse")
    logs.open_all({})
    await logs.create(ET, 2)
    yield logs
    logs.close_all()


async def publish(logs, partition, count, first=0):
    assert await logs.append(ET, {partition: [json.dumps({"n": first + i}).encode() for i in range(count)]}) == {}


def params(**overrides):
    values = {"stream_timeout_s": 3600, "batch_flush_timeout_s": 5, "commit_timeout_s": 60, **overrides}
    return SubscriptionStreamParams(**values)


def coordinator(committed=None):
    return Coordinator("sub-1", [P0, P1], dict(committed or {P0: -1, P1: -1}))


class Reader:
    """Collects the lines of one stream as they arrive."""

    def __init__(self, coord, session, logs):
        self.session = session
        self.lines = []
        self.done = trio.Event()
        self.stream = subscription_stream(coord, session, logs, INDEXES)

    async def run(self):
        try:
            async for chunk in self.stream:
                self.lines += [json.loads(line) for line in chunk.decode().splitlines()]
        finally:
            self.done.set()

    def events(self):
        return [e["n"] for line in self.lines for e in line.get("events", [])]


async def test_stream_sends_subscription_layout_in_batches_with_stream_started(logs, clock):
    await publish(logs, 0, 3)
    coord = coordinator()
    session = coord.open_session([], params(batch_limit=2, max_uncommitted_events=10), trio.current_time())
    reader = Reader(coord, session, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        await trio.sleep(6)
        session.close_message = "bye"
        session.notify()
    first, second = reader.lines[:2]
    assert first["cursor"]["event_type"] == ET and first["cursor"]["partition"] == "0"
    assert first["cursor"]["offset"] == "001-0001-000000000000000001"
    assert len(first["cursor"]["cursor_token"]) == 36
    assert first["info"] == {"debug": "Stream started"}
    assert [e["n"] for e in first["events"]] == [0, 1]
    assert second["cursor"]["offset"] == "001-0001-000000000000000002" and "info" not in second
    assert reader.events() == [0, 1, 2]
    assert reader.lines[-1]["info"] == {"debug": "bye"}


async def test_stream_pauses_at_max_uncommitted_events_until_a_commit(logs, clock):
    await publish(logs, 0, 5)
    coord = coordinator()
    session = coord.open_session([P0], params(max_uncommitted_events=2), trio.current_time())
    reader = Reader(coord, session, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        await trio.sleep(20)
        assert reader.events() == [0, 1]
        assert all("events" not in line for line in reader.lines[2:]), "only keep-alives while paused"
        coord.committed_now(session, {P0: 1}, trio.current_time())
        await trio.sleep(1)
        assert reader.events() == [0, 1, 2, 3]
        session.close_message = "bye"
        session.notify()


async def test_stream_ends_with_commit_timeout_when_nothing_is_committed(logs, clock):
    await publish(logs, 1, 1)
    coord = coordinator()
    start = trio.current_time()
    session = coord.open_session([], params(commit_timeout_s=10), start)
    reader = Reader(coord, session, logs)
    await reader.run()
    assert reader.lines[-1]["info"] == {"debug": "Commit timeout reached"}
    assert trio.current_time() - start == pytest.approx(10, abs=0.1)
    assert session.ended and session.stream_id not in coord.sessions, "expired: its commit timeout passed"


async def test_stream_ends_at_stream_timeout_and_keep_alive_limit(logs, clock):
    coord = coordinator()
    session = coord.open_session([], params(stream_timeout_s=12, batch_flush_timeout_s=5), trio.current_time())
    reader = Reader(coord, session, logs)
    await reader.run()
    assert reader.lines[-1]["info"] == {"debug": "Stream timeout reached"}
    keep_alives = [line for line in reader.lines if "events" not in line and "info" not in line]
    assert len(keep_alives) == 3  # 2 partitions at 5 s, then at 10 s; the first line carries "Stream started"

    session = coord.open_session([], params(stream_keep_alive_limit=2, batch_flush_timeout_s=1), trio.current_time())
    reader = Reader(coord, session, logs)
    await reader.run()
    assert len(reader.lines) == 4 and all("events" not in line for line in reader.lines)
    assert "info" not in reader.lines[-1]


async def test_stream_limit_closes_only_once_the_events_are_committed(logs, clock):
    await publish(logs, 0, 5)
    coord = coordinator()
    session = coord.open_session([P0], params(stream_limit=2, max_uncommitted_events=10), trio.current_time())
    reader = Reader(coord, session, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        await trio.sleep(7)
        assert reader.events() == [0, 1] and not reader.done.is_set()
        coord.committed_now(session, {P0: 1}, trio.current_time())
        await reader.done.wait()
    assert reader.lines[-1]["info"] == {"debug": "Stream limit in events reached: 2"}


async def test_streams_share_partitions_and_uncommitted_events_go_to_the_next_owner(logs, clock):
    await publish(logs, 0, 2)
    await publish(logs, 1, 2, first=10)
    coord = coordinator()
    first = coord.open_session([], params(commit_timeout_s=5), trio.current_time())
    second = coord.open_session([], params(commit_timeout_s=5), trio.current_time())
    owners = {coord.assignment[P0].next_stream_id or coord.assignment[P0].stream_id,
              coord.assignment[P1].next_stream_id or coord.assignment[P1].stream_id}
    assert owners == {first.stream_id, second.stream_id}
    readers = [Reader(coord, first, logs), Reader(coord, second, logs)]
    async with trio.open_nursery() as nursery:
        for reader in readers:
            nursery.start_soon(reader.run)
        await trio.sleep(1)
        assert sorted(readers[0].events() + readers[1].events()) == [0, 1, 10, 11]
        # The second stream's client goes away without committing; the first
        # commits what it got and, once the second's session expires, gets
        # the second's partition from its committed cursor: a redelivery.
        mine = coord.reading(first)[0]
        coord.committed_now(first, {mine: first.sent[mine]}, trio.current_time())
        second.close_message = "bye"
        second.notify()
        await readers[1].done.wait()
        await trio.sleep(6)
        assert all(a.state is State.ASSIGNED for a in coord.assignment.values())
        assert sorted(coord.reading(first)) == [P0, P1]
        first.close_message = "bye"
        first.notify()
    theirs = readers[1].events()
    assert len(theirs) == 2 and len(readers[0].events()) == 4
    assert readers[0].events()[2:] == theirs, "the uncommitted events came again, in order"


async def test_stream_skips_ahead_when_the_client_commits_beyond_what_was_sent(logs, clock):
    await publish(logs, 0, 8)
    coord = coordinator()
    session = coord.open_session([P0], params(max_uncommitted_events=2), trio.current_time())
    reader = Reader(coord, session, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        await trio.sleep(1)
        assert reader.events() == [0, 1]
        coord.committed_now(session, {P0: 5}, trio.current_time())
        await trio.sleep(1)
        assert reader.events() == [0, 1, 6, 7]
        session.close_message = "bye"
        session.notify()


async def test_a_stream_whose_response_never_started_gives_its_slot_back(logs, clock):
    coord = Coordinator("sub-1", [P0], {P0: -1})
    coord.open_session([], params(), trio.current_time())
    with pytest.raises(ConflictError, match="No free slots"):
        coord.open_session([], params(), trio.current_time())
    await trio.sleep(11)
    coord.open_session([], params(), trio.current_time())
    assert len(coord.sessions) == 1


async def test_a_stream_left_without_partitions_closes_after_twice_its_commit_timeout(logs, clock):
    coord = coordinator()
    auto = coord.open_session([], params(commit_timeout_s=5), trio.current_time())
    reader = Reader(coord, auto, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        await trio.sleep(1)
        taken_at = trio.current_time()
        direct = coord.open_session([P0, P1], params(), taken_at)
        direct.streaming = True  # as if its response were being read
        await reader.done.wait()
        assert trio.current_time() - taken_at == pytest.approx(10, abs=0.2)
        assert sorted(coord.reading(direct)) == [P0, P1]
        coord.end_session(direct, trio.current_time())


async def test_filtered_stream_with_a_full_window_still_reads_whole_chunks(logs, clock):
    assert await logs.append(ET, {0: [json.dumps({"n": i, "m": i % 10 == 0}).encode() for i in range(300)]}) == {}
    coord = Coordinator("sub-1", [P0, P1], {P0: -1, P1: -1}, parse_filters([{"exact": {"m": "true"}}]))
    session = coord.open_session([P0], params(batch_limit=5, max_uncommitted_events=5, batch_flush_timeout_s=0),
                                 trio.current_time())
    reader = Reader(coord, session, logs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader.run)
        for _ in range(50):
            await trio.sleep(0.1)
            if session.sent.get(P0, -1) > coord.committed[P0]:
                coord.committed_now(session, {P0: session.sent[P0]}, trio.current_time())
            if coord.committed[P0] == 299:
                break
        session.close_message = "bye"
        session.notify()
    assert reader.events() == list(range(0, 300, 10))
    assert coord.committed[P0] == 299

