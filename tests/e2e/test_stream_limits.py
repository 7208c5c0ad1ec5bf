"""The low-level stream's limits over real HTTP: `stream_timeout` ends a
stream cleanly (the last chunk arrives); a client that stops reading a
large backlog does not make the server buffer it (bounded RSS) nor stall
other requests, and closing it frees the stream; keep-alives run per
partition; deleting the event type ends its open streams cleanly."""

from __future__ import annotations

import collections
import json
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass

import httpx
import pytest

from tests.api.helpers import business_event, business_type
from tests.server import Server, serving

pytestmark = pytest.mark.slow

BACKLOG_EVENTS = 20_000
EVENT_PAD_BYTES = 900  # with its metadata, an event of about 1 KiB
PUBLISH_BATCH = 1_000
RSS_GROWTH_KIB_MAX = 60 * 1024
STALL_SECONDS = 4
BEFORE_FIRST = "001-0001--1"


# -- the server -------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream-limits")
    with serving(root, root / "data") as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, trust_env=False, timeout=10) as client:
        yield client


def assert_server_fine(server: Server, client: httpx.Client) -> None:
    """Alive, answering, and no unexpected error nor traceback in its log."""
    assert server.process.poll() is None, "the server exited"
    assert client.get("/health").status_code == 200
    bad = server.log_problems()
    assert bad == [], "".join(bad)


def server_side_socket(pid: int, client_port: int) -> tuple[int, int] | None:
    """The inode and send-queue bytes of the server's socket whose peer is
    our `client_port`, if it is open."""
    with open(f"/proc/{pid}/net/tcp") as table:
        for row in list(table)[1:]:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == client_port and int(fields[9]):
                return int(fields[9]), int(fields[4].split(":")[0], 16)
    return None


def holds_socket(pid: int, inode: int) -> bool:
    target = f"socket:[{inode}]"
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                return True
        except FileNotFoundError:
            pass
    return False


def cursors_header(partitions: int, offset: str = "BEGIN") -> dict[str, str]:
    return {"X-Nakadi-Cursors": json.dumps([{"partition": str(p), "offset": offset} for p in range(partitions)])}


def create(client: httpx.Client, name: str, partitions: int = 1) -> None:
    response = client.post("/event-types", json=business_type(name=name, partitions=partitions))
    assert response.status_code == 201, response.text


def publish_backlog(client: httpx.Client, name: str, count: int) -> None:
    for first in range(0, count, PUBLISH_BATCH):
        batch = [business_event(f"o{i}", pad="x" * EVENT_PAD_BYTES) for i in range(first, first + PUBLISH_BATCH)]
        response = client.post(f"/event-types/{name}/events", json=batch)
        assert response.status_code == 200, response.text


def open_stalled_stream(server: Server, name: str) -> socket.socket:
    """A GET of the whole backlog on a raw socket with a small receive
    buffer; only the first 4 KiB are read, to see the 200."""
    address = urllib.parse.urlsplit(server.url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((address.hostname, address.port))
    header = cursors_header(1)["X-Nakadi-Cursors"].encode()
    sock.sendall(b"GET /event-types/" + name.encode() + b"/events?stream_timeout=60 HTTP/1.1\r\n"
                 b"Host: 127.0.0.1\r\nX-Nakadi-Cursors: " + header + b"\r\n\r\n")
    try:
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 200 "), head[:200]
    except BaseException:
        sock.close()
        raise
    return sock


def close_abruptly(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


@pytest.fixture(scope="module")
def backlog(client):
    name = "limits.backlog"
    create(client, name)
    started = time.monotonic()
    publish_backlog(client, name, BACKLOG_EVENTS)
    print(f"published {BACKLOG_EVENTS} events of ~1 KiB in {time.monotonic() - started:.1f} s")
    return name


# -- stream_timeout ---------------------------------------------------------------

def is_keep_alive(line: str, partition: str = "0", offset: str = BEFORE_FIRST) -> bool:
    return json.loads(line) == {"cursor": {"partition": partition, "offset": offset}}


def test_stream_timeout_ends_the_stream_cleanly(server, client):
    create(client, "limits.timeout")
    started = time.monotonic()
    with client.stream("GET", "/event-types/limits.timeout/events?stream_timeout=2&batch_flush_timeout=1") as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())  # httpx raises if the chunked body is cut short
    elapsed = time.monotonic() - started
    print(f"stream_timeout=2: ended after {elapsed:.2f} s with {len(lines)} keep-alive(s)")
    assert 1.8 <= elapsed <= 4.5
    assert 1 <= len(lines) <= 2 and all(is_keep_alive(line) for line in lines), lines
    assert_server_fine(server, client)  # and the same connection serves the next request


def test_stream_timeout_sends_the_last_chunk(server, client):
    """On a raw socket: the chunked body ends with its zero-length chunk."""
    create(client, "limits.last.chunk")
    address = urllib.parse.urlsplit(server.url)
    started = time.monotonic()
    received = b""
    with socket.create_connection((address.hostname, address.port), timeout=5) as sock:
        sock.sendall(b"GET /event-types/limits.last.chunk/events?stream_timeout=2&batch_flush_timeout=1 HTTP/1.1\r\n"
                     b"Host: 127.0.0.1\r\n\r\n")
        while not received.endswith(b"\r\n0\r\n\r\n") and time.monotonic() - started < 6:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    elapsed = time.monotonic() - started
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding: chunked" in head.lower(), head
    assert body.endswith(b"\r\n0\r\n\r\n"), body[-200:]
    assert 1.8 <= elapsed <= 4.5, elapsed
    assert_server_fine(server, client)


def test_stream_timeout_flushes_pending_events_first(server, client):
    create(client, "limits.pending")
    events = [business_event(f"p{i}") for i in range(3)]
    assert client.post("/event-types/limits.pending/events", json=events).status_code == 200
    started = time.monotonic()
    with client.stream("GET", "/event-types/limits.pending/events?stream_timeout=2&batch_flush_timeout=2"
                       "&batch_limit=10", headers=cursors_header(1)) as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert 1.8 <= time.monotonic() - started <= 4.5
    assert len(lines) == 1, lines
    assert [e["order_id"] for e in json.loads(lines[0])["events"]] == ["p0", "p1", "p2"]


# -- a client that stops reading ---------------------------------------------------

def test_stream_to_a_client_that_stops_reading_keeps_server_memory_bounded(server, client, backlog):
    rss_before = server.rss_kib()
    sock = open_stalled_stream(server, backlog)
    try:
        rss_peak = rss_before
        health_seconds = []
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline:
            time.sleep(0.5)
            asked = time.monotonic()
            assert client.get("/health", timeout=2).status_code == 200
            health_seconds.append(time.monotonic() - asked)
            rss_peak = max(rss_peak, server.rss_kib())
        # The server really is held up by this client: its send queue is full.
        found = server_side_socket(server.pid, sock.getsockname()[1])
        assert found is not None and found[1] > 0, found
        send_queue_bytes = found[1]
    finally:
        close_abruptly(sock)
    growth_kib = rss_peak - rss_before
    print(f"stalled client on {BACKLOG_EVENTS} x 1 KiB: RSS {rss_before >> 10} -> peak {rss_peak >> 10} MiB, "
          f"server send queue {send_queue_bytes >> 10} KiB, /health max {max(health_seconds) * 1000:.0f} ms")
    assert growth_kib < RSS_GROWTH_KIB_MAX, (rss_before, rss_peak)
    assert max(health_seconds) < 1
    assert_server_fine(server, client)


def test_stream_closed_by_a_stalled_client_is_freed(server, client, backlog):
    sock = open_stalled_stream(server, backlog)
    try:
        time.sleep(1.5)  # until the server's sends block
        found = server_side_socket(server.pid, sock.getsockname()[1])
        assert found is not None
        inode, _ = found
        assert holds_socket(server.pid, inode)
    finally:
        close_abruptly(sock)
    deadline = time.monotonic() + 5
    while holds_socket(server.pid, inode) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not holds_socket(server.pid, inode), "the server still holds the closed stream's socket"
    with client.stream("GET", f"/event-types/{backlog}/events?batch_limit=500&stream_limit=1000",
                       headers=cursors_header(1)) as response:
        assert response.status_code == 200
        events = [e for line in response.iter_lines() for e in json.loads(line)["events"]]
    assert [e["order_id"] for e in events] == [f"o{i}" for i in range(1000)]
    assert_server_fine(server, client)


# -- keep-alives --------------------------------------------------------------------

def test_stream_keep_alives_are_sent_per_partition(server, client):
    name = "limits.keep.alive"
    create(client, name, partitions=4)
    assert client.post(f"/event-types/{name}/events", json=[business_event("only")]).status_code == 200
    [busy] = [v["partition"] for v in client.get(f"/event-types/{name}/partitions").json()
              if v["newest_available_offset"] != BEFORE_FIRST]
    started = time.monotonic()
    arrivals: dict[str, list[tuple[float, dict]]] = collections.defaultdict(list)
    with client.stream("GET", f"/event-types/{name}/events?batch_flush_timeout=1&stream_keep_alive_limit=2"
                       "&stream_timeout=10", headers=cursors_header(4)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            batch = json.loads(line)
            arrivals[batch["cursor"]["partition"]].append((time.monotonic() - started, batch))
    elapsed = time.monotonic() - started
    print(f"4 partitions, keep-alive limit 2: ended after {elapsed:.2f} s; "
          + ", ".join(f"{p}: {[round(t, 1) for t, _ in arrivals[p]]}" for p in sorted(arrivals)))
    assert sorted(arrivals) == ["0", "1", "2", "3"]
    for partition, received in arrivals.items():
        batches = [batch for _, batch in received]
        if partition == busy:
            assert [e["order_id"] for e in batches[0]["events"]] == ["only"]
            batches = batches[1:]
            offset = "001-0001-000000000000000000"
        else:
            offset = BEFORE_FIRST
        assert batches == [{"cursor": {"partition": partition, "offset": offset}}] * 2, (partition, received)
        keep_alive_times = [t for t, batch in received if "events" not in batch]
        assert 0.7 <= keep_alive_times[0] and keep_alive_times[1] - keep_alive_times[0] >= 0.7, received
    assert 1.8 <= elapsed <= 4.5


# -- deleting the event type ------------------------------------------------------------

@dataclass
class Reader:
    """A stream read to its end in a thread: its lines, its error if any,
    and when it ended."""

    lines: list[str]
    error: BaseException | None = None
    ended_at: float | None = None
    thread: threading.Thread | None = None


def read_in_thread(url: str, path: str, headers: dict[str, str] | None = None,
                   lines_per_second: float | None = None) -> Reader:
    reader = Reader([])

    def run() -> None:
        try:
            with httpx.Client(base_url=url, trust_env=False, timeout=10) as stream_client:
                with stream_client.stream("GET", path, headers=headers) as response:
                    assert response.status_code == 200, response.read()
                    for line in response.iter_lines():
                        reader.lines.append(line)
                        if lines_per_second:
                            time.sleep(1 / lines_per_second)
        except BaseException as error:  # reported by the test
            reader.error = error
        reader.ended_at = time.monotonic()

    reader.thread = threading.Thread(target=run, daemon=True)
    reader.thread.start()
    return reader


def wait_for_lines(reader: Reader, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while len(reader.lines) < count and reader.ended_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(reader.lines) >= count, (reader.lines[:3], reader.error)


def test_stream_of_a_deleted_event_type_ends_cleanly(server, client):
    name = "limits.deleted"
    create(client, name)
    reader = read_in_thread(server.url, f"/event-types/{name}/events?batch_flush_timeout=1&stream_timeout=30")
    wait_for_lines(reader, 1, 5)  # a keep-alive: the stream is open
    deleted_at = time.monotonic()
    assert client.delete(f"/event-types/{name}").status_code == 200
    reader.thread.join(timeout=10)
    assert reader.ended_at is not None, "the stream went on after its event type was deleted"
    print(f"idle stream of a deleted event type ended {reader.ended_at - deleted_at:.2f} s after the delete")
    assert reader.error is None, repr(reader.error)
    assert reader.ended_at - deleted_at < 3
    assert all(is_keep_alive(line) for line in reader.lines), reader.lines
    assert client.get(f"/event-types/{name}").status_code == 404
    assert_server_fine(server, client)
    # The name is free again, with a new, empty log.
    create(client, name)
    assert client.post(f"/event-types/{name}/events", json=[business_event("again")]).status_code == 200
    with client.stream("GET", f"/event-types/{name}/events?stream_limit=1", headers=cursors_header(1)) as response:
        [line] = list(response.iter_lines())
    batch = json.loads(line)
    assert batch["cursor"]["offset"] == "001-0001-000000000000000000"
    assert [e["order_id"] for e in batch["events"]] == ["again"]


def test_stream_of_an_event_type_deleted_while_it_reads_a_backlog_ends_cleanly(server, client):
    name = "limits.deleted.busy"
    create(client, name)
    publish_backlog(client, name, 5 * PUBLISH_BATCH)
    reader = read_in_thread(server.url, f"/event-types/{name}/events?batch_limit=1&stream_timeout=30",
                            headers=cursors_header(1), lines_per_second=500)
    wait_for_lines(reader, 50, 5)
    deleted_at = time.monotonic()
    response = client.delete(f"/event-types/{name}")
    assert response.status_code == 200, response.text
    reader.thread.join(timeout=15)
    assert reader.ended_at is not None, "the stream went on after its event type was deleted"
    print(f"busy stream of a deleted event type ended {reader.ended_at - deleted_at:.2f} s after the delete, "
          f"after {len(reader.lines)} of {5 * PUBLISH_BATCH} events")
    assert reader.error is None, repr(reader.error)
    offsets = [int(json.loads(line)["cursor"]["offset"].rsplit("-", 1)[1]) for line in reader.lines]
    assert offsets == list(range(len(offsets)))
    assert client.get(f"/event-types/{name}").status_code == 404
    assert_server_fine(server, client)
