"""Which stream of a subscription reads which partition: Nakadi's
SubscriptionRebalancer as a pure function. No clock, no trio, no I/O.

Theory of operation
-------------------

The shell calls `rebalance` whenever its set of live streams changes and
stores the result; it calls `hand_over` when a partition's old stream has
committed what it sent (or its commit timeout passed). Keeping the
decision pure lets every rule below be checked with hypothesis.

Streams that asked for partitions in the POST body get exactly those;
admission (`direct_conflict`, `free_slots`) already refused overlaps with
409, so an overlap here is a caller bug and raises `ValueError`. The rest
is split over the other ("auto") streams sorted by stream id, earlier ids
taking the remainder, as Nakadi's `splitByWeight` does with weight 1: the
same set of streams always yields the same targets, whatever order the
caller lists them in.

Moving a partition away from a live stream is expensive: the new stream
reads from the committed cursor, so the old one must first commit what it
sent (the partition is REASSIGNING meanwhile) or be closed at the commit
timeout. So a partition stays where it is while its owner is within its
target, and only the excess is taken: REASSIGNING partitions first, since
they are moving anyway, then the highest keys. A REASSIGNING partition is
counted for the stream it goes to (`next_stream_id`): that is where it
will be, and counting it for the sender would move it twice. A partition
whose sender is gone or that nobody holds is given out ASSIGNED at once:
there is nobody to wait for. Given out partitions go back to the stream
still sending them first, which cancels a handover instead of starting a
second one; the rest go out in key order.

`direct` says how the partition's (next) owner got it, so `hand_over`
can keep it without knowing the streams.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Assignment", "PartitionKey", "State", "StreamRequest",
    "direct_conflict", "free_slots", "hand_over", "rebalance", "streams_of",
]


@dataclass(frozen=True, order=True)
class PartitionKey:
    """One partition of one event type of the subscription."""

    event_type: str
    partition: str  # Nakadi partition id, e.g. "0", "1"


class State(enum.Enum):
    """A partition's state, with Nakadi's wire names as values."""

    UNASSIGNED = "unassigned"
    ASSIGNED = "assigned"
    REASSIGNING = "reassigning"


@dataclass(frozen=True)
class Assignment:
    """Who reads one partition. While REASSIGNING, `stream_id` is the old
    owner still sending and `next_stream_id` the one that gets it."""

    state: State
    stream_id: str = ""
    next_stream_id: str = ""
    direct: bool = False  # assignment_type "direct" vs "auto"

    def __post_init__(self) -> None:
        if self.state is State.UNASSIGNED:
            valid = not self.stream_id and not self.next_stream_id and not self.direct
        elif self.state is State.ASSIGNED:
            valid = bool(self.stream_id) and not self.next_stream_id
        else:
            valid = bool(self.stream_id and self.next_stream_id) and self.stream_id != self.next_stream_id
        if not valid:
            raise ValueError(f"inconsistent assignment: {self!r}")

    @property
    def owner(self) -> str:
        """The stream the partition is (or will be, once handed over) assigned to."""
        return self.next_stream_id if self.state is State.REASSIGNING else self.stream_id


_UNASSIGNED = Assignment(State.UNASSIGNED)


@dataclass(frozen=True)
class StreamRequest:
    """A live stream; non-empty `partitions` asks for exactly those (direct)."""

    stream_id: str
    partitions: frozenset[PartitionKey] = frozenset()

    def __post_init__(self) -> None:
        if not self.stream_id:
            raise ValueError("a stream needs a non-empty stream_id")


def rebalance(partitions: Sequence[PartitionKey], streams: Sequence[StreamRequest],
              current: Mapping[PartitionKey, Assignment]) -> dict[PartitionKey, Assignment]:
    """New assignment of every partition in `partitions`, given the live streams and the current assignment.

    The result is keyed in sorted key order. Keys of `current` outside
    `partitions` are ignored, missing ones count as unassigned. Raises
    `ValueError` if two streams share an id or a directly requested partition.
    """
    ids = [stream.stream_id for stream in streams]
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate stream ids in {sorted(ids)}")
    live = frozenset(ids)
    keys = sorted(set(partitions))
    now = {key: current.get(key, _UNASSIGNED) for key in keys}

    result: dict[PartitionKey, Assignment] = {}
    for key, stream_id in _direct_owners(streams, now.keys()).items():
        result[key] = _move(now[key], stream_id, live, direct=True)
    autos = sorted(stream.stream_id for stream in streams if not stream.partitions)
    result.update(_spread([key for key in keys if key not in result], autos, now, live))
    assert len(result) == len(keys)
    return {key: result[key] for key in keys}


def free_slots(partition_count: int, streams: Sequence[StreamRequest]) -> int:
    """How many more auto-assigned streams may join: partition_count - directly
    requested partitions - auto streams (>= 0)."""
    direct = frozenset().union(*(stream.partitions for stream in streams))
    autos = sum(1 for stream in streams if not stream.partitions)
    return max(0, partition_count - len(direct) - autos)


def direct_conflict(streams: Sequence[StreamRequest], request: StreamRequest) -> PartitionKey | None:
    """A partition `request` asks for directly that another live direct stream
    already holds (-> 409), or None. The smallest, if several."""
    taken = frozenset().union(*(s.partitions for s in streams if s.stream_id != request.stream_id))
    return min(request.partitions & taken, default=None)


def hand_over(assignment: Assignment) -> Assignment:
    """A REASSIGNING partition once the old stream committed what it sent (or
    its commit timeout passed): ASSIGNED to next_stream_id.

    Any other assignment is returned as is, so a late call after a
    rebalance already settled the partition is harmless.
    """
    if assignment.state is not State.REASSIGNING:
        return assignment
    return Assignment(State.ASSIGNED, assignment.next_stream_id, direct=assignment.direct)


def streams_of(assignments: Mapping[PartitionKey, Assignment], stream_id: str) -> list[PartitionKey]:
    """Partitions a stream currently sends from (ASSIGNED to it, or REASSIGNING away from it), sorted."""
    return sorted(key for key, assignment in assignments.items()
                  if assignment.state is not State.UNASSIGNED and assignment.stream_id == stream_id)


# -- internals -----------------------------------------------------------------


def _direct_owners(streams: Sequence[StreamRequest], keys: Iterable[PartitionKey]) -> dict[PartitionKey, str]:
    """The requesting stream of each directly requested key among `keys`."""
    existing = frozenset(keys)
    owners: dict[PartitionKey, str] = {}
    for stream in sorted(streams, key=lambda s: s.stream_id):
        for key in sorted(stream.partitions & existing):
            if key in owners:
                raise ValueError(f"{key} requested by both {owners[key]!r} and {stream.stream_id!r}")
            owners[key] = stream.stream_id
    return owners


def _move(assignment: Assignment, stream_id: str, live: frozenset[str], *, direct: bool) -> Assignment:
    """`assignment` given to `stream_id`: through a handover only if a live other stream still sends it."""
    sender = assignment.stream_id
    if assignment.state is State.UNASSIGNED or sender == stream_id or sender not in live:
        return Assignment(State.ASSIGNED, stream_id, direct=direct)
    return Assignment(State.REASSIGNING, sender, stream_id, direct)


def _targets(count: int, autos: Sequence[str]) -> dict[str, int]:
    """`count` split over `autos` (sorted) as evenly as possible, earlier ones taking the remainder."""
    base, extra = divmod(count, len(autos))
    return {stream_id: base + (index < extra) for index, stream_id in enumerate(autos)}


def _spread(keys: Sequence[PartitionKey], autos: Sequence[str], now: Mapping[PartitionKey, Assignment],
            live: frozenset[str]) -> dict[PartitionKey, Assignment]:
    """Assignment of the sorted `keys` over the sorted auto streams, moving as few as possible."""
    if not autos:
        return {key: _UNASSIGNED for key in keys}
    targets = _targets(len(keys), autos)
    held: dict[str, list[PartitionKey]] = {stream_id: [] for stream_id in autos}
    pool: list[PartitionKey] = []
    for key in keys:
        owner = now[key].owner
        (held[owner] if owner in held else pool).append(key)

    for stream_id in autos:
        mine = held[stream_id]
        for _ in range(len(mine) - targets[stream_id]):
            moving = [key for key in mine if now[key].state is State.REASSIGNING]
            taken = (moving or mine)[-1]
            mine.remove(taken)
            pool.append(taken)

    result = {key: _move(now[key], stream_id, live, direct=False)
              for stream_id, mine in held.items() for key in mine}
    needs = {stream_id: targets[stream_id] - len(held[stream_id]) for stream_id in autos}
    assert all(need >= 0 for need in needs.values()) and sum(needs.values()) == len(pool)

    # First back to the stream still sending it, then in key order.
    rest: list[PartitionKey] = []
    for key in sorted(pool):
        sender = now[key].stream_id
        if needs.get(sender, 0) > 0:
            needs[sender] -= 1
            result[key] = _move(now[key], sender, live, direct=False)
        else:
            rest.append(key)
    for stream_id in autos:
        for key in rest[:needs[stream_id]]:
            result[key] = _move(now[key], stream_id, live, direct=False)
        del rest[:needs[stream_id]]
    assert not rest
    return result
