"""The rebalancer's properties (one owner each, even loads, direct requests
honoured, stability, minimal movement) over generated streams and current
assignments, the admission helpers, and worked examples after Nakadi's
SubscriptionRebalancerTest."""

import hypothesis.strategies as st
import pytest
from hypothesis import given

from broker.rebalance import (
    Assignment,
    PartitionKey,
    State,
    StreamRequest,
    direct_conflict,
    free_slots,
    hand_over,
    rebalance,
    streams_of,
)

ASSIGNED, REASSIGNING, UNASSIGNED = State.ASSIGNED, State.REASSIGNING, State.UNASSIGNED
ALL_KEYS = [PartitionKey(et, str(p)) for et in ("a", "b") for p in range(6)]
STREAM_IDS = [f"s{n}" for n in range(7)]  # the current assignment may name dead ones too


def k(partition, event_type="et"):
    return PartitionKey(event_type, str(partition))


def auto(stream_id):
    return StreamRequest(stream_id)


def direct(stream_id, *keys):
    return StreamRequest(stream_id, frozenset(keys))


def assigned(stream_id, is_direct=False):
    return Assignment(ASSIGNED, stream_id, direct=is_direct)


def moving(old, new, is_direct=False):
    return Assignment(REASSIGNING, old, new, is_direct)


def owner(assignment):
    return assignment.next_stream_id if assignment.state is REASSIGNING else assignment.stream_id


def owners(assignments):
    return {key: owner(a) for key, a in assignments.items()}


def requested(streams):
    return {key: s.stream_id for s in streams for key in s.partitions}


def auto_ids(streams):
    return sorted(s.stream_id for s in streams if not s.partitions)


def expected_loads(count, ids):
    base, extra = divmod(count, len(ids))
    return {stream_id: base + (i < extra) for i, stream_id in enumerate(ids)}


@st.composite
def assignments(draw, ids=STREAM_IDS):
    state = draw(st.sampled_from(State))
    if state is UNASSIGNED:
        return Assignment(UNASSIGNED)
    old = draw(st.sampled_from(ids))
    if state is ASSIGNED:
        return assigned(old, draw(st.booleans()))
    return moving(old, draw(st.sampled_from([i for i in ids if i != old])), draw(st.booleans()))


@st.composite
def cases(draw, min_streams=0):
    """(keys, streams, current): no two streams request the same partition,
    some requests name partitions that do not exist."""
    keys = draw(st.lists(st.sampled_from(ALL_KEYS), unique=True, max_size=len(ALL_KEYS)))
    ids = draw(st.lists(st.sampled_from(STREAM_IDS), unique=True, min_size=min_streams))
    free = sorted(set(ALL_KEYS) - set(draw(st.lists(st.sampled_from(ALL_KEYS), unique=True))))
    streams = []
    for stream_id in ids:
        wanted = []
        if free and draw(st.booleans()):
            wanted = draw(st.lists(st.sampled_from(free), unique=True, max_size=3))
        free = [key for key in free if key not in wanted]
        streams.append(StreamRequest(stream_id, frozenset(wanted)))
    current = draw(st.dictionaries(st.sampled_from(ALL_KEYS), assignments()))
    return keys, streams, current


# -- properties ------------------------------------------------------------------


@given(cases())
def test_rebalance_gives_every_partition_one_live_owner(case):
    keys, streams, current = case
    result = rebalance(keys, streams, current)
    live = {s.stream_id for s in streams}
    asked = requested(streams)
    assert list(result) == sorted(keys)
    for key, assignment in result.items():
        if key in asked or auto_ids(streams):
            assert assignment.state is not UNASSIGNED
            assert assignment.stream_id in live and owner(assignment) in live
        else:
            assert assignment == Assignment(UNASSIGNED)
        if assignment.state is REASSIGNING:
            was = current.get(key, Assignment(UNASSIGNED))
            assert assignment.stream_id == was.stream_id != assignment.next_stream_id


@given(cases())
def test_rebalance_unassigns_everything_without_streams(case):
    keys, _, current = case
    assert rebalance(keys, [], current) == {key: Assignment(UNASSIGNED) for key in sorted(keys)}


@given(cases())
def test_rebalance_gives_direct_partitions_to_their_stream(case):
    keys, streams, current = case
    result = rebalance(keys, streams, current)
    asked = requested(streams)
    for key, assignment in result.items():
        assert assignment.direct == (key in asked)
        if key in asked:
            assert owner(assignment) == asked[key]


@given(cases(min_streams=1))
def test_rebalance_spreads_evenly_in_stream_id_order(case):
    keys, streams, current = case
    ids = auto_ids(streams)
    result = rebalance(keys, streams, current)
    pool = [key for key in keys if key not in requested(streams)]
    loads = {stream_id: 0 for stream_id in ids}
    for key in pool:
        if ids:
            loads[owner(result[key])] += 1
    if ids:
        assert loads == expected_loads(len(pool), ids)
        counts = [loads[stream_id] for stream_id in ids]
        assert max(counts) - min(counts) <= 1 and counts == sorted(counts, reverse=True)


@given(cases(), st.randoms(use_true_random=False))
def test_rebalance_is_deterministic_and_stable(case, rng):
    keys, streams, current = case
    result = rebalance(keys, streams, current)
    shuffled_streams, shuffled_keys = list(streams), list(keys)
    rng.shuffle(shuffled_streams)
    rng.shuffle(shuffled_keys)
    assert rebalance(shuffled_keys, shuffled_streams, dict(reversed(current.items()))) == result
    assert rebalance(keys, streams, result) == result


@given(cases())
def test_rebalance_stays_balanced_after_hand_over(case):
    keys, streams, current = case
    handed = {key: hand_over(a) for key, a in rebalance(keys, streams, current).items()}
    assert rebalance(keys, streams, handed) == handed


@given(cases(min_streams=1))
def test_rebalance_takes_only_the_excess(case):
    """A stream keeps what it held up to its target, and gives up only the rest."""
    keys, streams, current = case
    ids = auto_ids(streams)
    pool = [key for key in keys if key not in requested(streams)]
    if not ids:
        return
    targets = expected_loads(len(pool), ids)
    before = {key: owner(current.get(key, Assignment(UNASSIGNED))) for key in pool}
    after = owners(rebalance(keys, streams, current))
    for stream_id in ids:
        held = {key for key in pool if before[key] == stream_id}
        kept = {key for key in held if after[key] == stream_id}
        assert len(kept) == min(len(held), targets[stream_id])
        if len(held) >= targets[stream_id]:  # a stream never gives up partitions and gains others
            assert {key for key in pool if after[key] == stream_id} == kept


@given(cases(), st.sampled_from(STREAM_IDS + ["s9"]))
def test_rebalance_join_moves_only_to_the_new_stream(case, new):
    keys, streams, current = case
    if new in {s.stream_id for s in streams}:
        return
    before = rebalance(keys, streams, current)
    after = rebalance(keys, [*streams, auto(new)], before)
    changed = [key for key in keys if after[key] != before[key]]
    assert all(owner(after[key]) == new for key in changed)
    pool = [key for key in keys if key not in requested(streams)]
    assert len(changed) == expected_loads(len(pool), sorted([*auto_ids(streams), new]))[new]
    for key in changed:  # from a live stream it needs a handover
        if before[key].state is not UNASSIGNED:
            assert after[key].state is REASSIGNING and after[key].stream_id == before[key].stream_id


@given(cases(min_streams=1), st.data())
def test_rebalance_leave_moves_only_its_partitions(case, data):
    keys, streams, current = case
    gone = data.draw(st.sampled_from(streams))
    before = owners(rebalance(keys, streams, current))
    after = owners(rebalance(keys, [s for s in streams if s is not gone], rebalance(keys, streams, current)))
    for key in keys:
        if before[key] == gone.stream_id:
            assert after[key] != gone.stream_id
        else:
            assert after[key] == before[key]


@given(cases())
def test_rebalance_streams_of_lists_what_each_stream_sends(case):
    keys, streams, current = case
    result = rebalance(keys, streams, current)
    sending = [key for s in streams for key in streams_of(result, s.stream_id)]
    assert sorted(sending) == [key for key, a in result.items() if a.state is not UNASSIGNED]
    for s in streams:
        assert streams_of(result, s.stream_id) == sorted(streams_of(result, s.stream_id))


@given(assignments())
def test_rebalance_hand_over_assigns_to_next(assignment):
    handed = hand_over(assignment)
    if assignment.state is REASSIGNING:
        assert handed == Assignment(ASSIGNED, assignment.next_stream_id, direct=assignment.direct)
    else:
        assert handed == assignment


@given(cases(), st.integers(0, 20))
def test_rebalance_free_slots_counts_auto_slots(case, count):
    _, streams, _ = case
    direct_keys = {key for s in streams for key in s.partitions}
    expected = count - len(direct_keys) - len(auto_ids(streams))
    assert free_slots(count, streams) == max(0, expected)


@given(cases())
def test_rebalance_free_slot_means_a_partition_for_every_auto_stream(case):
    keys, streams, current = case
    existing = [s for s in streams if s.partitions <= set(keys)]
    if free_slots(len(keys), existing) <= 0:
        return
    joined = [*existing, auto("s9")]
    result = owners(rebalance(keys, joined, current))
    assert set(auto_ids(joined)) <= set(result.values())


@given(cases(), st.lists(st.sampled_from(ALL_KEYS), unique=True, min_size=1),
       st.sampled_from(STREAM_IDS + ["s9"]))
def test_rebalance_direct_conflict_finds_taken_partition(case, wanted, stream_id):
    _, streams, _ = case
    request = StreamRequest(stream_id, frozenset(wanted))
    taken = {key for s in streams if s.stream_id != stream_id for key in s.partitions} & set(wanted)
    assert direct_conflict(streams, request) == min(taken, default=None)
    assert direct_conflict(streams, auto(stream_id)) is None


# -- worked examples -------------------------------------------------------------


def test_rebalance_two_partitions_one_two_three_streams():
    keys = [k(0), k(1)]
    one = rebalance(keys, [auto("A")], {})
    assert one == {k(0): assigned("A"), k(1): assigned("A")}
    two = rebalance(keys, [auto("A"), auto("B")], one)
    assert two == {k(0): assigned("A"), k(1): moving("A", "B")}
    assert streams_of(two, "A") == [k(0), k(1)] and streams_of(two, "B") == []
    handed = {key: hand_over(a) for key, a in two.items()}
    assert handed == {k(0): assigned("A"), k(1): assigned("B")}
    assert streams_of(handed, "B") == [k(1)]
    three = rebalance(keys, [auto("C"), auto("B"), auto("A")], handed)
    assert three == handed
    assert free_slots(2, [auto("A"), auto("B")]) == 0
    assert rebalance(keys, [auto("B")], handed) == {k(0): assigned("B"), k(1): assigned("B")}


def test_rebalance_remainder_goes_to_earlier_stream_ids():
    result = rebalance([k(p) for p in range(5)], [auto("b"), auto("a")], {})
    assert result == {k(0): assigned("a"), k(1): assigned("a"), k(2): assigned("a"),
                      k(3): assigned("b"), k(4): assigned("b")}


def test_rebalance_back_to_leaving_owner_cancels_the_handover():
    keys = [k(0), k(1)]
    two = rebalance(keys, [auto("A"), auto("B")], {k(0): assigned("A"), k(1): assigned("A")})
    assert two[k(1)] == moving("A", "B")
    assert rebalance(keys, [auto("A")], two) == {k(0): assigned("A"), k(1): assigned("A")}


def test_rebalance_gives_partitions_back_to_their_sender_first():
    current = {k(0): moving("b", "gone"), k(1): moving("a", "gone")}
    result = rebalance([k(0), k(1)], [auto("a"), auto("b")], current)
    assert result == {k(0): assigned("b"), k(1): assigned("a")}


def test_rebalance_takes_reassigning_partitions_first():
    current = {k(0): assigned("1"), k(1): assigned("1"), k(2): moving("1", "2"), k(3): assigned("2")}
    result = rebalance([k(p) for p in range(4)], [auto("1"), auto("2"), auto("3")], current)
    assert result == {k(0): assigned("1"), k(1): assigned("1"), k(2): moving("1", "3"), k(3): assigned("2")}


def test_rebalance_takes_from_the_end_of_the_owners_list():
    current = {k(p, "et1"): assigned("1" if p < 2 else "2") for p in range(4)}
    result = rebalance(list(current), [auto("1"), auto("2"), auto("3")], current)
    assert result == {**current, k(3, "et1"): moving("2", "3")}


def test_rebalance_assigns_straight_when_the_owner_is_gone():
    current = {k(0): assigned("0"), k(1): moving("0", "1"), k(2): assigned("1"), k(3): assigned("0")}
    result = rebalance([k(p) for p in range(4)], [auto("1"), auto("2")], current)
    assert result == {k(0): assigned("2"), k(1): assigned("1"), k(2): assigned("1"), k(3): assigned("2")}


def test_rebalance_moves_directly_requested_partitions():
    current = {k(1): assigned("s1"), k(2): assigned("s1"), k(3): assigned("s2"), k(4): assigned("s7")}
    streams = [auto("s1"), auto("s2"), direct("s3", k(1), k(4))]
    result = rebalance([k(p) for p in range(1, 5)], streams, current)
    assert result == {k(1): moving("s1", "s3", True), k(2): assigned("s1"), k(3): assigned("s2"),
                      k(4): assigned("s3", True)}


def test_rebalance_with_only_direct_streams_leaves_the_rest_unassigned():
    streams = [direct("s1", k(3)), direct("s2", k(2), k(9))]
    result = rebalance([k(p) for p in range(1, 5)], streams, {k(1): assigned("dead")})
    assert result == {k(1): Assignment(UNASSIGNED), k(2): assigned("s2", True), k(3): assigned("s1", True),
                      k(4): Assignment(UNASSIGNED)}
    assert free_slots(4, streams) == 1
    assert direct_conflict(streams, direct("s4", k(4), k(2))) == k(2)
    assert direct_conflict(streams, direct("s4", k(4))) is None
    assert direct_conflict(streams, direct("s2", k(2))) is None  # checked again once registered


def test_rebalance_rejects_what_admission_should_have_refused():
    with pytest.raises(ValueError, match="requested by both"):
        rebalance([k(0)], [direct("a", k(0)), direct("b", k(0))], {})
    with pytest.raises(ValueError, match="duplicate"):
        rebalance([k(0)], [auto("a"), auto("a")], {})
    with pytest.raises(ValueError):
        Assignment(REASSIGNING, "a", "a")
    with pytest.raises(ValueError):
        Assignment(ASSIGNED)
    with pytest.raises(ValueError):
        StreamRequest("")
