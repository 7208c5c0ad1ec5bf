"""Disk full through the real server (RELIABILITY.md (3)).

Two ways to fill the disk under a running `nakadi serve`:

(a) RLIMIT_FSIZE, set in the child before exec: the write that crosses it
    fails with EFBIG (CPython ignores SIGXFSZ). The segment roll size is
    above the limit, so the active segment hits it. Space cannot come back
    under a fixed limit in the same process, so the server is restarted
    (once under the same limit, which must still serve reads, then
    without it) on the same data directory.
(b) A small tmpfs in a user+mount namespace (`unshare -rm`), with the
    server exec'd inside it: real ENOSPC. A filler file placed in the
    tmpfs first is deleted from outside through /proc/<pid>/root while
    the server runs, so space returns without a restart. Skipped where
    the namespace or the mount is not permitted.

What must hold: a publish refused for lack of space is a 507 Problem JSON
naming the errno and stores nothing of its batch; no 2xx while full; the
segment keeps no partial frame; reads keep working; GET /ready is 503
saying why, and 200 again once an append succeeds; the server stays up;
after space returns, publishing resumes and offsets continue with no gap.
"""

from __future__ import annotations

import os
import resource
import signal
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.reliability.harness import (
    Exited,
    History,
    Report,
    check,
    check_error,
    event,
    event_type,
    launch,
    read_all,
)
from tests.server import Server

pytestmark = pytest.mark.slow

SEED = 20261126
NAME = "full"
PARTITION = "0"
PROBLEM_JSON = "application/problem+json"
FILE_SIZE_LIMIT_BYTES = 256 * 1024
# Above the file size limit and the tmpfs, so the active segment is the file that fills up.
SEGMENT_BYTES_MAX = 8 * 1024 * 1024
TMPFS_BYTES = 1024 * 1024
FILLER_BYTES = 256 * 1024
BATCH_EVENTS = 8
PADDING = 900
FILL_PUBLISHES_MAX = 400
FILL_SECONDS = 20
WHILE_FULL_PUBLISHES = 3
RESUMED_PUBLISHES = 4
HEADER_BYTES = 16
FRAME_HEADER_BYTES = 8


@dataclass
class DiskFullReport(Report):
    """The harness's counters plus the ones of section (3)."""

    full_2xx: int = 0
    crashes: int = 0
    resume_ms: list[float] = field(default_factory=list)

    def as_json(self) -> dict:
        values = super().as_json()
        values.update(full_2xx=self.full_2xx, crashes=self.crashes,
                      resume_ms_max=round(max(self.resume_ms), 1) if self.resume_ms else None)
        return values


REPORT = DiskFullReport("disk_full", SEED)
KNOWN = DiskFullReport("disk_full_known_failures", SEED)  # counted apart: they would fail the report


@pytest.fixture(scope="module", autouse=True)
def _report_clock() -> None:
    """The report's duration counts from this module's first test, not from its import."""
    REPORT.started = time.monotonic()


# -- helpers ---------------------------------------------------------------------------


class Run:
    """One server and what the test did to it, for the failure message."""

    def __init__(self, tmp_path: Path, data_dir: Path, report: DiskFullReport = REPORT) -> None:
        self.tmp_path = tmp_path
        self.report = report
        self.data_dir = data_dir
        self.logs: list[str] = []
        self.server: Server | None = None
        self.on_tmpfs = False

    def start(self, *, env: dict[str, str], preexec_fn=None, wrap=None) -> Server:
        self.on_tmpfs = wrap is not None
        result = launch(self.tmp_path, self.data_dir, env={"PYTHONFAULTHANDLER": "1", **env},
                        preexec_fn=preexec_fn, wrap=wrap)
        if isinstance(result, Exited):
            self.logs.append(result.stderr)
            raise AssertionError(f"the server did not start ({result.status})\n{self.context()}")
        self.server = result
        return result

    def stop(self) -> None:
        """SIGTERM; a server that had already died, or dies of a signal, is a crash."""
        server, self.server = self.server, None
        assert server is not None
        alive = server.process.poll() is None
        status, _, stderr = server.stop(signal.SIGTERM) if alive else server.wait()
        self.logs.append(stderr)
        if not alive or status != 0:
            self.report.crashes += 1
            raise AssertionError(f"the server crashed or failed to stop cleanly ({status})\n{self.context()}")

    def alive(self, wait_s: float = 0) -> None:
        """Fail if the server died (waiting up to `wait_s` for it to, after a dropped connection)."""
        assert self.server is not None
        if wait_s:
            try:
                self.server.process.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                pass
        if self.server.process.poll() is not None:
            self.report.crashes += 1
            status, _, stderr = self.server.wait()
            self.logs.append(stderr)
            self.server = None
            raise AssertionError(f"the server died (exit status {status})\n{self.context()}")

    def context(self) -> str:
        logs = list(self.logs)
        if self.server is not None:
            logs.append("".join(self.server.stderr))
        where = " (on a tmpfs that went with the server's namespace)" if self.on_tmpfs else ""
        return f"data dir {self.data_dir}{where}\nserver stderr:\n" + "\n---\n".join(logs)

    def kill_if_running(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.kill()


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, trust_env=False, timeout=30)


def batch_of(writer: int, start: int, count: int = BATCH_EVENTS, padding: int = PADDING) -> list[dict]:
    return [event(writer, start + i, padding) for i in range(count)]


def post(c: httpx.Client, events: list[dict], history: History, report: Report = REPORT) -> httpx.Response:
    """Publish; a 200 acknowledges the batch, a 207 its `submitted` items;
    any other answer (a 507 included) must have stored nothing of it."""
    response = c.post(f"/event-types/{NAME}/events", json=events)
    if response.status_code == 200:
        history.record(events, "ok")
    elif response.status_code == 207:
        submitted = {item["eid"] for item in response.json() if item["publishing_status"] == "submitted"}
        history.record([e for e in events if e["metadata"]["eid"] in submitted], "ok")
        history.record([e for e in events if e["metadata"]["eid"] not in submitted], "fail")
    else:
        check_error(response, report)
        history.record(events, "fail")
    return response


def assert_insufficient_storage(response: httpx.Response, errno_name: str) -> None:
    assert response.status_code == 507, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body = response.json()
    assert body["status"] == 507 and errno_name in body.get("detail", ""), body


def assert_not_ready(c: httpx.Client, errno_name: str) -> None:
    response = c.get("/ready")
    body = response.json()
    assert response.status_code == 503, (response.status_code, body)
    assert body["status"] == "not ready" and body["storage"]["writable"] is False, body
    assert errno_name in body["storage"].get("detail", ""), body


def assert_ready(c: httpx.Client) -> None:
    response = c.get("/ready")
    assert response.status_code == 200, response.text
    assert response.json()["storage"] == {"writable": True}, response.text


def fill(run: Run, c: httpx.Client, history: History, errno_name: str,
         report: Report = REPORT) -> tuple[int, list[dict]]:
    """Publish batches until one is refused; (acked events, the refused batch)."""
    deadline, n = time.monotonic() + FILL_SECONDS, 0
    for _ in range(FILL_PUBLISHES_MAX):
        batch = batch_of(0, n)
        n += len(batch)
        response = post(c, batch, history, report)
        if response.status_code != 200:
            assert_insufficient_storage(response, errno_name)
            return len(history.ok), batch
        assert time.monotonic() < deadline, f"the disk did not fill within {FILL_SECONDS} s\n{run.context()}"
    raise AssertionError(f"{FILL_PUBLISHES_MAX} publishes did not fill the disk\n{run.context()}")


def refused_while_full(run: Run, c: httpx.Client, history: History, errno_name: str) -> None:
    """Batches as large as the refused one are refused too: never a 2xx while full."""
    for i in range(WHILE_FULL_PUBLISHES):
        response = post(c, batch_of(2, i * BATCH_EVENTS), history)
        if response.status_code < 300:
            REPORT.full_2xx += 1
        assert_insufficient_storage(response, errno_name)
    run.alive()


def served(server: Server) -> list[tuple[int, dict]]:
    return read_all(server.url, NAME)[PARTITION]


def assert_serves_acked(server: Server, history: History) -> list[tuple[int, dict]]:
    """Every acknowledged event, in order, at dense offsets from 0; nothing refused."""
    read = served(server)
    scratch = Report("scratch", SEED)
    check(history, {PARTITION: read}, scratch)
    for name in ("events_lost", "duplicates", "gaps", "order_violations"):
        setattr(REPORT, name, getattr(REPORT, name) + getattr(scratch, name))
    assert [offset for offset, _ in read] == list(range(len(read))), "offsets are not dense from 0"
    assert [e["metadata"]["eid"] for _, e in read] == list(history.ok), "served events differ from the acked ones"
    return read


def assert_whole_frames(segment: Path) -> None:
    """The segment holds whole frames only (docs/storage.md layout): a refused write left no partial bytes."""
    data = segment.read_bytes()
    assert data[:6] == b"NKDLOG", data[:16]
    position = HEADER_BYTES
    while position < len(data):
        assert position + FRAME_HEADER_BYTES <= len(data), f"{segment}: a partial frame header at {position}"
        (length,) = struct.unpack_from("<I", data, position)
        assert position + FRAME_HEADER_BYTES + length <= len(data), f"{segment}: a partial frame at {position}"
        position += FRAME_HEADER_BYTES + length


def active_segment(partition_dir: Path) -> Path:
    return sorted(partition_dir.glob("*.log"))[-1]


def resume(run: Run, c: httpx.Client, history: History, acked_before: int) -> None:
    """Publishing works again at once; the first resumed event takes offset `acked_before`."""
    started = time.monotonic()
    for attempt in range(RESUMED_PUBLISHES):
        batch = batch_of(3, attempt * BATCH_EVENTS)
        response = post(c, batch, history)
        assert response.status_code == 200, (response.status_code, response.text, run.context())
        if attempt == 0:
            REPORT.resume_ms.append((time.monotonic() - started) * 1000)
            (view,) = c.get(f"/event-types/{NAME}/partitions").json()
            assert view["newest_available_offset"] == f"001-0001-{acked_before + len(batch) - 1:018d}", view


# -- (a) RLIMIT_FSIZE ----------------------------------------------------------------------


def limit_file_size(limit: int):
    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return preexec


RLIMIT_ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": str(SEGMENT_BYTES_MAX),
              # The active index is preallocated whole: keep it under the limit.
              "NAKADI_STORAGE_INDEX_BYTES_MAX": "16384"}


def test_disk_full_file_size_limit_refuses_then_resumes_after_restart(tmp_path: Path) -> None:
    hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
    if hard != resource.RLIM_INFINITY and hard < 4 * FILE_SIZE_LIMIT_BYTES:
        pytest.skip(f"the RLIMIT_FSIZE hard limit {hard} is below what the test needs")
    data = tmp_path / "data"
    run = Run(tmp_path, data)
    history = History()
    REPORT.cycles += 1
    try:
        server = run.start(env=RLIMIT_ENV, preexec_fn=limit_file_size(FILE_SIZE_LIMIT_BYTES))
        with client(server) as c:
            created = c.post("/event-types", json=event_type(NAME, 1))
            assert created.status_code == 201, (created.text, run.context())
            acked, refused = fill(run, c, history, "EFBIG")
            assert acked >= 5 * BATCH_EVENTS, f"only {acked} events fit under the limit"
            segment = active_segment(data / "event-types" / NAME / PARTITION)
            assert segment.stat().st_size <= FILE_SIZE_LIMIT_BYTES
            assert_whole_frames(segment)
            refused_while_full(run, c, history, "EFBIG")
            assert_not_ready(c, "EFBIG")
            assert c.get("/health").status_code == 200
            assert_serves_acked(server, history)
            run.alive()
        run.stop()

        # A restart on the full disk still serves reads; writes are still refused.
        server = run.start(env=RLIMIT_ENV, preexec_fn=limit_file_size(FILE_SIZE_LIMIT_BYTES))
        with client(server) as c:
            assert_serves_acked(server, history)
            refused_while_full(run, c, history, "EFBIG")
            assert_not_ready(c, "EFBIG")
        run.stop()

        # Without the limit: everything acked is there and publishing continues at the next offset.
        server = run.start(env=RLIMIT_ENV)
        with client(server) as c:
            assert_serves_acked(server, history)
            assert_ready(c)
            resume(run, c, history, acked)
            assert_ready(c)
            read = assert_serves_acked(server, history)
            assert refused[0]["metadata"]["eid"] not in {e["metadata"]["eid"] for _, e in read}
        run.stop()
        assert_whole_frames(active_segment(data / "event-types" / NAME / PARTITION))
    finally:
        run.kill_if_running()
    REPORT.events_acked += len(history.ok)


# -- (b) a small tmpfs in a user+mount namespace ------------------------------------------------

MOUNT = 'mount -t tmpfs -o size={size} tmpfs "$0" && head -c {filler} /dev/zero > "$0/filler" && exec "$@"'


def namespace_refusal(tmp_path: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a user+mount namespace here, or None."""
    probe = tmp_path / "probe"
    probe.mkdir()
    try:
        done = subprocess.run(["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o size=64k tmpfs "$0"', str(probe)],
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unshare -rm failed: {error}"
    return None if done.returncode == 0 else f"unshare -rm + mount tmpfs: {done.stderr.strip()} ({done.returncode})"


@pytest.fixture
def tmpfs(tmp_path: Path):
    """(mount point, a function starting a server with its data dir on a fresh tmpfs there)."""
    reason = namespace_refusal(tmp_path)
    if reason is not None:
        pytest.skip(f"no tmpfs in a user+mount namespace: {reason}")
    mount_point = tmp_path / "fs"
    mount_point.mkdir()

    def wrap(size: int, filler: int):
        script = MOUNT.format(size=size, filler=filler)
        return lambda command: ["unshare", "-rm", "sh", "-c", script, str(mount_point), *command]
    return mount_point, wrap


def inside(server: Server, path: Path) -> Path:
    """`path` as the server's mount namespace sees it."""
    return Path(f"/proc/{server.pid}/root") / path.relative_to("/")


TMPFS_ENV = {"NAKADI_STORAGE_SEGMENT_BYTES_MAX": str(SEGMENT_BYTES_MAX)}


def test_disk_full_tmpfs_refuses_until_space_returns(tmp_path: Path, tmpfs) -> None:
    mount_point, wrap = tmpfs
    data = mount_point / "data"
    run = Run(tmp_path, data)
    history = History()
    REPORT.cycles += 1
    try:
        server = run.start(env=TMPFS_ENV, wrap=wrap(TMPFS_BYTES, FILLER_BYTES))
        filler = inside(server, mount_point / "filler")
        assert filler.stat().st_size == FILLER_BYTES, run.context()
        with client(server) as c:
            created = c.post("/event-types", json=event_type(NAME, 1))
            assert created.status_code == 201, (created.text, run.context())
            acked, refused = fill(run, c, history, "ENOSPC")
            assert acked >= 5 * BATCH_EVENTS, f"only {acked} events fit"
            assert_whole_frames(active_segment(inside(server, data / "event-types" / NAME / PARTITION)))
            refused_while_full(run, c, history, "ENOSPC")
            assert_not_ready(c, "ENOSPC")
            assert_serves_acked(server, history)
            run.alive()

            filler.unlink()
            resume(run, c, history, acked)
            assert_ready(c)
            read = assert_serves_acked(server, history)
            assert refused[0]["metadata"]["eid"] not in {e["metadata"]["eid"] for _, e in read}
            assert_whole_frames(active_segment(inside(server, data / "event-types" / NAME / PARTITION)))
            run.alive()
        run.stop()
    finally:
        run.kill_if_running()
    REPORT.events_acked += len(history.ok)


# -- a full disk at a segment roll, and for the metadata ----------------------------------------


def test_disk_full_tmpfs_while_rolling_segments_keeps_the_server_up(tmp_path: Path, tmpfs) -> None:
    """Every publish rolls (a segment holds one frame), so each needs a page
    for the new segment file and, once the frame is written, one for its
    index. Fill until refused (no page left), then free exactly one page:
    the next publish writes its header and frame into that page, and the
    index entry has none left."""
    mount_point, wrap = tmpfs
    data = mount_point / "data"
    run = Run(tmp_path, data, KNOWN)
    history = History()
    try:
        server = run.start(env={"NAKADI_STORAGE_SEGMENT_BYTES_MAX": "600"}, wrap=wrap(256 * 1024, 64 * 1024))
        filler = inside(server, mount_point / "filler")
        with client(server) as c:
            assert c.post("/event-types", json=event_type(NAME, 1)).status_code == 201
            for i in range(FILL_PUBLISHES_MAX):
                try:
                    response = post(c, batch_of(0, i, count=1, padding=100), history, KNOWN)
                except httpx.HTTPError:
                    run.alive(wait_s=2)
                    raise
                if response.status_code != 200:
                    assert_insufficient_storage(response, "ENOSPC")
                    break
            os.truncate(filler, 64 * 1024 - os.sysconf("SC_PAGE_SIZE"))
            try:
                response = post(c, batch_of(1, 0, count=1, padding=100), history, KNOWN)
            except httpx.HTTPError:
                run.alive(wait_s=2)
                raise
            assert response.status_code in (200, 507), response.text
            run.alive()
            assert_serves_acked(server, history)
        run.stop()
    finally:
        run.kill_if_running()


def test_disk_full_tmpfs_metadata_writes_are_refused_with_507(tmp_path: Path, tmpfs) -> None:
    mount_point, wrap = tmpfs
    run = Run(tmp_path, mount_point / "data", KNOWN)
    history = History()
    try:
        server = run.start(env=TMPFS_ENV, wrap=wrap(512 * 1024, 0))
        with client(server) as c:
            assert c.post("/event-types", json=event_type(NAME, 1)).status_code == 201
            fill(run, c, history, "ENOSPC", KNOWN)
            created = c.post("/event-types", json=event_type("second", 1))
            subscribed = c.post("/subscriptions", json={"owning_application": "reliability", "event_types": [NAME]})
            run.alive()
            for response in (created, subscribed):
                assert_insufficient_storage(response, "ENOSPC")
        run.stop()
    finally:
        run.kill_if_running()


def test_disk_full_file_size_limit_below_index_preallocation_is_a_507(tmp_path: Path) -> None:
    run = Run(tmp_path, tmp_path / "data", KNOWN)
    try:
        # The default index_bytes_max (512 KiB) is above the limit.
        server = run.start(env={"NAKADI_STORAGE_SEGMENT_BYTES_MAX": str(SEGMENT_BYTES_MAX)},
                           preexec_fn=limit_file_size(FILE_SIZE_LIMIT_BYTES))
        with client(server) as c:
            created = c.post("/event-types", json=event_type(NAME, 1))
            run.alive()
            assert_insufficient_storage(created, "EFBIG")
        run.stop()
    finally:
        run.kill_if_running()


def test_disk_full_report() -> None:
    """Runs last: the suite's report line; every counter of section (3) is 0."""
    print(f"\ndisk full: acked lost {REPORT.events_lost}, 2xx while full {REPORT.full_2xx}, non-Problem errors "
          f"{REPORT.non_problem_errors}, crashes {REPORT.crashes}, gaps {REPORT.gaps}, resume ms {REPORT.resume_ms}")
    REPORT.finish()
    assert REPORT.full_2xx == 0 and REPORT.crashes == 0
    assert REPORT.cycles, "no disk-full scenario ran"
