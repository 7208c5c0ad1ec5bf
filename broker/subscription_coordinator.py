"""The live state of one subscription: its streams, who reads which
partition, what each stream sent and what is committed. In memory, one
per subscription with streams or commits; the committed cursors are also
in the metastore, written before a commit is acknowledged.

Theory of operation
-------------------

A stream opens a `Session`. Every change of the set of sessions runs the
pure `rebalance`; a partition moving away from a live stream becomes
`reassigning` and is handed over once everything that stream sent from it
is committed (at once if nothing is outstanding). The stream shells read
the assignment, send, and record in `Session.sent` the cursor of the last
batch sent per partition, and in `Session.batches` each batch's cursor and
event count; `uncommitted` counts the events of the batches beyond the
committed cursor (a filtered stream's cursors cover more offsets than
events, so offsets alone would not do).

When a stream ends with cursors still uncommitted, its session stays
(`ended`): it keeps its partitions and accepts commits until everything
is committed or `commit_timeout` passed since its last commit (Nakadi's
ClosingState). Then it leaves and its partitions go to the others, which
read from the committed cursor: what was sent and never committed is sent
again (at-least-once). Expiry is checked by `expire(now)`, which every
stream and every request calls before looking at the state.

A reset asks every stream to close with a debug message, waits for them
(bounded), writes the cursors and lets streams in again.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import trio

from .errors import ConflictError
from .filters import Filter
from .rebalance import Assignment, PartitionKey, State, StreamRequest, direct_conflict, free_slots, hand_over, rebalance
from .subscription_params import SubscriptionStreamParams

# A stream whose response has not started this long after it was admitted
# is given up: its client left before the first byte.
START_GRACE_S = 10.0


@dataclass(eq=False)
class Session:
    """One stream of the subscription."""

    request: StreamRequest
    params: SubscriptionStreamParams
    started_at: float
    sent: dict[PartitionKey, int] = field(default_factory=dict)
    batches: dict[PartitionKey, deque[tuple[int, int]]] = field(default_factory=dict)
    batched_events: dict[PartitionKey, int] = field(default_factory=dict)  # the sum of `batches`' counts
    last_commit_at: float = 0.0
    close_message: str | None = None
    streaming: bool = False
    ended: bool = False
    events_sent: int = 0
    events_committed: int = 0
    wake: trio.Event = field(default_factory=trio.Event)

    @property
    def stream_id(self) -> str:
        return self.request.stream_id

    def notify(self) -> None:
        self.wake.set()
        self.wake = trio.Event()


class Coordinator:
    """Sessions, assignment and committed cursors of one subscription."""

    def __init__(self, subscription_id: str, partitions: Sequence[PartitionKey],
                 committed: dict[PartitionKey, int], event_filter: Filter | None = None) -> None:
        self.subscription_id = subscription_id
        self.filter = event_filter  # what the subscription's streams send; None: everything
        self.partitions = sorted(partitions)
        self.committed = committed
        self.sessions: dict[str, Session] = {}
        self.assignment: dict[PartitionKey, Assignment] = {}
        self.resetting = False
        self.commit_lock = trio.Lock()

    # -- sessions ----------------------------------------------------------

    def open_session(self, partitions: Iterable[PartitionKey], params: SubscriptionStreamParams,
                     now: float) -> Session:
        """A new stream, given `partitions` directly or (none) assigned
        automatically; 409 when a reset runs, a directly asked partition is
        another direct stream's, or no slot is free."""
        self.expire(now)
        if self.resetting:
            raise ConflictError("Resetting subscription cursors request is still in progress")
        request = StreamRequest(str(uuid.uuid4()), frozenset(partitions))
        requests = [s.request for s in self.sessions.values() if not s.ended]
        if request.partitions:
            taken = direct_conflict(requests, request)
            if taken is not None:
                raise ConflictError(f"Event type {taken.event_type} partition {taken.partition} is already "
                                    f"assigned to another stream of subscription {self.subscription_id}")
        elif free_slots(len(self.partitions), requests) <= 0:
            raise ConflictError(f"No free slots for streaming available for subscription {self.subscription_id}. "
                                f"Total slots: {len(self.partitions)}")
        session = Session(request, params, started_at=now, last_commit_at=now)
        self.sessions[session.stream_id] = session
        self._rebalance()
        return session

    def end_session(self, session: Session, now: float) -> None:
        """The stream stopped sending; it leaves now, or once what it sent
        is committed or its commit timeout passes."""
        session.ended = True
        self.expire(now)

    def expire(self, now: float) -> None:
        """Let ended sessions go whose events are all committed or whose
        commit timeout passed."""
        for session in self.sessions.values():
            if not session.streaming and session.started_at + START_GRACE_S <= now:
                session.ended = True  # its response never started: the client left before it
        gone = [s for s in self.sessions.values() if s.ended and
                (not self._outstanding(s) or s.last_commit_at + s.params.commit_timeout_s <= now)]
        for session in gone:
            del self.sessions[session.stream_id]
        if gone:
            self._rebalance()

    def next_expiry(self) -> float | None:
        """When the earliest ended session may expire, if any waits."""
        times = [s.last_commit_at + s.params.commit_timeout_s for s in self.sessions.values() if s.ended]
        return min(times, default=None)

    # -- what a stream reads ---------------------------------------------------

    def reading(self, session: Session) -> list[PartitionKey]:
        """The partitions `session` may send from now (assigned to it, not
        moving away)."""
        return [key for key, a in self.assignment.items()
                if a.state is State.ASSIGNED and a.stream_id == session.stream_id]

    def holding(self, session: Session) -> list[PartitionKey]:
        """The partitions `session` owns, moving away or not."""
        return [key for key, a in self.assignment.items()
                if a.state is not State.UNASSIGNED and a.stream_id == session.stream_id]

    def position(self, session: Session, key: PartitionKey) -> int:
        """The offset after which `session` continues on `key`."""
        return max(session.sent.get(key, -2), self.committed[key])

    def uncommitted(self, session: Session, key: PartitionKey | None = None) -> int:
        """Events `session` sent and nobody committed (on `key`, or on all it holds)."""
        keys = self.holding(session) if key is None else [key]
        total = 0
        for k in keys:
            batches = session.batches.get(k)
            if batches:
                committed = self.committed[k]
                while batches and batches[0][0] <= committed:
                    session.batched_events[k] -= batches.popleft()[1]
                total += session.batched_events[k]
        return total

    def _outstanding(self, session: Session) -> bool:
        """Whether `session` sent a cursor not yet committed: events, or a
        keep-alive that moved past events its filter left out."""
        return any(session.sent.get(key, -2) > self.committed[key] for key in self.holding(session))

    def record_sent(self, session: Session, key: PartitionKey, offset: int, count: int, now: float) -> None:
        """A batch of `count` events (0: a keep-alive) went out with cursor `offset`."""
        if count:
            if not self.uncommitted(session):
                session.last_commit_at = now  # the commit timeout runs from the first send after all was committed
            session.batches.setdefault(key, deque()).append((offset, count))
            session.batched_events[key] = session.batched_events.get(key, 0) + count
        session.sent[key] = offset
        session.events_sent += count

    # -- commits ---------------------------------------------------------------

    def owner_check(self, session: Session, key: PartitionKey) -> bool:
        """Whether `session` may commit `key` now."""
        assignment = self.assignment.get(key)
        return assignment is not None and assignment.state is not State.UNASSIGNED \
            and assignment.stream_id == session.stream_id

    def committed_now(self, session: Session | None, cursors: dict[PartitionKey, int], now: float) -> None:
        """Record cursors that were just written to the metastore; hand over
        partitions whose moving stream has now committed all it sent."""
        for key, offset in cursors.items():
            self.committed[key] = offset
            if session is not None:
                batches = session.batches.get(key)
                while batches and batches[0][0] <= offset:
                    count = batches.popleft()[1]
                    session.batched_events[key] -= count
                    session.events_committed += count
                if session.sent.get(key, -2) < offset:
                    session.sent[key] = offset  # committed beyond what was sent: skip ahead
        if session is not None:
            session.last_commit_at = now
        self._hand_over_committed()
        self.expire(now)
        self._notify_all()

    # -- reset -----------------------------------------------------------------

    def close_all(self, message: str) -> None:
        """Ask every live stream to send `message` and close."""
        for session in self.sessions.values():
            if not session.ended:
                session.close_message = message
        self._notify_all()

    def drop_all_sessions(self) -> None:
        """Forget every session (after a reset their cursors no longer hold;
        after a delete nothing does); streams still open end silently."""
        for session in self.sessions.values():
            session.ended = True
        self.sessions.clear()
        self.assignment = {}
        self._notify_all()

    # -- internals -------------------------------------------------------------

    def _rebalance(self) -> None:
        requests = sorted((s.request for s in self.sessions.values() if not s.ended), key=lambda r: r.stream_id)
        live = {r.stream_id for r in requests}
        # Ended sessions keep what they hold until they expire.
        kept = {key: a for key, a in self.assignment.items()
                if a.stream_id and a.stream_id not in live and a.stream_id in self.sessions}
        assignment = rebalance([k for k in self.partitions if k not in kept], requests, {
            key: a for key, a in self.assignment.items() if key not in kept})
        assignment.update(kept)
        self.assignment = assignment
        self._hand_over_committed()
        self._notify_all()

    def _hand_over_committed(self) -> None:
        for key, assignment in list(self.assignment.items()):
            if assignment.state is State.REASSIGNING:
                old = self.sessions.get(assignment.stream_id)
                if old is None or not self.uncommitted(old, key):
                    self.assignment[key] = hand_over(assignment)
                    if old is not None:
                        old.sent.pop(key, None)
                        old.batches.pop(key, None)
                        old.batched_events.pop(key, None)

    def _notify_all(self) -> None:
        for session in self.sessions.values():
            session.notify()
