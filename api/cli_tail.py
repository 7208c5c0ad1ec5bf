"""`nakadi tail TYPE`: print an event type's events from the low-level stream.

The start cursors come from `GET /event-types/{name}/partitions` (BEGIN,
the newest offset for END, or the offset given) and are sent as
`X-Nakadi-Cursors`. Without `--follow` the same endpoint, asked with those
cursors, says how many events each partition holds after them; the stream
is read until that many came from each, so the command stops at the end
the log had when it started. With `--follow` it reads until interrupted,
reconnecting from the last cursors when the server ends a stream.

One event per line as compact JSON; indented when stdout is a terminal
(unless `--format json`).
"""

from __future__ import annotations

import json
from typing import Any

import click

from .cli_client import Api, CliError, client_options, is_terminal, segment

BATCH_LIMIT = 100
BATCH_FLUSH_TIMEOUT_S = 1
RECONNECTS_WITHOUT_PROGRESS_MAX = 3


@click.command()
@click.argument("event_type")
@click.option("--from", "start", metavar="BEGIN|END|OFFSET",
              help="Where to start in every partition  [default: BEGIN, or END with --follow]")
@click.option("--partition", "partitions", multiple=True, help="Only this partition (repeatable)")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted")
@client_options
def tail(api: Api, event_type: str, start: str | None, partitions: tuple[str, ...], follow: bool) -> None:
    """Print the events of EVENT_TYPE, one per line."""
    base = f"/event-types/{segment(event_type)}"
    cursors = start_cursors(api.get_json(f"{base}/partitions"), start or ("END" if follow else "BEGIN"),
                            partitions)
    remaining = None if follow else _unconsumed(api, base, cursors)
    pretty = is_terminal() and not api.json_output
    try:
        _read(api, base, cursors, remaining, pretty)
    except KeyboardInterrupt:
        # Interrupting is how --follow is meant to end; elsewhere it is 130, as in a shell.
        raise SystemExit(0 if follow else 130) from None


def start_cursors(listed: list[dict], start: str, only: tuple[str, ...]) -> dict[str, str]:
    """The start offset of each chosen partition, in the server's order."""
    known = [p["partition"] for p in listed]
    for partition in only:
        if partition not in known:
            raise CliError(f"no partition {partition!r}; the partitions are {', '.join(known)}")
    chosen = [p for p in listed if not only or p["partition"] in only]
    symbol = start.upper()
    if symbol == "BEGIN":
        return {p["partition"]: "BEGIN" for p in chosen}
    if symbol == "END":
        return {p["partition"]: p["newest_available_offset"] for p in chosen}
    return {p["partition"]: start for p in chosen}


def _unconsumed(api: Api, base: str, cursors: dict[str, str]) -> dict[str, int]:
    listed = api.get_json(f"{base}/partitions", params={"cursors": _cursor_json(cursors)})
    return {p["partition"]: int(p.get("unconsumed_events", 0)) for p in listed if p["partition"] in cursors}


def _cursor_json(cursors: dict[str, str]) -> str:
    return json.dumps([{"partition": partition, "offset": offset} for partition, offset in cursors.items()])


def _read(api: Api, base: str, cursors: dict[str, str], remaining: dict[str, int] | None, pretty: bool) -> None:
    """Stream from `cursors`, moving them on, until `remaining` is all zero
    (never when it is None)."""
    idle_reconnects = 0
    while remaining is None or any(remaining.values()):
        wanted = cursors if remaining is None else {p: o for p, o in cursors.items() if remaining[p] > 0}
        params = {"batch_limit": BATCH_LIMIT, "batch_flush_timeout": BATCH_FLUSH_TIMEOUT_S}
        if remaining is not None:
            # Ending the stream at the count flushes the last, partial batch
            # at once; events published since may take some of the count,
            # and then the loop reconnects for the rest.
            params["stream_limit"] = sum(remaining.values())
            params["batch_limit"] = min(BATCH_LIMIT, params["stream_limit"])
        progressed = False
        with api.stream("GET", f"{base}/events", params=params,
                        headers={"X-Nakadi-Cursors": _cursor_json(wanted)}) as response:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                batch = json.loads(line)
                partition, offset = batch["cursor"]["partition"], batch["cursor"]["offset"]
                events = batch.get("events") or []
                if remaining is not None:
                    events = events[:remaining[partition]]
                    remaining[partition] -= len(events)
                for event in events:
                    _print(event, pretty)
                progressed = progressed or bool(events)
                cursors[partition] = offset
                if remaining is not None and not any(remaining.values()):
                    return
        idle_reconnects = 0 if progressed else idle_reconnects + 1
        if remaining is not None and idle_reconnects >= RECONNECTS_WITHOUT_PROGRESS_MAX:
            raise CliError(f"the stream ended {idle_reconnects} times without the events the partitions announced")


def _print(event: Any, pretty: bool) -> None:
    if pretty:
        click.echo(json.dumps(event, indent=2, ensure_ascii=False))
    else:
        click.echo(json.dumps(event, separators=(",", ":"), ensure_ascii=False))
