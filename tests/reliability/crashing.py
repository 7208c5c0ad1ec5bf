"""What the crash suites (RELIABILITY.md 1a-1c) share beyond the harness:
writer threads that publish until told to stop or until the server stops
answering, a subscription consumer that commits every batch and remembers
which commits were answered 204, the check of committed cursors after a
restart, server logs kept beside the data directory (and all of it copied
out of pytest's rotating temp directories on failure), and a report with
the commit counters.

Threads never raise: what goes wrong in them is kept in `errors` and the
test asserts it is empty (an exception escaping a thread would surface
only as a warning, far from its cause).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.reliability.harness import History, Report, check_error, event, publish
from tests.server import Server

JOIN_SECONDS = 15
REQUEST_SECONDS = 10


def seed_from_environment(environ: dict[str, str]) -> int:
    """`RELIABILITY_SEED` when given (to replay a run), else a fresh one."""
    text = environ.get("RELIABILITY_SEED")
    return int(text) if text else random.SystemRandom().randrange(2**32)


def offset_number(text: str) -> int:
    """The number in a cursor offset such as `001-0001-000000000000000042`
    (-1 for the position before the first event, `001-0001--1`)."""
    return -1 if text.endswith("--1") else int(text.rsplit("-", 1)[1])


@dataclass
class CrashReport(Report):
    """The suite report plus subscription commits: how many were answered
    204, the partitions where one of those was later not found committed
    (any fails the suite), the commits that got no answer (info) and how
    many of them were found committed; and the segment bytes recovery cut
    off at restarts (torn tails)."""

    commits_acked: int = 0
    commits_lost: int = 0
    commits_info: int = 0
    commits_info_present: int = 0
    recovery_removed_bytes: int = 0

    def as_json(self) -> dict:
        values = super().as_json()
        duration = values.pop("duration_s")
        values.update(commits_acked=self.commits_acked, commits_lost=self.commits_lost,
                      commits_info=self.commits_info, commits_info_present=self.commits_info_present,
                      recovery_removed_bytes=self.recovery_removed_bytes, duration_s=duration)
        return values

    def finish(self) -> None:
        super().finish()
        assert not self.commits_lost, f"{self.suite}: {self.commits_lost} partitions lost a commit answered 204"


def info_repeats(history: History, read: dict[str, list[tuple[int, dict]]]) -> int:
    """Unanswered publishes read back more than once. `check` allows one
    extra copy of an info event for a client retry; these writers never
    retry, so any extra copy is a duplicate."""
    seen = Counter(e["metadata"]["eid"] for events in read.values() for _, e in events)
    return sum(1 for eid in history.info if seen[eid] == 2)


# -- writers -----------------------------------------------------------------


class Writers:
    """`count` threads, each publishing batches of `batch` (min, max)
    events to a random one of `names` and waiting for each answer, until
    `stop()`, until a publish gets no answer (the server is gone), or
    `publishes_max` publishes each."""

    def __init__(self, url: str, names: list[str], history: History, report: Report, *, count: int,
                 first_writer: int, seed: int, batch: tuple[int, int] = (1, 20), padding: tuple[int, int] = (0, 200),
                 publishes_max: int = 10_000) -> None:
        self.url, self.names, self.history, self.report = url, names, history, report
        self.batch, self.padding, self.publishes_max = batch, padding, publishes_max
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(first_writer + i, random.Random(seed + i)),
                                          daemon=True) for i in range(count)]

    def start(self) -> Writers:
        for thread in self._threads:
            thread.start()
        return self

    def all_done(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Stop and join (bounded); a writer still running is an error."""
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=JOIN_SECONDS)
        if not self.all_done():
            self.errors.append(f"a writer did not stop within {JOIN_SECONDS} s")

    def _run(self, writer: int, rng: random.Random) -> None:
        try:
            with httpx.Client(base_url=self.url, trust_env=False, timeout=REQUEST_SECONDS) as client:
                n = 0
                for _ in range(self.publishes_max):
                    if self.stopping.is_set():
                        return
                    size = rng.randint(*self.batch)
                    events = [event(writer, n + i, rng.randint(*self.padding)) for i in range(size)]
                    n += size
                    outcome = publish(client, rng.choice(self.names), events, self.history, self.report)
                    with self._lock:
                        self.outcomes[outcome] += 1
                    if outcome == "info":
                        return  # no answer: the server is gone, or going
        except Exception:  # noqa: BLE001 - kept for the test to assert on
            self.errors.append(traceback.format_exc())


# -- subscription consumer -----------------------------------------------------


class Commits:
    """Per (event type, partition): the highest offset whose commit was
    answered 204, and the commits that got no answer."""

    def __init__(self) -> None:
        self.acked: dict[tuple[str, str], int] = {}
        self.acked_count = 0
        self.unanswered: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def answered(self, cursors: list[dict]) -> None:
        with self._lock:
            self.acked_count += 1
            for c in cursors:
                key = (c["event_type"], c["partition"])
                self.acked[key] = max(self.acked.get(key, -1), offset_number(c["offset"]))

    def lost(self, cursors: list[dict]) -> None:
        with self._lock:
            self.unanswered += [(c["event_type"], c["partition"], offset_number(c["offset"])) for c in cursors]


class Consumer(threading.Thread):
    """One stream of a subscription, committing each batch as it comes;
    ends at `stopping`, when the server goes away, or after `commits_max`
    commits. A 409 at open (slots still held) is retried a few times."""

    OPEN_ATTEMPTS = 20

    def __init__(self, url: str, subscription_id: str, commits: Commits, report: Report, *,
                 query: str = "batch_limit=20&max_uncommitted_events=200&batch_flush_timeout=0",
                 commits_max: int = 100_000) -> None:
        super().__init__(daemon=True)
        self.url, self.subscription_id, self.commits, self.report = url, subscription_id, commits, report
        self.query, self.commits_max = query, commits_max
        self.stopping = threading.Event()
        self.errors: list[str] = []
        self.events_received = 0
        self.outdated = 0
        self.opened = threading.Event()

    def run(self) -> None:
        try:
            self._consume()
        except httpx.HTTPError:
            pass  # the server went away while streaming
        except Exception:  # noqa: BLE001 - kept for the test to assert on
            self.errors.append(traceback.format_exc())
        finally:
            self.opened.set()

    def finish(self) -> None:
        self.stopping.set()
        self.join(timeout=JOIN_SECONDS)
        if self.is_alive():
            self.errors.append(f"the consumer did not stop within {JOIN_SECONDS} s")

    def _consume(self) -> None:
        timeout = httpx.Timeout(REQUEST_SECONDS, read=30)
        with httpx.Client(base_url=self.url, trust_env=False, timeout=timeout) as client:
            for _ in range(self.OPEN_ATTEMPTS):
                if self.stopping.is_set():
                    return
                with client.stream("GET", f"/subscriptions/{self.subscription_id}/events?{self.query}") as response:
                    if response.status_code == 409:
                        response.read()
                        time.sleep(0.1)
                        continue
                    if response.status_code != 200:
                        check_error(response, self.report)
                        self.errors.append(f"stream refused: {response.status_code} {response.read()!r}")
                        return
                    self.opened.set()
                    self._read(client, response, response.headers["X-Nakadi-StreamId"])
                    return
            self.errors.append(f"no stream after {self.OPEN_ATTEMPTS} attempts (409)")

    def _read(self, client: httpx.Client, response: httpx.Response, stream_id: str) -> None:
        done = 0
        for line in response.iter_lines():
            if self.stopping.is_set() or done >= self.commits_max:
                return
            batch = json.loads(line)
            if not batch.get("events"):
                continue
            self.events_received += len(batch["events"])
            cursors = [batch["cursor"]]
            try:
                committed = client.post(f"/subscriptions/{self.subscription_id}/cursors", json={"items": cursors},
                                        headers={"X-Nakadi-StreamId": stream_id})
            except httpx.HTTPError:
                self.commits.lost(cursors)
                raise
            done += 1
            if committed.status_code == 204:
                self.commits.answered(cursors)
            elif committed.status_code == 200:
                self.outdated += 1
            else:
                check_error(committed, self.report)
                self.errors.append(f"commit answered {committed.status_code}: {committed.text}")
                return


def check_commits(client: httpx.Client, subscription_id: str, commits: Commits
                  ) -> tuple[list[str], set[tuple[str, str]], int]:
    """Problems with the committed cursors now: an offset below one whose
    commit was answered 204 (those partitions are also returned), or beyond
    the newest event of its partition. Also how many unanswered commits
    are found committed."""
    items = client.get(f"/subscriptions/{subscription_id}/cursors").json()["items"]
    now = {(c["event_type"], c["partition"]): offset_number(c["offset"]) for c in items}
    lost = {key for key, offset in commits.acked.items() if now.get(key, -2) < offset}
    problems = [f"partition {key}: committed {now.get(key)} after restart, but {commits.acked[key]} was answered 204"
                for key in sorted(lost)]
    for event_type in {key[0] for key in now}:
        for view in client.get(f"/event-types/{event_type}/partitions").json():
            key = (event_type, view["partition"])
            if key in now and now[key] > offset_number(view["newest_available_offset"]):
                problems.append(f"partition {key}: committed {now[key]} beyond the newest event "
                                f"{view['newest_available_offset']}")
    present = sum(1 for event_type, partition, offset in commits.unanswered
                  if now.get((event_type, partition), -2) >= offset)
    return problems, lost, present


# -- servers and files -----------------------------------------------------------


def keep_log(server: Server, path: Path) -> Path:
    """Write the (exited) server's stdout and stderr to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(server.stdout) + "".join(server.stderr))
    return path


def log_sizes(data_dir: Path) -> dict[Path, int]:
    """The size of every segment file under `data_dir/event-types`."""
    root = data_dir / "event-types"
    return {path: path.stat().st_size for path in root.rglob("*.log")} if root.exists() else {}


def removed_bytes(before: dict[Path, int], after: dict[Path, int]) -> int:
    """Bytes recovery took off segment files (a file gone counts whole)."""
    return sum(max(0, size - after.get(path, 0)) for path, size in before.items())


def wait_for_exit(server: Server, seconds: float, idle) -> bool:
    """Wait (bounded) for the server to exit by itself; give up early
    once `idle()` has been true for half a second (nothing left to make
    it exit). True when it exited."""
    deadline = time.monotonic() + seconds
    idle_since = None
    while server.process.poll() is None and time.monotonic() < deadline:
        if idle():
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > 0.5:
                break
        time.sleep(0.01)
    return server.process.poll() is not None


@contextlib.contextmanager
def artifacts_on_failure(workdir: Path, suite: str, seed: int) -> Iterator[None]:
    """On any failure, copy `workdir` (data directory, server logs, traces)
    to `$RELIABILITY_ARTIFACTS` (default: the system temp directory) and
    name the copy in the error: pytest's own temp directories rotate, and
    other test sessions may remove them before anyone looks."""
    try:
        yield
    except BaseException as error:
        root = Path(os.environ.get("RELIABILITY_ARTIFACTS") or tempfile.gettempdir())
        kept = root / f"nakadi-reliability-{suite}-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            shutil.copytree(workdir, kept, symlinks=True, ignore_dangling_symlinks=True)
            error.add_note(f"artifacts (data directory, server logs) kept in {kept}")
        except OSError as copy_error:
            error.add_note(f"could not keep the artifacts of {workdir} in {kept}: {copy_error}")
        raise
