"""`nakadi publish TYPE [FILE|-]`: events from a JSON array or NDJSON, in batches.

The input is read whole (a JSON array when its first character is `[`,
otherwise one JSON value per non-blank line), then posted in batches of
`--batch-size`. A 207 or 422 answer does not stop the run: each event that
was not submitted is printed as one line (eid, status, step, detail) and
the command exits 1 at the end. Any other error stops it at once.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

import click

from .cli_client import Api, CliError, client_options, echo_json, is_terminal, problem_line, segment

BATCH_SIZE_DEFAULT = 500
BATCH_SIZE_MAX = 10_000


@click.command()
@click.argument("event_type")
@click.argument("source", type=click.File("rb"), default="-")
@click.option("--batch-size", type=click.IntRange(1, BATCH_SIZE_MAX), default=BATCH_SIZE_DEFAULT, show_default=True,
              help="Events per request")
@client_options
def publish(api: Api, event_type: str, source: IO[bytes], batch_size: int) -> None:
    """Publish the events of FILE (a JSON array or NDJSON; - or nothing for stdin)."""
    events = parse_events(source.read(), getattr(source, "name", "<stdin>"))
    path = f"/event-types/{segment(event_type)}/events"
    published, failures = 0, []
    with _progress(len(events)) as advance:
        for start in range(0, len(events), batch_size):
            batch = events[start:start + batch_size]
            failed = _post(api, path, batch)
            failures += failed
            published += len(batch) - len(failed)
            advance(len(batch))
    _report(api, published, len(events), failures)
    if failures:
        sys.exit(1)


def parse_events(data: bytes, name: str) -> list[Any]:
    """The events of a JSON array or of NDJSON, or `CliError` naming the line."""
    text = data.decode("utf-8-sig", errors="strict") if data else ""
    if text.lstrip().startswith("["):
        try:
            events = json.loads(text)
        except ValueError as error:
            raise CliError(f"{name} is not a JSON array: {error}") from None
        return events
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                events.append(json.loads(line))
            except ValueError as error:
                raise CliError(f"{name} line {number} is not JSON: {error}") from None
    return events


def _post(api: Api, path: str, batch: list[Any]) -> list[dict]:
    """The items of `batch` that were not submitted (none on a 200)."""
    response = api.request("POST", path, allowed=(422,), content=json.dumps(batch, ensure_ascii=False).encode(),
                           headers={"Content-Type": "application/json"})
    if response.status_code in (207, 422):
        items = response.json()
        if not isinstance(items, list):
            raise CliError(problem_line(response))
        return [item for item in items if item.get("publishing_status") != "submitted"]
    return []


@contextlib.contextmanager
def _progress(total: int) -> Iterator[Any]:
    """`advance(n)`: a progress bar on stderr when it is a terminal, else nothing."""
    if not is_terminal(sys.stderr) or total == 0:
        yield lambda n: None
        return
    with click.progressbar(length=total, label="publishing", file=sys.stderr) as bar:
        yield bar.update


def _report(api: Api, published: int, total: int, failures: list[dict]) -> None:
    if api.json_output:
        echo_json({"published": published, "total": total, "failed": failures})
        return
    for item in failures:
        click.echo(f"{item.get('publishing_status', 'failed')}: eid={item.get('eid')} step={item.get('step')} "
                   f"detail={item.get('detail') or '-'}", err=True)
    click.echo(f"published {published} of {total} events" + (f", {len(failures)} not published" if failures else ""))
