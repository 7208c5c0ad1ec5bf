"""`nakadi event-types list|show|create|delete`: event types over HTTP."""

from __future__ import annotations

import json
from typing import IO

import click

from .cli_client import Api, CliError, client_options, echo_json, echo_table, segment


@click.group("event-types")
def event_types() -> None:
    """List, show, create and delete event types."""


@event_types.command("list")
@client_options
def list_event_types(api: Api) -> None:
    """List the event types."""
    items = api.get_json("/event-types")
    if api.json_output:
        echo_json(items)
        return
    echo_table(["NAME", "CATEGORY", "OWNING APPLICATION", "PARTITIONS", "SCHEMA VERSION"], [
        [item.get("name"), item.get("category"), item.get("owning_application"),
         (item.get("default_statistic") or {}).get("read_parallelism", ""),
         (item.get("schema") or {}).get("version")] for item in items])


@event_types.command("show")
@click.argument("name")
@client_options
def show_event_type(api: Api, name: str) -> None:
    """Show the event type NAME as JSON."""
    echo_json(api.get_json(f"/event-types/{segment(name)}"))


@event_types.command("create")
@click.option("-f", "--file", "source", type=click.File("r"), required=True,
              help="JSON body of the event type, as POST /event-types takes it (- for stdin)")
@client_options
def create_event_type(api: Api, source: IO[str]) -> None:
    """Create an event type from a JSON file."""
    try:
        body = json.load(source)
    except ValueError as error:
        raise CliError(f"{source.name} is not JSON: {error}") from None
    api.request("POST", "/event-types", json=body)
    name = body.get("name") if isinstance(body, dict) else None
    if api.json_output:
        echo_json({"created": name})
    else:
        click.echo(f"created event type {name}")


@event_types.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@client_options
def delete_event_type(api: Api, name: str, yes: bool) -> None:
    """Delete the event type NAME and all its events."""
    if not yes and not click.confirm(f"delete event type {name} and all its events?", err=True):
        raise CliError("not deleted")
    api.request("DELETE", f"/event-types/{segment(name)}")
    if api.json_output:
        echo_json({"deleted": name})
    else:
        click.echo(f"deleted event type {name}")
