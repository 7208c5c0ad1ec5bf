"""The stream batcher against a reference model, its end-of-stream rules at
explicit times, the stream parameters, and the bytes of a batch line."""

import json
import random

import hypothesis.strategies as st
import pytest
from hypothesis import given

from broker.batching import (
    Batch,
    Batcher,
    EndReason,
    batch_lines,
)
from broker.cursors import format_offset
from broker.errors import InvalidRequestError, UnprocessableError
from broker.stream_params import StreamParams, parse_stream_params


def event(n: int, pad: int = 0) -> bytes:
    return b'{"n":%d,"p":"%s"}' % (n, b"x" * pad)


def batcher(offsets=None, now=0.0, **kwargs):
    kwargs.setdefault("batch_limit", 1)
    kwargs.setdefault("batch_flush_timeout_s", 30)
    kwargs.setdefault("stream_timeout_s", 3600)
    return Batcher(offsets or {"0": -1}, now, **kwargs)


# -- reference model ------------------------------------------------------


class Model:
    """The batching rules written as plainly as possible: lists of
    (offset, event) per partition, sums recomputed on every call."""

    def __init__(self, offsets, now, batch_limit, flush_s, stream_s, stream_limit, keep_alive_limit, bytes_max):
        self.names = list(offsets)
        self.cursor = dict(offsets)
        self.pending = {p: [] for p in offsets}
        self.flushed_at = {p: now for p in offsets}
        self.keep_alives = {p: 0 for p in offsets}
        self.ready = []
        self.read = 0
        self.start = now
        self.batch_limit, self.flush_s, self.stream_s = batch_limit, flush_s, stream_s
        self.stream_limit, self.keep_alive_limit, self.bytes_max = stream_limit, keep_alive_limit, bytes_max
        self.end = None

    def pending_bytes(self, p=None):
        names = [p] if p is not None else self.names
        return sum(len(e) for name in names for _, e in self.pending[name])

    def cut(self, p):
        events = [e for _, e in self.pending[p]]
        if not events:
            self.keep_alives[p] += 1
        self.pending[p] = []
        return Batch(p, self.cursor[p], events)

    def add(self, p, offset, ev):
        self.read += 1
        self.cursor[p] = offset
        self.keep_alives[p] = 0
        self.pending[p].append((offset, ev))
        if len(self.pending[p]) == self.batch_limit:
            self.ready.append(self.cut(p))
        while self.pending_bytes() > self.bytes_max:
            heaviest = max(self.names, key=self.pending_bytes)
            self.ready.append(self.cut(heaviest))

    def tick(self, now):
        out, self.ready = self.ready, []
        for b in out:
            self.flushed_at[b.partition] = now
        for p in self.names:
            if now - self.flushed_at[p] >= self.flush_s:
                out.append(self.cut(p))
                self.flushed_at[p] = now
        if self.keep_alive_limit and all(self.keep_alives[p] >= self.keep_alive_limit for p in self.names):
            self.end = EndReason.KEEP_ALIVE_LIMIT
        elif now - self.start >= self.stream_s or (self.stream_limit and self.read >= self.stream_limit):
            self.end = EndReason.STREAM_TIMEOUT if now - self.start >= self.stream_s else EndReason.STREAM_LIMIT
            out += [self.cut(p) for p in self.names if self.pending[p]]
        return out


@st.composite
def scenarios(draw):
    names = [str(i) for i in range(draw(st.integers(1, 3)))]
    offsets = {p: draw(st.integers(-1, 5)) for p in names}
    batch_limit = draw(st.integers(1, 4))
    flush_s = draw(st.integers(1, 3))
    config = dict(
        batch_limit=batch_limit,
        batch_flush_timeout_s=flush_s,
        stream_timeout_s=draw(st.integers(flush_s, 30)),
        stream_limit=draw(st.sampled_from([0, 0, batch_limit, batch_limit + draw(st.integers(0, 20))])),
        stream_keep_alive_limit=draw(st.sampled_from([0, 0, 1, 2, 3])),
        buffered_bytes_max=draw(st.sampled_from([0, 20, 60, 10**6])),
    )
    adds = st.tuples(st.just("add"), st.sampled_from(names), st.integers(1, 3), st.sampled_from([0, 2, 7, 30]))
    ticks = st.tuples(st.just("tick"), st.sampled_from([0, 0.25, 0.5, 1, 1.75, 3]))
    steps = draw(st.lists(st.one_of(adds, adds, adds, ticks, st.tuples(st.just("wake"))), min_size=1, max_size=80))
    return offsets, config, steps


def test_batching_model_matches_on_a_fixed_scenario():
    """The model itself, checked once by hand."""
    model = Model({"0": -1}, 0, 2, 1, 10, 0, 0, 10**6)
    model.add("0", 0, b"a")
    assert model.tick(0.5) == []
    assert model.tick(1) == [Batch("0", 0, [b"a"])]
    assert model.tick(2) == [Batch("0", 0, [])]


@given(scenarios())
def test_batching_matches_model_and_keeps_its_promises(scenario):
    offsets, config, steps = scenario
    b = Batcher(offsets, 0.0, **config)
    model = Model(offsets, 0.0, config["batch_limit"], config["batch_flush_timeout_s"],
                  config["stream_timeout_s"], config["stream_limit"], config["stream_keep_alive_limit"],
                  config["buffered_bytes_max"])
    added = {p: [] for p in offsets}
    sent = {p: [] for p in offsets}
    cursors = dict(offsets)
    counter = 0
    now = 0.0
    history = []

    def take(at):
        batches = b.tick(at)
        assert batches == model.tick(at)
        assert b.end_reason == model.end
        history.append((batches, [Batch(p, o, list(e)) for p, o, e in batches]))
        for partition, offset, events in batches:
            assert len(events) <= config["batch_limit"]
            if events:
                sent[partition] += events
                assert offset == added[partition][len(sent[partition]) - 1][0]
                assert offset > cursors[partition]
            else:
                assert offset == cursors[partition]
            cursors[partition] = offset
        return batches

    def run(step):
        nonlocal counter, now
        if step[0] == "add":
            _, partition, gap, pad = step
            if not b.wants_events():
                return
            offset = (added[partition][-1][0] if added[partition] else offsets[partition]) + gap
            ev = event(counter, pad)
            counter += 1
            b.add(partition, offset, ev)
            model.add(partition, offset, ev)
            added[partition].append((offset, ev))
            stats = b.statistics()
            assert stats.bytes_pending <= config["buffered_bytes_max"]
            ready_bytes = sum(len(e) for batch in model.ready for e in batch.events)
            assert (stats.bytes_pending, stats.bytes_ready) == (model.pending_bytes(), ready_bytes)
            assert b.wants_more() == (b.wants_events()
                                      and model.pending_bytes() + ready_bytes < config["buffered_bytes_max"])
        elif step[0] == "tick":
            now += step[1]
            take(now)
        else:
            wait = b.next_wakeup(now)
            if wait > 0:
                assert take(now + wait / 2) == [] and b.end_reason is None
                now += wait
                assert take(now) or b.end_reason is not None
            else:
                take(now)

    for step in steps:
        run(step)
        if b.end_reason is not None:
            break
    while b.end_reason is None:
        run(("wake",))
    with pytest.raises(RuntimeError):
        b.tick(now)

    assert all(batches == copies for batches, copies in history), "batches handed out never change"
    for p in offsets:
        assert sent[p] == [ev for _, ev in added[p]], "every event sent once, in order"
    read = sum(len(v) for v in added.values())
    if config["stream_limit"]:
        assert read <= config["stream_limit"]
    if b.end_reason is EndReason.STREAM_LIMIT:
        assert read == config["stream_limit"]
    if b.end_reason is EndReason.STREAM_TIMEOUT:
        assert now >= config["stream_timeout_s"]


# -- explicit times ---------------------------------------------------------


def test_batching_keep_alive_after_flush_timeout_carries_start_cursor():
    b = batcher({"0": -1, "1": 41}, batch_flush_timeout_s=5)
    assert b.deadline() == 5
    assert b.tick(4.75) == []
    assert b.tick(5) == [Batch("0", -1, []), Batch("1", 41, [])]
    assert b.deadline() == 10


def test_batching_full_batch_goes_out_at_next_tick():
    b = batcher(batch_limit=2, batch_flush_timeout_s=5)
    b.add("0", 0, b"{}")
    assert b.next_wakeup(1) == 4
    b.add("0", 1, b"[]")
    assert b.next_wakeup(1) == 0
    assert b.tick(1) == [Batch("0", 1, [b"{}", b"[]"])]
    assert b.deadline() == 6, "the partition's timer restarts when its batch goes"


def test_batching_flush_timer_runs_per_partition():
    b = batcher({"0": -1, "1": -1}, batch_limit=10, batch_flush_timeout_s=5)
    b.add("1", 0, b"1")
    assert b.tick(3) == []
    b.add("0", 0, b"0")
    assert b.tick(5) == [Batch("0", 0, [b"0"]), Batch("1", 0, [b"1"])]
    b.add("1", 1, b"2")
    assert b.tick(9) == []
    assert b.tick(10) == [Batch("0", 0, []), Batch("1", 1, [b"2"])]
    assert b.tick(15) == [Batch("0", 0, []), Batch("1", 1, [])]


def test_batching_stream_timeout_flushes_pending_then_ends():
    b = batcher({"0": -1, "1": 7}, batch_limit=10, batch_flush_timeout_s=30, stream_timeout_s=60)
    b.add("0", 3, b"a")
    assert b.deadline() == 30
    assert b.tick(30) == [Batch("0", 3, [b"a"]), Batch("1", 7, [])]
    b.add("0", 4, b"b")
    assert b.tick(59.75) == []
    assert b.tick(60) == [Batch("0", 4, [b"b"]), Batch("1", 7, [])]
    assert b.end_reason is EndReason.STREAM_TIMEOUT


def test_batching_stream_timeout_sends_no_extra_keep_alives():
    b = batcher({"0": -1, "1": -1}, batch_limit=10, batch_flush_timeout_s=30, stream_timeout_s=45)
    assert b.tick(30) == [Batch("0", -1, []), Batch("1", -1, [])]
    b.add("1", 0, b"x")
    assert b.deadline() == 45
    assert b.tick(45) == [Batch("1", 0, [b"x"])]
    assert b.end_reason is EndReason.STREAM_TIMEOUT


def test_batching_stream_limit_counts_events_read_and_flushes():
    b = batcher({"0": -1, "1": -1}, batch_limit=2, stream_limit=3)
    b.add("0", 0, b"a")
    b.add("1", 0, b"b")
    assert b.wants_events() and b.wants_more()
    b.add("0", 1, b"c")
    assert not b.wants_events() and not b.wants_more()
    assert b.next_wakeup(1) == 0
    assert b.tick(1) == [Batch("0", 1, [b"a", b"c"]), Batch("1", 0, [b"b"])]
    assert b.end_reason is EndReason.STREAM_LIMIT
    with pytest.raises(RuntimeError):
        b.add("1", 1, b"d")


def test_batching_keep_alive_limit_needs_every_partition():
    b = batcher({"0": -1, "1": -1}, batch_flush_timeout_s=1, stream_keep_alive_limit=2)
    assert len(b.tick(1)) == 2
    b.add("1", 0, b"x")
    assert b.tick(2) == [Batch("1", 0, [b"x"]), Batch("0", -1, [])]
    assert b.end_reason is None, "partition 0 has 2 keep-alives, partition 1 none"
    assert b.tick(3) == [Batch("0", -1, []), Batch("1", 0, [])]
    assert b.end_reason is None
    assert b.tick(4) == [Batch("0", -1, []), Batch("1", 0, [])]
    assert b.end_reason is EndReason.KEEP_ALIVE_LIMIT


def test_batching_event_resets_keep_alive_count_before_its_batch():
    b = batcher(batch_limit=5, batch_flush_timeout_s=1, stream_keep_alive_limit=1)
    b.add("0", 0, b"x")
    assert b.tick(0.5) == []
    assert b.tick(1) == [Batch("0", 0, [b"x"])]
    assert b.end_reason is None
    assert b.tick(2) == [Batch("0", 0, [])]
    assert b.end_reason is EndReason.KEEP_ALIVE_LIMIT


def test_batching_byte_bound_force_flushes_heaviest_partition():
    b = batcher({"0": -1, "1": -1}, batch_limit=100, buffered_bytes_max=10)
    b.add("0", 0, b"1234")
    b.add("1", 0, b"12345")
    assert b.statistics().batches_ready == 0
    b.add("0", 1, b"12")
    assert b.statistics().bytes_pending == 5
    assert not b.wants_more(), "6 bytes ready plus 5 pending reach the bound of 10"
    assert b.tick(0) == [Batch("0", 1, [b"1234", b"12"])]
    assert b.wants_more()
    assert b.deadline() == 0 + 30, "partition 1's timer still runs from the start"


def test_batching_single_event_above_bound_goes_alone():
    b = batcher(batch_limit=100, buffered_bytes_max=3)
    b.add("0", 5, b"12345")
    assert b.tick(0) == [Batch("0", 5, [b"12345"])]


def test_batching_ended_stream_fails_fast():
    b = batcher(stream_timeout_s=30)
    assert b.tick(30) == [Batch("0", -1, [])]
    assert b.end_reason is EndReason.STREAM_TIMEOUT
    with pytest.raises(RuntimeError):
        b.tick(31)
    with pytest.raises(RuntimeError):
        b.add("0", 0, b"x")


def test_batching_next_wakeup_is_time_to_earliest_timer():
    b = batcher({"0": -1, "1": -1}, now=100.0, batch_limit=10, batch_flush_timeout_s=30, stream_timeout_s=40)
    assert b.next_wakeup(100) == 30
    b.add("0", 0, b"x")
    b.tick(110)
    assert b.next_wakeup(110) == 20
    b.tick(130)
    assert b.deadline() == 140, "the stream timeout comes before the next flush"
    assert b.next_wakeup(150) == 0


# -- stream parameters ----------------------------------------------------


def params(**values):
    return parse_stream_params(rng=random.Random(7), **values)


def test_stream_params_defaults():
    p = params()
    assert (p.batch_limit, p.stream_limit, p.batch_flush_timeout_s, p.stream_keep_alive_limit) == (1, 0, 30, 0)
    assert p.stream_timeout_s == random.Random(7).randrange(3000, 4200)
    assert params(batch_limit="", stream_limit="") == p, "an empty value is absent"


def test_stream_params_read_given_values():
    p = params(batch_limit="10", stream_limit="100", batch_flush_timeout="5", stream_timeout="60",
               stream_keep_alive_limit="3")
    assert p == StreamParams(stream_timeout_s=60, batch_limit=10, stream_limit=100, batch_flush_timeout_s=5,
                             stream_keep_alive_limit=3)


def test_stream_params_zero_flush_timeout_means_thirty():
    assert params(batch_flush_timeout="0").batch_flush_timeout_s == 30


@pytest.mark.parametrize("value", ["0", "-1", "4201", "2147483647"])
def test_stream_params_stream_timeout_out_of_range_is_random(value):
    seen = {parse_stream_params(rng=random.Random(seed), stream_timeout=value).stream_timeout_s
            for seed in range(50)}
    assert all(3000 <= s < 4200 for s in seen) and len(seen) > 1


def test_stream_params_stream_timeout_in_range_kept():
    assert params(stream_timeout="4200").stream_timeout_s == 4200
    assert params(stream_timeout="1", batch_flush_timeout="1").stream_timeout_s == 1


@pytest.mark.parametrize(("values", "detail"), [
    ({"batch_limit": "0"}, "batch_limit can't be lower than 1"),
    ({"batch_limit": "-3"}, "batch_limit can't be lower than 1"),
    ({"batch_limit": "5", "stream_limit": "4"}, "stream_limit can't be lower than batch_limit"),
    ({"stream_limit": "-1"}, "stream_limit can't be lower than batch_limit"),
    ({"stream_timeout": "10", "batch_flush_timeout": "11"}, "stream_timeout can't be lower than batch_flush_timeout"),
    ({"batch_flush_timeout": "4200"}, "stream_timeout can't be lower than batch_flush_timeout"),
    ({"batch_limit": "0", "stream_limit": "-1"}, "stream_limit can't be lower than batch_limit"),
    ({"batch_limit": "0", "stream_timeout": "5", "batch_flush_timeout": "6"},
     "stream_timeout can't be lower than batch_flush_timeout"),
    ({"batch_flush_timeout": "-1"}, "batch_flush_timeout can't be lower than 0"),
    ({"stream_keep_alive_limit": "-1"}, "stream_keep_alive_limit can't be lower than 0"),
])
def test_stream_params_refused_with_nakadi_texts(values, detail):
    with pytest.raises(UnprocessableError) as caught:
        params(**values)
    assert caught.value.detail == detail


@pytest.mark.parametrize("value", ["abc", "1.5", "1e3", " ", "2147483648", "-2147483649", "1_000", "٣"])
def test_stream_params_non_integer_is_bad_request(value):
    with pytest.raises(InvalidRequestError) as caught:
        params(batch_limit=value)
    assert caught.value.detail.startswith(
        "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Integer'")


def test_stream_params_accept_sign_and_surrounding_space():
    assert params(batch_limit="+2", stream_limit=" 4 ").stream_limit == 4


# -- bytes ------------------------------------------------------------------


def test_batching_line_layout_is_nakadis():
    lines = batch_lines([Batch("0", 6, [b'{"a":1}', b'{"b":[2,3]}']), Batch("12", -1, [])])
    assert lines == (
        b'{"cursor":{"partition":"0","offset":"001-0001-000000000000000006"},"events":[{"a":1},{"b":[2,3]}]}\n'
        b'{"cursor":{"partition":"12","offset":"001-0001--1"}}\n'
    )


def test_batching_line_single_event_and_empty_input():
    assert batch_lines([Batch("3", 123456789012345678, [b"{}"])]) == (
        b'{"cursor":{"partition":"3","offset":"001-0001-123456789012345678"},"events":[{}]}\n')
    assert batch_lines([]) == b""


def test_batching_line_events_are_written_verbatim():
    raw = '{"s":"é\\u2028","n":1.50}'.encode()
    line = batch_lines([Batch("0", 0, [raw])])
    assert raw in line
    assert json.loads(line) == {"cursor": {"partition": "0", "offset": format_offset(0)},
                                "events": [{"s": "é\u2028", "n": 1.5}]}


@given(st.one_of(st.integers(-1, 10**18 - 1), st.sampled_from([-1, 0, 9, 10**18 - 1])))
def test_batching_line_offset_is_format_offset(offset):
    assert batch_lines([Batch("7", offset, [])]) == (
        b'{"cursor":{"partition":"7","offset":"' + format_offset(offset).encode() + b'"}}\n')


@given(st.integers(1, 7), st.lists(st.tuples(st.sampled_from(["0", "1"]), st.integers(0, 12)), max_size=12))
def test_batching_add_many_equals_adding_one_by_one(batch_limit, additions):
    def fresh():
        return Batcher({"0": -1, "1": -1}, 0.0, batch_limit=batch_limit, batch_flush_timeout_s=30,
                       stream_timeout_s=100)
    one, many = fresh(), fresh()
    offsets = {"0": 0, "1": 0}
    for partition, count in additions:
        events = [b'{"n":%d}' % (offsets[partition] + i) for i in range(count)]
        for i, event in enumerate(events):
            one.add(partition, offsets[partition] + i, event)
        many.add_many(partition, offsets[partition], events)
        offsets[partition] += count
        assert one.tick(1.0) == many.tick(1.0)
    assert one.statistics() == many.statistics()


def test_batcher_skip_moves_the_cursor_of_the_next_batch_and_keep_alive():
    b = batcher(batch_limit=2, batch_flush_timeout_s=1.0)
    b.add("0", 0, b"a")
    b.skip("0", 1)
    b.skip("0", 2)
    assert b.tick(1.0) == [Batch("0", 2, [b"a"])]
    b.skip("0", 5)
    assert b.tick(2.0) == [Batch("0", 5, [])]
    assert b.statistics().events_read == 1
