"""HTTP publish benchmark: durable publishing through `nakadi serve` against
a bare Quart-Trio endpoint that only parses the same bodies.

What it measures: POSTs of batches of 1, 100 and 1000 business events of
about 300 bytes (a realistic schema, validated; hash partitioning on
`order_id`; metadata enrichment) to an event type of 1 partition and to one
of 4, every 200 answered only after the fdatasync (durability `always`,
the default). Beside each figure, the same bodies POSTed in the same way to
`bench/bare_app.py`, which parses them with orjson and answers 200: the
ceiling of Hypercorn's trio worker and Quart on this machine.

How: both servers run for the whole benchmark, pinned to one CPU (worker
threads and all); the load comes from a second process (`_client` mode of
this script: trio, raw HTTP/1.1 on 8 keep-alive connections, pre-built
requests), pinned to another CPU, so each side has its own core; the
client's CPU share is printed, to show it is not the limit. A run warms up
for a moment, then counts the requests completed in a fixed window:
events/s, and the p50 and p99 of request latency (send to whole
response). `--no-pin` leaves scheduling to the kernel. Ours and
the bare endpoint alternate round by round, which one goes first flipping
every round; we report the median with min and max, and ratios as the
median of per-round ratios. Every run is capped in requests and time.

Bars (SPEC section 6): events/s at least 0.75x the bare endpoint for single
events, 0.5x for batches of 100 (aim 0.7x), 0.45x for batches of 1000;
applied to 1 and to 4 partitions alike. A failed bar prints FAIL; the exit
status stays 0.

`stream_bench.py` reuses this harness (servers, client processes, events,
reporting).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import http.client
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from measure import Comparison, alternate, bars_line, cpu_model, record, spread

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
TEMP_PARENT = REPO / ".bench-tmp"
NAKADI = Path(sys.executable).with_name("nakadi")
START_SECONDS = 60
STOP_SECONDS = 10
CLIENT_GRACE_SECONDS = 30
RECONNECTS_MAX = 10_000

# -- events -----------------------------------------------------------------

ORDER_SCHEMA = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^ORD-[0-9]{8}-[0-9a-f]{6}$"},
        "customer_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "status": {"type": "string", "enum": ["created", "paid", "shipped", "cancelled"]},
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "CHF"]},
        "items": {
            "type": "array", "minItems": 1, "maxItems": 100,
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1},
                               "price": {"type": "integer", "minimum": 0}},
                "required": ["sku", "quantity", "price"],
            },
        },
        "shipping": {
            "type": "object",
            "properties": {"country": {"type": "string", "minLength": 2, "maxLength": 2},
                           "city": {"type": "string"}},
            "required": ["country", "city"],
        },
    },
    "required": ["order_id", "customer_id", "status", "amount", "currency", "items"],
}


def event_type_body(name: str, partitions: int) -> dict:
    """A business event type of `partitions` partitions, hash-partitioned on `order_id`."""
    return {"name": name, "owning_application": "bench", "category": "business",
            "enrichment_strategies": ["metadata_enrichment"], "partition_strategy": "hash",
            "partition_key_fields": ["order_id"],
            "default_statistic": {"messages_per_minute": 60000, "message_size": 300,
                                  "read_parallelism": partitions, "write_parallelism": partitions},
            "schema": {"type": "json_schema", "schema": json.dumps(ORDER_SCHEMA)}}


def order_event(rng: random.Random, number: int) -> dict:
    """An order event of about 300 bytes of compact JSON, as a producer sends it."""
    price = rng.randrange(100, 20000)
    return {
        "order_id": f"ORD-{number:08d}-{rng.getrandbits(24):06x}",
        "customer_id": f"C{rng.randrange(10**7):07d}",
        "status": "created",
        "amount": 2 * price,
        "currency": "EUR",
        "items": [{"sku": f"SKU-{rng.randrange(10**6):06d}", "quantity": 2, "price": price}],
        "shipping": {"country": "DE", "city": "Berlin"},
        "metadata": {"eid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                     "occurred_at": "2024-05-01T10:00:00Z"},
    }


def write_bodies(path: Path, batch: int, bodies: int, seed: int = 1) -> int:
    """`bodies` distinct JSON arrays of `batch` events, one a line; mean event bytes."""
    rng = random.Random(seed)
    number = 0
    event_bytes = 0
    with open(path, "wb") as f:
        for _ in range(bodies):
            events = []
            for _ in range(batch):
                events.append(order_event(rng, number))
                number += 1
            body = orjson.dumps(events)
            event_bytes += len(body) - 1 - batch  # brackets and commas
            f.write(body + b"\n")
    return event_bytes // (batch * bodies)


# -- processes --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Cpus:
    """Which CPUs the servers and the load client run on (None: anywhere)."""

    server: frozenset[int] | None
    client: frozenset[int] | None

    @classmethod
    def choose(cls, pin: bool) -> Cpus:
        usable = sorted(os.sched_getaffinity(0))
        if not pin or len(usable) < 2:
            return cls(None, None)
        return cls(frozenset(usable[:1]), frozenset(usable[1:2]))

    def describe(self) -> str:
        if self.server is None:
            return "not pinned"
        return f"server on CPU {sorted(self.server)}, load client on CPU {sorted(self.client or ())}"


def _pinned(cpus: frozenset[int] | None) -> Callable[[], None] | None:
    # Affinity set before exec is inherited by every thread the child starts.
    return None if cpus is None else lambda: os.sched_setaffinity(0, cpus)


@dataclasses.dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None, self.url
        return parts.hostname, parts.port

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)


def own_environment() -> dict[str, str]:
    """This environment without NAKADI_ variables, which would configure the server under test."""
    return {name: value for name, value in os.environ.items() if not name.startswith("NAKADI_")}


def _start(name: str, command: list[str], workdir: Path, cpus: frozenset[int] | None) -> Server:
    """Start a server that writes its URL to a ready file; wait (bounded) for it."""
    ready = workdir / f"{name}.ready"
    ready.unlink(missing_ok=True)  # left by an earlier start in the same directory
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:  # a file, never a pipe nobody drains
        process = subprocess.Popen([*command, "--ready-file", str(ready)], cwd=workdir, env=own_environment(),
                                   stdout=log, stderr=subprocess.STDOUT, preexec_fn=_pinned(cpus))
    deadline = time.monotonic() + START_SECONDS
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"{name} did not start: {log_path.read_text(errors='replace')[-2000:]}")
        time.sleep(0.02)
    return Server(name, process, ready.read_text().strip(), log_path)


def start_ours(workdir: Path, cpus: Cpus, data_dir: Path | None = None) -> Server:
    """`nakadi serve` on a free port, default configuration, with `data_dir`
    (default: a `data` directory in `workdir`, fresh on first use)."""
    # The work directory holds no nakadi.toml, so the defaults apply (durability `always`).
    return _start("nakadi", [str(NAKADI), "serve", "--host", "127.0.0.1", "--port", "0",
                             "--data-dir", str(data_dir or workdir / "data")], workdir, cpus.server)


def start_bare(workdir: Path, cpus: Cpus, *args: str) -> Server:
    return _start("bare", [sys.executable, str(BENCH / "bare_app.py"), "--port", "0", *args], workdir, cpus.server)


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    try:
        yield
    finally:
        for server in servers:
            server.stop()


def http_request(server: Server, method: str, path: str, body: object = None,
                 headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request for setting up (not measured); (status, body)."""
    connection = http.client.HTTPConnection(*server.address, timeout=60)
    try:
        data = None if body is None else orjson.dumps(body)
        connection.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def create_event_type(server: Server, name: str, partitions: int) -> None:
    status, body = http_request(server, "POST", "/event-types", event_type_body(name, partitions))
    if status != 201:
        raise RuntimeError(f"creating {name} answered {status}: {body[:500]!r}")


def run_client(script: Path, spec: dict[str, Any], cpus: Cpus, timeout_s: float) -> dict[str, Any]:
    """Run `script _client SPEC` in its own process; its JSON result."""
    result = subprocess.run([sys.executable, str(script), "_client", json.dumps(spec)], capture_output=True,
                            timeout=timeout_s + CLIENT_GRACE_SECONDS, preexec_fn=_pinned(cpus.client))
    if result.returncode != 0:
        raise RuntimeError(f"the load client failed ({result.returncode}): {result.stderr.decode()[-3000:]}")
    return json.loads(result.stdout)


# -- comparing --------------------------------------------------------------

def print_table(results: Sequence[Comparison[Any]], ceiling_label: str) -> None:
    header = (f"{'measurement':<44} {'ours events/s med (min-max)':>32} "
              f"{ceiling_label + ' events/s med (min-max)':>32} {'ratio (min-max)':>17}  bar")
    print("\n" + header + "\n" + "-" * len(header))
    for c in results:
        ours = spread([s.events_per_s for s in c.ours], ",.0f")
        ceiling = spread([s.events_per_s for s in c.ceiling], ",.0f")
        print(f"{c.name:<44} {ours:>32} {ceiling:>32} {spread(c.ratios, '.2f'):>17}  {c.verdict}")
        record(c.name, f"{ours} events/s", f"{ceiling} events/s ({ceiling_label})", spread(c.ratios, ".2f"),
               c.verdict)
    print("\n" + bars_line(results))


def print_machine(cpus: Cpus, limits: object) -> None:
    print(f"cpu: {cpu_model()}, {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); {cpus.describe()}")
    print(f"python: {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    print(f"limits: {limits}\n", flush=True)


@contextlib.contextmanager
def work_directory() -> Iterator[Path]:
    """A fresh directory under `.bench-tmp`, removed afterwards (and `.bench-tmp` if empty)."""
    TEMP_PARENT.mkdir(exist_ok=True)
    root = Path(tempfile.mkdtemp(dir=TEMP_PARENT))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(OSError):
            TEMP_PARENT.rmdir()  # another run may still use it


def parse_args(doc: str, argv: Sequence[str] | None, extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, help="measured rounds per figure")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round: a smoke run")
    parser.add_argument("--no-pin", action="store_true", help="do not pin servers and client to CPUs")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


# -- the publish measurements -----------------------------------------------

@dataclasses.dataclass(frozen=True)
class Limits:
    """How long and how big each measurement may get."""

    rounds: int
    connections: int
    warm_s: float
    window_s: float
    requests_max: int
    bodies: int


DEFAULT = Limits(rounds=7, connections=8, warm_s=0.5, window_s=3.0, requests_max=100_000, bodies=16)
QUICK = Limits(rounds=1, connections=8, warm_s=0.1, window_s=0.3, requests_max=2_000, bodies=2)

# (batch size, partitions, bar)
CASES = [(1, 1, 0.75), (100, 1, 0.5), (1000, 1, 0.45), (1, 4, 0.75), (100, 4, 0.5), (1000, 4, 0.45)]


@dataclasses.dataclass(frozen=True)
class PublishSample:
    """One run: requests (and their events) completed in `seconds`, latencies in ms."""

    requests: int
    events: int
    seconds: float
    p50_ms: float
    p99_ms: float
    failures: dict[str, int]
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.events_per_s

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @classmethod
    def from_client(cls, result: dict[str, Any], batch: int) -> PublishSample:
        statuses = {s: n for s, n in result["statuses"].items() if s != "200"}
        return cls(result["requests"], result["requests"] * batch, result["seconds"], result["p50_ms"],
                   result["p99_ms"], statuses, result["client_cpu"])


def publish_spec(server: Server, event_type: str, bodies_file: Path, limits: Limits, *,
                 warm_s: float | None = None, window_s: float | None = None,
                 requests_max: int | None = None) -> dict[str, Any]:
    host, port = server.address
    return {"host": host, "port": port, "path": f"/event-types/{event_type}/events", "bodies_file": str(bodies_file),
            "connections": limits.connections, "warm_s": limits.warm_s if warm_s is None else warm_s,
            "window_s": limits.window_s if window_s is None else window_s,
            "requests_max": limits.requests_max if requests_max is None else requests_max}


def publish_run(server: Server, event_type: str, bodies_file: Path, batch: int, limits: Limits, cpus: Cpus
                ) -> PublishSample:
    spec = publish_spec(server, event_type, bodies_file, limits)
    sample = PublishSample.from_client(run_client(Path(__file__), spec, cpus, limits.warm_s + limits.window_s),
                                       batch)
    if sample.failures:
        print(f"    !! {server.name}: answers other than 200: {sample.failures}", flush=True)
    return sample


def print_publish(c: Comparison[PublishSample], ceiling: str = "bare") -> None:
    def side(samples: Sequence[PublishSample]) -> str:
        return (f"{spread([s.events_per_s for s in samples], ',.0f')} events/s  "
                f"{spread([s.requests / s.seconds for s in samples], ',.0f')} req/s  "
                f"p50 {spread([s.p50_ms for s in samples], '.2f')} ms  "
                f"p99 {spread([s.p99_ms for s in samples], '.2f')} ms  "
                f"client CPU {spread([100 * s.client_cpu for s in samples], '.0f')}%")
    print(c.name)
    print(f"    ours : {side(c.ours)}")
    print(f"    {ceiling:<5}: {side(c.ceiling)}")
    print(f"    ratio: {spread(c.ratios, '.2f')}  {c.verdict}", flush=True)


def print_latency_table(results: Sequence[Comparison[PublishSample]]) -> None:
    columns = ("ours p50", "bare p50", "ours p99", "bare p99")
    header = f"{'request latency, ms':<44} " + " ".join(f"{column:>24}" for column in columns)
    print("\n" + header + "\n" + "-" * len(header))
    for c in results:
        cells = [spread([s.p50_ms for s in c.ours], ".2f"), spread([s.p50_ms for s in c.ceiling], ".2f"),
                 spread([s.p99_ms for s in c.ours], ".2f"), spread([s.p99_ms for s in c.ceiling], ".2f")]
        print(f"{c.name:<44} " + " ".join(f"{cell:>24}" for cell in cells))


def bench_publish(root: Path, limits: Limits, cpus: Cpus) -> list[Comparison[PublishSample]]:
    bodies: dict[int, Path] = {}
    for batch in sorted({case[0] for case in CASES}):
        bodies[batch] = root / f"bodies-{batch}.jsonl"
        # Enough distinct bodies that single events spread over partitions too.
        size = write_bodies(bodies[batch], batch, max(limits.bodies, 256 // batch))
        print(f"bodies of {batch} event(s): {size} bytes per event on average")
    ours = start_ours(root, cpus)
    bare = start_bare(root, cpus)
    results = []
    with running(ours, bare):
        for partitions in sorted({case[1] for case in CASES}):
            create_event_type(ours, f"bench.orders.p{partitions}", partitions)
        print(f"servers: ours {ours.url} (pid {ours.process.pid}), bare {bare.url} (pid {bare.process.pid})\n",
              flush=True)
        for batch, partitions, bar in CASES:
            event_type = f"bench.orders.p{partitions}"
            ours_samples, bare_samples = alternate(limits.rounds, [
                lambda: publish_run(ours, event_type, bodies[batch], batch, limits, cpus),
                lambda: publish_run(bare, event_type, bodies[batch], batch, limits, cpus)])
            comparison = Comparison(f"publish batch={batch} partitions={partitions}", ours_samples, bare_samples, bar)
            print_publish(comparison)
            results.append(comparison)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__ or "", argv)
    limits = QUICK if args.quick else DEFAULT
    if args.rounds is not None:
        limits = dataclasses.replace(limits, rounds=args.rounds)
    cpus = Cpus.choose(not args.no_pin)
    print_machine(cpus, limits)
    with work_directory() as root:
        results = bench_publish(root, limits, cpus)
    print_table(results, "bare")
    print_latency_table(results)
    return 0


# -- the load client (a separate process) -----------------------------------

def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    """POST the bodies round-robin on `connections` keep-alive connections:
    warm up for `warm_s`, then count what completes in `window_s` (or until
    `requests_max` requests, if sooner)."""
    import trio

    host, port, path = spec["host"], spec["port"], spec["path"]
    bodies = [b for b in Path(spec["bodies_file"]).read_bytes().split(b"\n") if b]
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: %d\r\n\r\n").encode()
    requests = [head % len(body) + body for body in bodies]
    connections = spec["connections"]
    tickets = spec["requests_max"]
    statuses: dict[str, int] = {}
    window = Window(spec["warm_s"], spec["window_s"])

    async def connection(k: int) -> None:
        nonlocal tickets
        i = k
        for _ in range(RECONNECTS_MAX):
            # Hypercorn closes a connection after `keep_alive_max_requests` (1000).
            stream = await trio.open_tcp_stream(host, port)
            reader = ResponseReader(stream)
            async with stream:
                closing = False
                while not closing and tickets > 0 and time.perf_counter() < window.closes:
                    tickets -= 1
                    sent = time.perf_counter()
                    await stream.send_all(requests[i % len(requests)])
                    status, closing = await reader.read_response()
                    i += connections
                    if window.completed(sent):
                        statuses[str(status)] = statuses.get(str(status), 0) + 1
                if not closing:
                    return

    async def load() -> None:
        with trio.fail_after(spec["warm_s"] + spec["window_s"] + CLIENT_GRACE_SECONDS / 2):
            async with trio.open_nursery() as nursery:
                for k in range(connections):
                    nursery.start_soon(connection, k)

    trio.run(load)
    return window.summary(statuses)


class Window:
    """A load client's measured window: it opens `warm_s` after the client
    starts and closes `window_s` later; what completes in it counts."""

    def __init__(self, warm_s: float, window_s: float) -> None:
        self.start = time.perf_counter()
        self.opens = self.start + warm_s
        self.closes = self.opens + window_s
        self._completions: list[tuple[float, float]] = []  # (time done, latency)
        self._cpu_marks: list[float] = []  # the client's CPU time at the first completion and at the end

    def completed(self, sent: float) -> bool:
        """Count a request sent at `sent` and answered now; whether it falls in the window."""
        done = time.perf_counter()
        if done < self.opens:
            return False
        if not self._cpu_marks:
            self._cpu_marks.append(time.process_time())
        self._completions.append((done, done - sent))
        return True

    def summary(self, statuses: dict[str, int]) -> dict[str, Any]:
        """The client's result: requests, seconds, latencies and CPU share over the window."""
        if not self._completions:
            raise RuntimeError("no request completed in the window")
        self._cpu_marks.append(time.process_time())
        end = min(self.closes, max(done for done, _ in self._completions))
        measured = sorted(latency for done, latency in self._completions if done <= end)
        seconds = end - self.opens
        if not measured or seconds <= 0:
            raise RuntimeError("no request completed in the window")
        return {"requests": len(measured), "seconds": seconds, "statuses": statuses,
                "client_cpu": (self._cpu_marks[-1] - self._cpu_marks[0]) / (time.perf_counter() - self.opens),
                "p50_ms": 1000 * measured[len(measured) // 2],
                "p99_ms": 1000 * measured[min(len(measured) - 1, int(len(measured) * 0.99))]}


class ResponseReader:
    """Reads HTTP/1.1 responses (Content-Length or chunked) off a trio stream."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def _fill(self) -> None:
        data = await self._stream.receive_some(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    async def _line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            await self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[:end + 2]
        return line

    async def _skip(self, count: int) -> None:
        while len(self._buffer) < count:
            await self._fill()
        del self._buffer[:count]

    async def read_response(self) -> tuple[int, bool]:
        """Read one whole response; its status, and whether the server closes the connection after it."""
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            await self._fill()
        lines = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
        del self._buffer[:end + 4]
        status = int(lines[0].split(" ", 2)[1])
        fields = (line.partition(":") for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        if "content-length" in headers:
            await self._skip(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while size := int((await self._line()).split(b";")[0], 16):
                await self._skip(size + 2)
            while await self._line():  # trailers, up to the empty line
                pass
        return status, headers.get("connection", "").lower() == "close"


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "_client":
        print(json.dumps(client_main(json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit(main())
