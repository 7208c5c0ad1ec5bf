"""`nakadi subscriptions list|show|stats` and `nakadi lag`: subscriptions over HTTP."""

from __future__ import annotations

import click

from .cli_client import Api, client_options, echo_json, echo_table, segment

PAGE_LIMIT = 100
PAGES_MAX = 1000


@click.group()
def subscriptions() -> None:
    """List and inspect subscriptions."""


@subscriptions.command("list")
@click.option("--event-type", "event_types", multiple=True, help="Only subscriptions reading this event type")
@click.option("--owning-application", help="Only subscriptions of this application")
@client_options
def list_subscriptions(api: Api, event_types: tuple[str, ...], owning_application: str | None) -> None:
    """List the subscriptions (every page)."""
    items: list[dict] = []
    for page in range(PAGES_MAX):
        params: dict[str, object] = {"limit": PAGE_LIMIT, "offset": page * PAGE_LIMIT, "event_type": list(event_types)}
        if owning_application:
            params["owning_application"] = owning_application
        batch = api.get_json("/subscriptions", params=params).get("items", [])
        items += batch
        if len(batch) < PAGE_LIMIT:
            break
    if api.json_output:
        echo_json(items)
        return
    echo_table(["ID", "OWNING APPLICATION", "CONSUMER GROUP", "EVENT TYPES", "READ FROM"], [
        [s.get("id"), s.get("owning_application"), s.get("consumer_group"), ",".join(s.get("event_types", [])),
         s.get("read_from")] for s in items])


@subscriptions.command("show")
@click.argument("subscription_id")
@client_options
def show_subscription(api: Api, subscription_id: str) -> None:
    """Show the subscription SUBSCRIPTION_ID as JSON, with its status."""
    echo_json(api.get_json(f"/subscriptions/{segment(subscription_id)}", params={"show_status": "true"}))


@subscriptions.command("stats")
@click.argument("subscription_id")
@client_options
def subscription_stats(api: Api, subscription_id: str) -> None:
    """Per-partition statistics of SUBSCRIPTION_ID (as `lag`)."""
    _lag(api, subscription_id)


@click.command()
@click.argument("subscription_id")
@client_options
def lag(api: Api, subscription_id: str) -> None:
    """Per partition: state, unconsumed events, consumer lag and stream of SUBSCRIPTION_ID."""
    _lag(api, subscription_id)


def _lag(api: Api, subscription_id: str) -> None:
    stats = api.get_json(f"/subscriptions/{segment(subscription_id)}/stats", params={"show_time_lag": "true"})
    items = stats.get("items", [])
    if api.json_output:
        echo_json(items)
        return
    echo_table(["EVENT TYPE", "PARTITION", "STATE", "UNCONSUMED", "LAG SECONDS", "STREAM"], [
        [item.get("event_type"), p.get("partition"), p.get("state"), p.get("unconsumed_events", "-"),
         p.get("consumer_lag_seconds", "-"), p.get("stream_id") or "-"]
        for item in items for p in item.get("partitions", [])])
