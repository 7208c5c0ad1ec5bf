"""Peer benchmark: nakadi against Redis Streams, the local event log a
developer might pick instead.

What it measures, with the events of `publish_bench.py` (about 300 bytes
of JSON each):

- publishing in batches of 1 and 100, durable: ours through `nakadi serve`
  (a 1-partition event type, validated, enriched, fdatasynced before the
  200), Redis with one `XADD` per event, a batch's XADDs pipelined in one
  round trip, with AOF `appendfsync always` (fsynced before the replies:
  our durability) and, for reference, `everysec`;
- reading back a backlog: our low-level stream (`batch_limit=100`) against
  `XREAD COUNT 100` in a loop, each reply parsed.

How: Debian's `redis-server` is started on 127.0.0.1 (a free port, a fresh
directory, no RDB snapshots) by the benchmark; without it the benchmark
says so and exits 0. The servers are pinned to one CPU and the load comes
from a second process on another (`_client` mode: trio, the Redis protocol
written and read by hand on 8 connections, as `publish_bench.py` writes
HTTP), so each side has its own core and the clients are built alike.
Ours and Redis alternate round by round; medians with min and max.

Bars (issue 9): ours ahead of Redis with `appendfsync always` for batches
of 100 (ratio >= 1), and the stream ahead of XREAD COUNT 100. Batches of
1 and `everysec` are informational, and so is `bench/bare_app.py` (the
same Hypercorn + Quart-Trio stack that only parses the body) against
Redis `always`: the ceiling of any server on that stack. A failed bar prints FAIL; the exit
status stays 0.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from measure import Comparison, alternate
from publish_bench import DEFAULT as PUBLISH_LIMITS
from publish_bench import QUICK as PUBLISH_QUICK
from publish_bench import (
    Cpus,
    PublishSample,
    Server,
    Window,
    _pinned,
    create_event_type,
    parse_args,
    print_machine,
    print_publish,
    print_table,
    publish_run,
    run_client,
    running,
    start_bare,
    start_ours,
    work_directory,
    write_bodies,
)
from stream_bench import DEFAULT as STREAM_DEFAULT
from stream_bench import EVENT_TYPE as STREAM_EVENT_TYPE
from stream_bench import QUICK as STREAM_QUICK
from stream_bench import StreamSample, print_stream, publish_backlog, stream_run

START_SECONDS = 20
STREAM_KEY = b"orders"
READ_COUNT = 100
RECEIVE_BYTES = 1024 * 1024
PUBLISH_EVENT_TYPE = "bench.orders.p1"


def start_redis(workdir: Path, fsync: str, cpus: Cpus) -> Server:
    """redis-server on a free port of 127.0.0.1 with AOF and `appendfsync fsync`."""
    executable = shutil.which("redis-server")
    assert executable is not None
    directory = workdir / f"redis-{fsync}"
    directory.mkdir()
    with socket.socket() as probe:  # a free port (redis-server cannot bind port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [executable, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory),
               "--appendonly", "yes", "--appendfsync", fsync, "--save", "", "--daemonize", "no",
               "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=_pinned(cpus.server))
    redis = Server(f"redis {fsync}", process, f"redis://127.0.0.1:{port}", directory / "redis.log")
    deadline = time.monotonic() + START_SECONDS
    while not _answers_ping(redis):
        if process.poll() is not None or time.monotonic() > deadline:
            redis.stop()
            raise RuntimeError(f"redis-server did not start: {(directory / 'redis.log').read_text()[-2000:]}")
        time.sleep(0.05)
    return redis


def _answers_ping(redis: Server) -> bool:
    try:
        with socket.create_connection(redis.address, timeout=1) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def redis_publish_run(redis: Server, bodies: Path, batch: int, cpus: Cpus, limits: Any) -> PublishSample:
    host, port = redis.address
    spec = {"mode": "publish", "host": host, "port": port, "bodies_file": str(bodies),
            "connections": limits.connections, "warm_s": limits.warm_s, "window_s": limits.window_s,
            "requests_max": limits.requests_max}
    result = run_client(Path(__file__), spec, cpus, limits.warm_s + limits.window_s)
    return PublishSample.from_client(result, batch)


def redis_fill(redis: Server, root: Path, events: int, cpus: Cpus) -> None:
    """Put `events` events into the stream (pipelines of 1000), unmeasured."""
    bodies = root / "redis-backlog.jsonl"
    write_bodies(bodies, 1000, 8)
    host, port = redis.address
    spec = {"mode": "publish", "host": host, "port": port, "bodies_file": str(bodies),
            "connections": 1, "warm_s": 0.0, "window_s": 900.0, "requests_max": events // 1000}
    run_client(Path(__file__), spec, cpus, 900.0)


def redis_read_run(redis: Server, events: int, cpus: Cpus, seconds_max: float) -> StreamSample:
    host, port = redis.address
    spec = {"mode": "read", "host": host, "port": port, "events": events, "seconds_max": seconds_max}
    return StreamSample(**run_client(Path(__file__), spec, cpus, seconds_max))


def bench(root: Path, quick: bool, rounds: int | None, cpus: Cpus) -> list[Comparison[Any]]:
    publish_limits = PUBLISH_QUICK if quick else PUBLISH_LIMITS
    stream_limits = STREAM_QUICK if quick else dataclasses.replace(STREAM_DEFAULT, backlog=200_000)
    if rounds is not None:
        publish_limits = dataclasses.replace(publish_limits, rounds=rounds)
        stream_limits = dataclasses.replace(stream_limits, rounds=rounds)
    results: list[Comparison[Any]] = []
    ours = start_ours(root, cpus)
    bare = start_bare(root, cpus)
    always = start_redis(root, "always", cpus)
    everysec = start_redis(root, "everysec", cpus)
    with running(ours, bare, always, everysec):
        create_event_type(ours, PUBLISH_EVENT_TYPE, 1)
        print(f"servers: ours {ours.url}, redis always {always.url}, redis everysec {everysec.url}\n", flush=True)
        for batch, bar in ((1, None), (100, 1.0)):
            bodies = root / f"bodies-{batch}.jsonl"
            write_bodies(bodies, batch, max(publish_limits.bodies, 256 // batch))
            ours_samples, always_samples, everysec_samples, bare_samples = alternate(publish_limits.rounds, [
                lambda: publish_run(ours, PUBLISH_EVENT_TYPE, bodies, batch, publish_limits, cpus),
                lambda: redis_publish_run(always, bodies, batch, cpus, publish_limits),
                lambda: redis_publish_run(everysec, bodies, batch, cpus, publish_limits),
                lambda: publish_run(bare, PUBLISH_EVENT_TYPE, bodies, batch, publish_limits, cpus)])
            rows = [Comparison(f"publish batch={batch} vs redis always", ours_samples, always_samples, bar),
                    Comparison(f"publish batch={batch} vs redis everysec", ours_samples, everysec_samples),
                    Comparison(f"bare endpoint batch={batch} vs redis always",
                               bare_samples, always_samples)]
            for comparison in rows:
                print_publish(comparison, "redis")
            results += rows
        create_event_type(ours, STREAM_EVENT_TYPE, 1)
        publish_backlog(root, ours, stream_limits, cpus)
        redis_fill(everysec, root, stream_limits.backlog, cpus)
        ours_reads, redis_reads = alternate(stream_limits.rounds, [
            lambda: stream_run(ours, READ_COUNT, None, stream_limits, cpus),
            lambda: redis_read_run(everysec, stream_limits.backlog, cpus, stream_limits.seconds_max)])
        comparison = Comparison(f"read backlog vs XREAD COUNT {READ_COUNT}", ours_reads, redis_reads, 1.0)
        print_stream(comparison, "redis")
        results.append(comparison)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (Debian: apt-get install redis-server): no peer figures this run")
        return 0
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, "publish as publish_bench.py, reads as stream_bench.py (200,000 events)")
    with work_directory() as root:
        results = bench(root, args.quick, args.rounds, cpus)
    print_table(results, "redis")
    return 0


# -- the load client (a separate process) ---------------------------------------

def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    return _publish(spec) if spec["mode"] == "publish" else _read(spec)


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def _publish(spec: dict[str, Any]) -> dict[str, Any]:
    """As `publish_bench.client_main`, a batch being one pipeline of XADDs."""
    import trio

    batches = [orjson.loads(b) for b in Path(spec["bodies_file"]).read_bytes().split(b"\n") if b]
    pipelines = [(b"".join(_command(b"XADD", STREAM_KEY, b"*", b"event", orjson.dumps(e)) for e in batch),
                  len(batch)) for batch in batches]
    connections = spec["connections"]
    tickets = warm_tickets = spec["requests_max"]
    errors = 0
    window = Window(spec["warm_s"], spec["window_s"])

    async def connection(k: int) -> None:
        nonlocal tickets, warm_tickets, errors
        stream = await trio.open_tcp_stream(spec["host"], spec["port"])
        reader = Replies(stream)
        async with stream:
            i = k
            while (now := time.perf_counter()) < window.closes:
                # Warm-up and window each have `requests_max` pipelines: a
                # fast server must not use the window's up while warming.
                if now < window.opens:
                    if warm_tickets <= 0:
                        await trio.sleep(window.opens - now)
                        continue
                    warm_tickets -= 1
                elif tickets > 0:
                    tickets -= 1
                else:
                    break
                data, count = pipelines[i % len(pipelines)]
                sent = time.perf_counter()
                await stream.send_all(data)
                for _ in range(count):
                    if (await reader.reply()).startswith(b"-"):
                        errors += 1
                i += connections
                window.completed(sent)

    async def load() -> None:
        with trio.fail_after(spec["warm_s"] + spec["window_s"] + 15):
            async with trio.open_nursery() as nursery:
                for k in range(connections):
                    nursery.start_soon(connection, k)

    trio.run(load)
    return window.summary({"error": errors} if errors else {})


def _read(spec: dict[str, Any]) -> dict[str, Any]:
    """XREAD COUNT 100 from the stream's start until `events` arrived or
    `seconds_max` passed, each reply parsed into its entries."""
    events = nbytes = 0
    last_id = b"0-0"
    with socket.create_connection((spec["host"], spec["port"]), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Replies(sock)
        cpu_start, start = time.process_time(), time.perf_counter()
        deadline = start + spec["seconds_max"]
        while events < spec["events"] and time.perf_counter() < deadline:
            sock.sendall(_command(b"XREAD", b"COUNT", b"%d" % READ_COUNT, b"STREAMS", STREAM_KEY, last_id))
            reply = reader.value()
            if reply is None:
                break
            entries = reply[0][1]
            events += len(entries)
            nbytes += sum(len(fields[1]) for _, fields in entries)
            last_id = entries[-1][0]
        seconds = time.perf_counter() - start
        client_cpu = (time.process_time() - cpu_start) / seconds
    return {"events": events, "nbytes": nbytes, "seconds": seconds, "ended": events >= spec["events"],
            "client_cpu": client_cpu}


class Replies:
    """Redis protocol replies off a trio stream (`reply`: one reply's raw
    bytes) or a blocking socket (`value`: one reply parsed)."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._buffer = bytearray()
        self._at = 0

    async def _fill_async(self) -> None:
        data = await self._source.receive_some(RECEIVE_BYTES)
        if not data:
            raise ConnectionError("redis closed the connection")
        self._compact()
        self._buffer += data

    def _fill(self) -> None:
        data = self._source.recv(RECEIVE_BYTES)
        if not data:
            raise ConnectionError("redis closed the connection")
        self._compact()
        self._buffer += data

    def _compact(self) -> None:
        del self._buffer[:self._at]
        self._at = 0

    async def reply(self) -> bytes:
        """One simple reply (a status, error, integer or bulk string), raw."""
        while (end := self._buffer.find(b"\r\n", self._at)) < 0:
            await self._fill_async()
        line = bytes(self._buffer[self._at:end])
        self._at = end + 2
        if line[:1] == b"$" and line != b"$-1":
            size = int(line[1:]) + 2
            while len(self._buffer) - self._at < size:
                await self._fill_async()
            self._at += size
        return line

    def value(self) -> Any:
        """One reply, parsed (arrays as lists, bulk strings as bytes)."""
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.value() for _ in range(count)]
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self._buffer) - self._at < size + 2:
                self._fill()
            data = bytes(self._buffer[self._at:self._at + size])
            self._at += size + 2
            return data
        if kind == b"-":
            raise RuntimeError(f"redis: {rest.decode()}")
        return rest

    def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n", self._at)) < 0:
            self._fill()
        line = bytes(self._buffer[self._at:end])
        self._at = end + 2
        return line


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
