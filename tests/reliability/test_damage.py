"""Torn writes and corruption through the real server (RELIABILITY.md (2);
invariants I4, I5, I6).

A module fixture publishes a known set of events to one partition with
small segments (several sealed segments and an active one of several
frames), takes the oracle (every event parsed, and every event's stream
line as bytes) and stops the server: one pristine data directory stopped
with SIGTERM, another with SIGKILL. Each case copies a pristine directory,
damages its files, starts the server on the copy and checks what the
damage table promises:

- a torn tail of the active segment (cut inside the last frame, zeros or
  garbage appended, a bit flipped in the last frame, a length of 2^31 in
  it): the server starts, serves the oracle minus the torn frame, cuts
  exactly the damaged bytes, and the next publish takes the next offset;
- damage that valid frames follow, in the active or a sealed segment, a
  missing segment, a wrong magic or version: the server refuses to start
  with exit status 2 and one line naming the file, byte position and
  offset, and changes no file; with `NAKADI_STORAGE_RECOVER=truncate` it
  starts and serves the log up to the damage;
- damaged indexes: rebuilt; reads byte-identical to the oracle and the
  files equal the undamaged ones;
- a length field of 2^31 is handled under an address-space limit that a
  2 GiB allocation would break.

The segment layout is parsed here from docs/storage.md, independently of
`storage.record`. Every case counts in the report; all must pass.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import signal
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import (
    LONG,
    REPORTS,
    Exited,
    History,
    Report,
    check,
    event,
    event_type,
    launch,
    publish,
    read_all,
    read_raw,
    sized,
)
from tests.server import Server
from tests.storage.test_damage import (
    FRAME_BITS,
    FRAME_HEADER_BYTES,
    HEADER_BYTES,
    Frame,
    flip_bit,
    frame_byte,
    index_name,
    log_name,
    parse_layout,
    snapshot,
)

pytestmark = pytest.mark.slow

SEED = 20261126
NAME = "damage"
PARTITION = "0"
ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "4096", "NAKADI_STORAGE_INDEX_INTERVAL_BYTES": "512"}
TRUNCATE = {"NAKADI_STORAGE_RECOVER": "truncate"}
BATCH_SIZES = (1, 3, 2, 1, 4, 2)
PADDING = 40
BATCHES_MAX = 200
BUILD_SECONDS = 30
SEALED_SEGMENTS_MIN = 4
ACTIVE_FRAMES_MIN = 5
ENTRY = struct.Struct("<II")
# Far below the 2 GiB a length of 2^31 would ask for, far above what the server uses (~210 MiB).
ADDRESS_SPACE_BYTES_MAX = 1536 * 1024 * 1024
EXIT_CANNOT_START = 2
REFUSAL = "nakadi: cannot open the partition logs: "

@dataclass
class Tally:
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    identical: int = 0
    identical_total: int = 0
    silent_truncations: int = 0


TALLY = Tally()


@dataclass
class DamageReport(Report):
    """The harness's counters plus the metrics of section (2)."""

    def as_json(self) -> dict:
        values = super().as_json()
        values.update(cases_passed=len(TALLY.passed), cases_failed=len(TALLY.failed),
                      reads_identical=f"{TALLY.identical}/{TALLY.identical_total}",
                      silent_truncations=TALLY.silent_truncations)
        return values


REPORT = DamageReport("damage", SEED)


@dataclass(frozen=True)
class Pristine:
    data: Path
    oracle: list[tuple[int, dict]]
    raw: list[bytes]
    bases: list[int]
    frames: dict[int, list[Frame]]
    files: dict[str, bytes]

    @property
    def active(self) -> int:
        return self.bases[-1]

    @property
    def sealed(self) -> list[int]:
        return self.bases[:-1]

    @property
    def last(self) -> Frame:
        return self.frames[self.active][-1]


@pytest.fixture(scope="module", autouse=True)
def _report_clock() -> None:
    """The report's duration counts from this module's first test, not from its import."""
    REPORT.started = time.monotonic()


# -- the layout, parsed from docs/storage.md ----------------------------------------




def partition_dir(data: Path) -> Path:
    return data / "event-types" / NAME / PARTITION


def layout(directory: Path) -> tuple[list[int], dict[int, list[Frame]]]:
    bases = sorted(int(p.name[:20]) for p in directory.glob("*.log"))
    return bases, {base: parse_layout((directory / log_name(base)).read_bytes()) for base in bases}



def put(path: Path, position: int, value: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[position:position + len(value)] = value
    path.write_bytes(bytes(data))


def cursor(offset: int) -> str:
    return f"001-0001-{offset:018d}"


# -- the pristine data directories ----------------------------------------------------


def shape_reached(directory: Path) -> bool:
    if not directory.exists():
        return False
    bases, frames = layout(directory)
    return len(bases) > SEALED_SEGMENTS_MIN and len(frames[bases[-1]]) >= ACTIVE_FRAMES_MIN


def build(workdir: Path, how: str) -> Pristine:
    """Publish until the partition has the intended shape, read the oracle, stop the server (SIGTERM or SIGKILL)."""
    data = workdir / "data"
    server = launch(workdir, data, env=ENV)
    assert isinstance(server, Server), server
    history, published = History(), []
    try:
        with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
            created = client.post("/event-types", json=event_type(NAME, 1))
            assert created.status_code == 201, created.text
            deadline, n = time.monotonic() + BUILD_SECONDS, 0
            for i in range(BATCHES_MAX):
                batch = [event(0, n + j, PADDING) for j in range(BATCH_SIZES[i % len(BATCH_SIZES)])]
                n += len(batch)
                assert publish(client, NAME, batch, history, REPORT) == "ok", "".join(server.stderr)
                published.append(len(batch))
                if len(batch) > 1 and shape_reached(partition_dir(data)):
                    break
                assert time.monotonic() < deadline, f"building the pristine log took over {BUILD_SECONDS} s"
            else:
                raise AssertionError(f"{BATCHES_MAX} batches did not give the intended shape")
        oracle = served(server.url)
        raw = read_raw(server.url, NAME, PARTITION, count=len(oracle))
    finally:
        if how == "kill":
            server.kill()
        else:
            status, _, stderr = server.stop(signal.SIGTERM)
            assert status == 0, stderr
    assert [offset for offset, _ in oracle] == list(range(len(oracle)))
    assert len(oracle) == len(history.ok) == len(raw)
    assert [e["metadata"]["eid"] for _, e in oracle] == list(history.ok)
    bases, frames = layout(partition_dir(data))
    assert [f.count for base in bases for f in frames[base]] == published, "one frame per publish"
    REPORT.events_acked += len(oracle)
    return Pristine(data, oracle, raw, bases, frames, snapshot(partition_dir(data)))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build(tmp_path_factory.mktemp("pristine-term"), "term")


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Pristine:
    return build(tmp_path_factory.mktemp("pristine-kill"), "kill")


def test_damage_pristine_log_has_the_intended_shape(pristine: Pristine, killed: Pristine) -> None:
    for p in (pristine, killed):
        assert len(p.sealed) >= SEALED_SEGMENTS_MIN and len(p.frames[p.active]) >= ACTIVE_FRAMES_MIN
        assert p.last.count > 1
        for base in p.sealed:
            assert len(p.frames[base]) >= 4
            entries = len(p.files[index_name(base)]) // ENTRY.size
            assert 2 <= entries < len(p.frames[base]), "sealed indexes must be sparse, with several entries"
        active_index = p.files[index_name(p.active)]
        assert active_index[ENTRY.size:2 * ENTRY.size] != bytes(ENTRY.size), "the active index needs 2 entries"
    print(f"\npristine: {len(pristine.oracle)} events in {len(pristine.bases)} segments, "
          f"{len(pristine.frames[pristine.active])} frames active; seed {SEED}")


# -- one case: a damaged copy and a server started on it ---------------------------------


@dataclass
class Case:
    name: str
    pristine: Pristine
    workdir: Path
    logs: list[str] = field(default_factory=list)
    running: Server | None = None

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def part(self) -> Path:
        return partition_dir(self.data)

    def log(self, base: int) -> Path:
        return self.part / log_name(base)

    def index(self, base: int) -> Path:
        return self.part / index_name(base)

    def launch(self, env: dict[str, str] | None = None, preexec_fn=None) -> Server | Exited:
        """Start the server on the damaged copy; a start's wall time (recovery
        included) goes to the report's recovery_ms."""
        started = time.monotonic()
        result = launch(self.workdir, self.data, env={**ENV, **(env or {})}, preexec_fn=preexec_fn)
        self.logs.append(result.stderr if isinstance(result, Exited) else "")
        if isinstance(result, Server):
            self.running = result
            REPORT.recovery_ms.append((time.monotonic() - started) * 1000)
        return result

    def stop(self, server: Server) -> None:
        status, _, stderr = server.stop(signal.SIGTERM)
        self.logs[-1] = stderr
        assert status == 0, f"the server exited with {status} after SIGTERM"
        assert "Traceback" not in stderr

    def context(self) -> str:
        return f"case {self.name}: data dir {self.data}\nserver stderr:\n" + "\n---\n".join(self.logs)


@contextmanager
def case(pristine: Pristine, tmp_path: Path, name: str, *, counted: bool = True) -> Iterator[Case]:
    """A copy of `pristine` to damage; the case counts as passed or failed
    (unless not `counted`: a known failure), and a failure names the data
    dir and the server's stderr, and keeps both under RELIABILITY_REPORTS."""
    workdir = tmp_path / name
    workdir.mkdir(parents=True)
    shutil.copytree(pristine.data, workdir / "data", ignore=shutil.ignore_patterns(".lock"))
    c = Case(name, pristine, workdir)
    try:
        yield c
    except Exception as error:
        if c.running is not None and c.running.process.poll() is None:
            c.logs[-1] = c.running.stop(signal.SIGKILL)[2]
        if counted:
            TALLY.failed.append(name)
        if REPORTS is not None:
            kept = REPORTS / "damage-failures" / name
            shutil.copytree(workdir, kept, dirs_exist_ok=True)
            (kept / "context.txt").write_text(f"{error}\n{c.context()}\n")
        raise AssertionError(f"{error}\n{c.context()}") from error
    if counted:
        TALLY.passed.append(name)


def served(url: str) -> list[tuple[int, dict]]:
    """Every event of the partition from BEGIN: (offset, event)."""
    return read_all(url, NAME)[PARTITION]


def count_violations(expected: list[tuple[int, dict]], read: list[tuple[int, dict]]) -> None:
    """Add the harness's invariant counters of `read` against `expected`
    (what the damage must have left) to the report: an event the damage
    should not have taken that is missing counts as lost."""
    history = History(ok={e["metadata"]["eid"]: (e["w"], e["n"]) for _, e in expected})
    scratch = Report("scratch", SEED)
    check(history, {PARTITION: read}, scratch)
    REPORT.events_lost += scratch.events_lost
    REPORT.duplicates += scratch.duplicates
    REPORT.gaps += scratch.gaps
    REPORT.order_violations += scratch.order_violations


def assert_serves_prefix(c: Case, server: Server, kept: int) -> None:
    expected = c.pristine.oracle[:kept]
    read = served(server.url)
    count_violations(expected, read)
    assert [offset for offset, _ in read] == list(range(len(read))), "offsets must be dense from 0"
    assert len(read) == kept, f"served {len(read)} events, expected {kept}"
    assert read == expected, "served events differ from the oracle"


def assert_next_publish_continues(c: Case, server: Server, kept: int) -> None:
    """The next publish takes offset `kept` (last valid + 1), and everything before it is unchanged."""
    with httpx.Client(base_url=server.url, trust_env=False, timeout=30) as client:
        history = History()
        after = [event(1, 0, PADDING), event(1, 1, PADDING)]
        assert publish(client, NAME, after, history, REPORT) == "ok"
        (view,) = client.get(f"/event-types/{NAME}/partitions").json()
    assert view["newest_available_offset"] == cursor(kept + 1), view
    read = served(server.url)
    count_violations(c.pristine.oracle[:kept] + [(kept, after[0]), (kept + 1, after[1])], read)
    assert [offset for offset, _ in read] == list(range(kept + 2))
    assert read[:kept] == c.pristine.oracle[:kept]
    assert [e["metadata"]["eid"] for _, e in read[kept:]] == [e["metadata"]["eid"] for e in after]


# -- expected outcomes -----------------------------------------------------------------


def expect_torn_tail(c: Case, kept: int, cut_to: int, preexec_fn=None) -> None:
    """Starts; the active segment is cut back to `cut_to` (nothing more,
    nothing less); the oracle's first `kept` events are served; publishing
    continues at `kept`."""
    active = c.log(c.pristine.active)
    damaged_bytes = active.stat().st_size
    server = c.launch(preexec_fn=preexec_fn)
    assert isinstance(server, Server), f"refused to start a log with a torn tail ({server.status})"
    try:
        assert active.stat().st_size == cut_to, (
            f"active segment is {active.stat().st_size} bytes after recovery, expected {cut_to}")
        REPORT.truncated_bytes += damaged_bytes - cut_to
        assert_serves_prefix(c, server, kept)
        assert_next_publish_continues(c, server, kept)
    finally:
        c.stop(server)


def expect_refused(c: Case, base: int, position: int, offset: int, *words: str, preexec_fn=None) -> None:
    """Exit status 2, one last stderr line naming the file, byte position
    and offset, and every file of the partition left as it was."""
    before = snapshot(c.part)
    result = c.launch(preexec_fn=preexec_fn)
    if isinstance(result, Server):
        c.stop(result)
        TALLY.silent_truncations += 1
        raise AssertionError("the server started on damage followed by valid data")
    assert result.status == EXIT_CANNOT_START, f"exit status {result.status}"
    assert "Traceback" not in result.stderr
    line = result.stderr.strip().splitlines()[-1]
    where = f"{REFUSAL}{c.log(base)} at byte {position} (offset {offset}): "
    assert line.startswith(where), f"expected a line starting {where!r}, got {line!r}"
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    assert snapshot(c.part) == before, "a refused start must not change any file"


def expect_truncated(c: Case, kept: int, cut_base: int, cut_to: int) -> None:
    """With recover=truncate: starts, the damaged segment is cut at `cut_to`,
    every later segment is gone, the first `kept` events are served and
    publishing continues at `kept`."""
    server = c.launch(env=TRUNCATE)
    assert isinstance(server, Server), f"recover=truncate did not start ({server.status})"
    try:
        assert c.log(cut_base).stat().st_size == cut_to
        later = [b for b in c.pristine.bases if b > cut_base]
        for base in later:
            assert not c.log(base).exists() and not c.index(base).exists(), f"segment {base} was kept"
        assert_serves_prefix(c, server, kept)
        assert_next_publish_continues(c, server, kept)
    finally:
        c.stop(server)


def expect_identical(c: Case) -> None:
    """Starts; every read (from BEGIN, and after cursors that need the
    index) is byte-identical to the oracle; after a clean stop every file
    of the partition equals the undamaged one."""
    p = c.pristine
    server = c.launch()
    assert isinstance(server, Server), f"refused to start with a damaged index ({server.status})"
    try:
        TALLY.identical_total += 1
        assert read_raw(server.url, NAME, PARTITION, count=len(p.raw)) == p.raw, "a read from BEGIN differs"
        rng = random.Random(f"{SEED}-{c.name}")
        starts = {o for base in p.bases for frame in p.frames[base] for o in (frame.first_offset,)}
        starts |= {frame.first_offset + frame.count - 1 for base in p.bases for frame in p.frames[base]}
        for offset in sorted(rng.sample(sorted(starts), min(len(starts), 12)) + [0, len(p.raw) - 1]):
            after = "BEGIN" if offset == 0 else cursor(offset - 1)
            count = min(3, len(p.raw) - offset)
            assert read_raw(server.url, NAME, PARTITION, after, count) == p.raw[offset:offset + count], (
                f"a read after offset {offset - 1} differs")
    finally:
        c.stop(server)
    assert snapshot(c.part) == p.files, "the rebuilt files differ from the undamaged ones"
    TALLY.identical += 1


def limit_address_space() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = ADDRESS_SPACE_BYTES_MAX if hard == resource.RLIM_INFINITY else min(hard, ADDRESS_SPACE_BYTES_MAX)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


# -- torn tail of the active segment ---------------------------------------------------


def cut_points(frame: Frame) -> list[int]:
    """Where to cut the last frame: every byte (long runs), or the start of
    each field and a sample of the payload (CI)."""
    every = list(range(frame.position, frame.end))
    if LONG:
        return every
    body = frame.position + FRAME_HEADER_BYTES
    fixed = [frame.position, frame.position + 1, frame.position + 3, frame.position + 4, frame.position + 7,
             body, body + 1, body + 10, body + 19, body + 24, frame.end - 1]
    sample = random.Random(SEED).sample(range(body + 25, frame.end - 1), 3)
    return sorted(set(fixed + sample))


def test_damage_truncate_inside_last_frame(pristine: Pristine, tmp_path: Path) -> None:
    last = pristine.last
    for cut in cut_points(last):
        with case(pristine, tmp_path, f"truncate-{cut - last.position}") as c:
            os.truncate(c.log(pristine.active), cut)
            expect_torn_tail(c, last.first_offset, last.position)


def test_damage_truncate_inside_last_frame_after_kill(killed: Pristine, tmp_path: Path) -> None:
    last = killed.last
    body = last.position + FRAME_HEADER_BYTES
    for cut in (last.position + 2, body + 20, last.end - 1):
        with case(killed, tmp_path, f"killed-truncate-{cut - last.position}") as c:
            os.truncate(c.log(killed.active), cut)
            expect_torn_tail(c, last.first_offset, last.position)


@pytest.mark.parametrize("kind", ["zeros", "garbage"])
@pytest.mark.parametrize("stop", ["term", "kill"])
def test_damage_bytes_appended_to_active(pristine: Pristine, killed: Pristine, tmp_path: Path, kind: str,
                                         stop: str) -> None:
    p = pristine if stop == "term" else killed
    with case(p, tmp_path, f"{stop}-append-{kind}") as c:
        junk = bytes(4096) if kind == "zeros" else random.Random(SEED).randbytes(4096)
        with open(c.log(p.active), "ab") as f:
            f.write(junk)
        expect_torn_tail(c, len(p.oracle), p.last.end)




@pytest.mark.parametrize("where", list(FRAME_BITS))
def test_damage_bit_flip_in_last_frame_is_a_torn_tail(pristine: Pristine, tmp_path: Path, where: str) -> None:
    last = pristine.last
    with case(pristine, tmp_path, f"flip-last-{where}") as c:
        flip_bit(c.log(pristine.active), *frame_byte(last, where))
        expect_torn_tail(c, last.first_offset, last.position)


def test_damage_bit_flip_in_last_frame_after_kill(killed: Pristine, tmp_path: Path) -> None:
    last = killed.last
    with case(killed, tmp_path, "killed-flip-last-payload") as c:
        flip_bit(c.log(killed.active), *frame_byte(last, "payload"))
        expect_torn_tail(c, last.first_offset, last.position)


def test_damage_huge_length_in_last_frame_is_a_torn_tail(pristine: Pristine, tmp_path: Path) -> None:
    last = pristine.last
    with case(pristine, tmp_path, "length-2^31-last") as c:
        put(c.log(pristine.active), last.position, struct.pack("<I", 2**31))
        expect_torn_tail(c, last.first_offset, last.position, preexec_fn=limit_address_space)


# -- damage followed by valid frames (I5) ----------------------------------------------


def damaged_frame(p: Pristine, location: str) -> tuple[int, Frame]:
    """A frame that valid frames follow: its segment's base and the frame."""
    if location == "active":
        return p.active, p.frames[p.active][1]
    if location == "first_sealed_last_frame":
        return p.sealed[0], p.frames[p.sealed[0]][-1]
    if location == "middle_sealed":
        return p.sealed[1], p.frames[p.sealed[1]][2]
    assert location == "last_sealed"
    return p.sealed[-1], p.frames[p.sealed[-1]][1]


REFUSED = [("active", "payload"), ("active", "length_low"), ("first_sealed_last_frame", "crc"),
           ("middle_sealed", "payload"), ("last_sealed", "length_low")]


@pytest.mark.parametrize(("location", "where"), REFUSED)
def test_damage_bit_flip_before_valid_frames_refuses(pristine: Pristine, tmp_path: Path, location: str,
                                                     where: str) -> None:
    base, frame = damaged_frame(pristine, location)
    with case(pristine, tmp_path, f"refuse-{location}-{where}") as c:
        flip_bit(c.log(base), *frame_byte(frame, where))
        expect_refused(c, base, frame.position, frame.first_offset, "truncate")


def test_damage_bit_flip_before_valid_frames_refuses_after_kill(killed: Pristine, tmp_path: Path) -> None:
    base, frame = damaged_frame(killed, "active")
    with case(killed, tmp_path, "killed-refuse-active-crc") as c:
        flip_bit(c.log(base), *frame_byte(frame, "crc"))
        expect_refused(c, base, frame.position, frame.first_offset)


@pytest.mark.parametrize("location", ["active", "middle_sealed"])
def test_damage_huge_length_before_valid_frames_refuses(pristine: Pristine, tmp_path: Path, location: str) -> None:
    base, frame = damaged_frame(pristine, location)
    with case(pristine, tmp_path, f"length-2^31-{location}") as c:
        put(c.log(base), frame.position, struct.pack("<I", 2**31))
        expect_refused(c, base, frame.position, frame.first_offset, "length", preexec_fn=limit_address_space)


@pytest.mark.parametrize(("location", "where"), [("active", "payload"), ("middle_sealed", "crc"),
                                                 ("first_sealed_last_frame", "length_low")])
def test_damage_before_valid_frames_truncates_when_asked(pristine: Pristine, tmp_path: Path, location: str,
                                                         where: str) -> None:
    base, frame = damaged_frame(pristine, location)
    with case(pristine, tmp_path, f"recover-truncate-{location}-{where}") as c:
        flip_bit(c.log(base), *frame_byte(frame, where))
        expect_truncated(c, frame.first_offset, base, frame.position)


def test_damage_random_bit_flips(pristine: Pristine, tmp_path: Path) -> None:
    """Seeded random flips anywhere in any segment: a torn tail in the
    active segment's last frame, a refusal naming the frame anywhere else."""
    rng = random.Random(SEED)
    for i in range(sized(6, 60)):
        base = rng.choice(pristine.bases)
        size = len(pristine.files[log_name(base)])
        position, bit = rng.randrange(size), rng.randrange(8)
        with case(pristine, tmp_path, f"random-{i}-{base}-{position}-{bit}") as c:
            flip_bit(c.log(base), position, bit)
            if position < HEADER_BYTES:
                expect_refused(c, base, 0, base)
                continue
            (frame,) = [f for f in pristine.frames[base] if f.position <= position < f.end]
            if frame == pristine.last:
                expect_torn_tail(c, frame.first_offset, frame.position)
            else:
                expect_refused(c, base, frame.position, frame.first_offset)


# -- indexes are derived data (I6) ------------------------------------------------------


def damage_index(path: Path, kind: str, log_bytes: int) -> None:
    data = path.read_bytes()
    entries = [ENTRY.unpack_from(data, i) for i in range(0, len(data), ENTRY.size)]
    while len(entries) > 1 and entries[-1] == (0, 0):
        entries.pop()  # the active index's preallocated zeros
    if kind == "deleted":
        path.unlink()
        return
    if kind == "halved":
        path.write_bytes(data[: len(data) // 2])
        return
    if kind == "garbage":
        path.write_bytes(random.Random(SEED).randbytes(len(data)))
        return
    if kind == "past_end":
        rel, _ = entries[-1]
        entries[-1] = (rel, log_bytes + 64)
    else:
        assert kind == "non_monotonic"
        entries[0], entries[1] = entries[1], entries[0]
    body = b"".join(ENTRY.pack(*e) for e in entries)
    path.write_bytes(body + bytes(max(len(data) - len(body), 0)))


@pytest.mark.parametrize("kind", ["deleted", "halved", "garbage", "past_end", "non_monotonic"])
@pytest.mark.parametrize("segment", ["sealed", "active"])
def test_damage_index_is_rebuilt_and_reads_are_identical(pristine: Pristine, tmp_path: Path, segment: str,
                                                         kind: str) -> None:
    base = pristine.sealed[1] if segment == "sealed" else pristine.active
    with case(pristine, tmp_path, f"index-{segment}-{kind}") as c:
        damage_index(c.index(base), kind, len(pristine.files[log_name(base)]))
        expect_identical(c)


def test_damage_leftovers_of_interrupted_writes_are_removed(pristine: Pristine, tmp_path: Path) -> None:
    """Temporary files and an index without a segment: removed at start-up, nothing else changes."""
    with case(pristine, tmp_path, "leftovers") as c:
        (c.part / (log_name(pristine.sealed[1]) + ".tmp")).write_bytes(b"half-written")
        (c.part / (index_name(pristine.sealed[0]) + ".swap")).write_bytes(bytes(64))
        c.index(len(pristine.oracle) + 1000).write_bytes(bytes(ENTRY.size))
        expect_identical(c)


# -- segment headers and the set of segments --------------------------------------------


@pytest.mark.parametrize("header_bytes", [0, 7])
def test_damage_empty_or_torn_new_active_segment_starts(pristine: Pristine, tmp_path: Path,
                                                        header_bytes: int) -> None:
    """A crash right after a roll created the next segment file, before
    (all of) its header was written."""
    end = len(pristine.oracle)
    with case(pristine, tmp_path, f"new-active-{header_bytes}-bytes") as c:
        header = b"NKDLOG" + struct.pack(">HQ", 1, end)
        c.log(end).write_bytes(header[:header_bytes])
        server = c.launch()
        assert isinstance(server, Server), f"refused a zero-length active segment ({server.status})"
        try:
            assert_serves_prefix(c, server, end)
            assert_next_publish_continues(c, server, end)
        finally:
            c.stop(server)
        assert c.log(end).read_bytes()[:HEADER_BYTES] == header


def test_damage_missing_segment_refuses(pristine: Pristine, tmp_path: Path) -> None:
    missing, before, after = pristine.bases[1], pristine.bases[0], pristine.bases[2]
    with case(pristine, tmp_path, "missing-segment") as c:
        c.log(missing).unlink()
        c.index(missing).unlink()
        expect_refused(c, before, len(pristine.files[log_name(before)]), missing,
                       f"ends at offset {missing}", f"starts at {after}")


def test_damage_missing_segment_truncates_when_asked(pristine: Pristine, tmp_path: Path) -> None:
    missing, before = pristine.bases[1], pristine.bases[0]
    with case(pristine, tmp_path, "missing-segment-recover-truncate") as c:
        c.log(missing).unlink()
        c.index(missing).unlink()
        expect_truncated(c, missing, before, len(pristine.files[log_name(before)]))


@pytest.mark.parametrize(("segment", "field_", "value", "word"), [
    ("sealed", 0, b"XKDLOG", "magic"), ("active", 0, b"NKDLOX", "magic"),
    ("sealed", 6, struct.pack(">H", 2), "version"), ("active", 6, struct.pack(">H", 0), "version")])
def test_damage_wrong_magic_or_version_refuses(pristine: Pristine, tmp_path: Path, segment: str, field_: int,
                                               value: bytes, word: str) -> None:
    base = pristine.sealed[1] if segment == "sealed" else pristine.active
    with case(pristine, tmp_path, f"header-{segment}-{word}") as c:
        put(c.log(base), field_, value)
        expect_refused(c, base, 0, base, word)


def test_damage_wrong_magic_in_sealed_segment_truncates_when_asked(pristine: Pristine, tmp_path: Path) -> None:
    """The damaged segment starts again empty at its base offset (a fresh
    header); every later segment is gone."""
    base = pristine.bases[2]
    with case(pristine, tmp_path, "header-sealed-magic-recover-truncate", counted=False) as c:
        put(c.log(base), 0, b"XKDLOG")
        expect_truncated(c, base, base, HEADER_BYTES)


# -- the report ---------------------------------------------------------------------


def test_damage_torn_tail_is_reported_in_the_server_log(pristine: Pristine, tmp_path: Path) -> None:
    last = pristine.last
    workdir = tmp_path / "report"
    workdir.mkdir()
    shutil.copytree(pristine.data, workdir / "data", ignore=shutil.ignore_patterns(".lock"))
    path = partition_dir(workdir / "data") / log_name(pristine.active)
    os.truncate(path, last.end - 1)
    server = launch(workdir, workdir / "data", env=ENV)
    assert isinstance(server, Server), server
    _, _, stderr = server.stop(signal.SIGTERM)
    lines = [line for line in stderr.splitlines() if log_name(pristine.active) in line]
    assert lines, f"no log line names {path}:\n{stderr}"
    assert any(str(last.first_offset) in line and str(last.end - 1 - last.position) in line for line in lines), lines


def test_damage_recover_truncate_is_reported_in_the_server_log(pristine: Pristine, tmp_path: Path) -> None:
    base, frame = damaged_frame(pristine, "middle_sealed")
    workdir = tmp_path / "report"
    workdir.mkdir()
    shutil.copytree(pristine.data, workdir / "data", ignore=shutil.ignore_patterns(".lock"))
    flip_bit(partition_dir(workdir / "data") / log_name(base), *frame_byte(frame, "crc"))
    server = launch(workdir, workdir / "data", env={**ENV, **TRUNCATE})
    assert isinstance(server, Server), server
    _, _, stderr = server.stop(signal.SIGTERM)
    removed = len(pristine.oracle) - frame.first_offset
    lines = [line for line in stderr.splitlines() if log_name(base) in line]
    assert any(str(frame.first_offset) in line and str(removed) in line for line in lines), stderr


def test_damage_report() -> None:
    """Runs last: every case passed, and the suite's report line."""
    REPORT.cycles = len(TALLY.passed) + len(TALLY.failed)
    print(f"\ndamage cases: {len(TALLY.passed)} passed, {len(TALLY.failed)} failed; reads identical after "
          f"rebuild {TALLY.identical}/{TALLY.identical_total}; silent truncations of non-tail data "
          f"{TALLY.silent_truncations}; truncated bytes {REPORT.truncated_bytes}")
    REPORT.finish()
    assert not TALLY.failed, f"damage cases failed: {TALLY.failed}"
    assert TALLY.silent_truncations == 0
    assert TALLY.passed, "no damage case ran"
