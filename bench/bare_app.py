"""A bare Quart-Trio app on Hypercorn's trio worker: the ceiling the HTTP
benchmarks hold `nakadi serve` against.

It does only what no server of events can skip, through the same stack
(Hypercorn's trio worker, Quart-Trio, the default Hypercorn config):

- `POST /event-types/<name>/events` reads the body, parses it with orjson
  and answers 200 with no body, as our publish does: no validation, no
  enrichment, no storage, no fsync.
- `GET /event-types/<name>/events?batch_limit=B&events_per_send=K` streams
  lines built at start-up from `--events-file` (compact JSON events, one a
  line, cycled up to `--stream-events`), `B` events a line, with the same
  bytes our server writes (`broker.batching.batch_lines`). `K` events go
  out in one send, as our stream writes every line of one read in one
  send; `K=0` sends each line by itself. Nothing is built while serving.

Run: `python bench/bare_app.py --port 0 --ready-file F [--events-file E
--stream-events N --batch-limits 1,100 --events-per-send K]`; it writes
its URL to F once it accepts connections and stops at SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import itertools
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

from broker.batching import Batch, batch_lines

STREAM_TYPE = "application/x-json-stream"
REQUEST_BYTES_MAX = 16 * 1024 * 1024


def stream_chunks(events: Sequence[bytes], total: int, batch_limit: int, events_per_send: int) -> list[bytes]:
    """The sends of a stream of `total` events (cycling `events`) from offset
    0 of partition "0": one line each when `events_per_send` is 0, else the
    lines of `events_per_send` events joined."""
    assert events and total >= 1 and batch_limit >= 1 and events_per_send >= 0
    cycle = itertools.islice(itertools.cycle(events), total)
    lines = []
    for first in range(0, total, batch_limit):
        batch = list(itertools.islice(cycle, batch_limit))
        lines.append(batch_lines([Batch("0", first + len(batch) - 1, batch)]))
    if not events_per_send:
        return lines
    lines_per_send = max(1, events_per_send // batch_limit)
    return [b"".join(lines[i:i + lines_per_send]) for i in range(0, len(lines), lines_per_send)]


def create_app(streams: dict[tuple[int, int], list[bytes]]) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config.update(MAX_CONTENT_LENGTH=REQUEST_BYTES_MAX, RESPONSE_TIMEOUT=None, BODY_TIMEOUT=60)

    @app.post("/event-types/<name>/events")
    async def publish(name: str) -> Response:
        orjson.loads(await request.get_data(cache=False))
        response = Response(b"", status=200)
        del response.headers["Content-Type"]
        return response

    @app.get("/event-types/<name>/events")
    async def stream(name: str) -> Response:
        key = (int(request.args.get("batch_limit", "1")), int(request.args.get("events_per_send", "0")))
        chunks = streams.get(key)
        if chunks is None:
            return Response(f"no stream built for batch_limit, events_per_send = {key}\n", status=404)

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk
        response = Response(body(), content_type=STREAM_TYPE)
        response.timeout = None
        return response

    return app


async def run(app: QuartTrio, port: int, ready_file: Path) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async def stop() -> None:
            async for _ in signals:
                return
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(partial(serve, app, config, shutdown_trigger=stop))
            temporary = ready_file.with_name(ready_file.name + ".tmp")
            temporary.write_text(urls[0] + "\n")
            temporary.replace(ready_file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--events-file", type=Path, help="events to stream, compact JSON, one a line")
    parser.add_argument("--stream-events", type=int, default=0, help="events in each built stream")
    parser.add_argument("--batch-limits", default="1,100", help="batch limits to build streams for")
    parser.add_argument("--events-per-send", type=int, default=1000, help="events per send when coalescing")
    args = parser.parse_args(argv)
    streams: dict[tuple[int, int], list[bytes]] = {}
    if args.events_file is not None and args.stream_events > 0:
        events = [line for line in args.events_file.read_bytes().split(b"\n") if line]
        for batch_limit in (int(b) for b in args.batch_limits.split(",")):
            for per_send in (0, args.events_per_send):
                streams[(batch_limit, per_send)] = stream_chunks(events, args.stream_events, batch_limit, per_send)
    trio.run(run, create_app(streams), args.port, args.ready_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
