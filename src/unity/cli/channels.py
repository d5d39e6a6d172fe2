"""``unity alerts channels``: where a running hub sends notifications, over its REST API.

A channel URL (ntfy://, gotify://, discord://, tgram://, mailto://, json://...,
or alertmanager://host:port) holds tokens, so ``add`` reads it from a hidden
prompt or stdin (``--url-stdin``), never from the command line; the hub seals
it in its credentials store and never shows it again.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.cli.client import connect
from unity.cli.output import JsonOption, console, fail, new_table, print_json, relative_time

__all__ = ["channels_app"]

API = "/api/alerts/channels"

channels_app = typer.Typer(
    help="Notification channels: add, list, test, remove; and the delivery log.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", help="The channel's name.")]


def _read_url(from_stdin: bool) -> str:
    value = sys.stdin.read().strip() if from_stdin else typer.prompt("URL", hide_input=True)
    if not value:
        fail("the channel URL is empty")
    return value


def _routing(channel: dict[str, Any]) -> str:
    parts = [f"≥ {channel['min_severity']}"]
    if channel["plugins"]:
        parts.append("plugins " + ",".join(channel["plugins"]))
    if channel["hosts"]:
        parts.append("hosts " + ",".join(channel["hosts"]))
    parts += [f"{k}={v}" for k, v in channel["labels"].items()]
    parts.append(f"{channel['rate_limit']}/window")
    return "; ".join(parts)


@channels_app.command("add")
def add(
    ctx: typer.Context,
    name: Name,
    url_stdin: Annotated[
        bool, typer.Option("--url-stdin", help="Read the URL from stdin, not a hidden prompt.")
    ] = False,
    min_severity: Annotated[
        str, typer.Option("--min-severity", help="info, warning or critical.")
    ] = "info",
    plugin: Annotated[
        list[str] | None, typer.Option("--plugin", help="Only these plugin ids (patterns).")
    ] = None,
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Only these hosts (patterns).")
    ] = None,
    rate_limit: Annotated[int, typer.Option("--rate-limit", help="Messages per rate window.")] = 10,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it switched off.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a channel; the URL is asked for (hidden) or read from stdin."""
    body = {
        "name": name,
        "url": _read_url(url_stdin),
        "min_severity": min_severity,
        "plugins": plugin or [],
        "hosts": host or [],
        "rate_limit": rate_limit,
        "enabled": not disabled,
    }
    with connect(ctx) as client:
        channel = client.post(API, body)
    if as_json:
        print_json(channel)
        return
    console().print(f"Channel {escape(name)} added ({escape(channel['target'])}).")
    console().print(f"Send a test message: unity alerts channels test {escape(name)}")


@channels_app.command("list")
def list_channels(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Channels with their routing; URLs are never shown, only their scheme."""
    with connect(ctx) as client:
        items = client.get(API)["items"]
    if as_json:
        print_json(items)
        return
    table = new_table("Name", "Target", "Routing", "Enabled")
    for channel in items:
        table.add_row(
            escape(channel["name"]),
            escape(channel["target"]),
            escape(_routing(channel)),
            "yes" if channel["enabled"] else "[dim]no[/]",
        )
    console().print(table)


@channels_app.command("remove")
def remove(ctx: typer.Context, name: Name) -> None:
    """Delete a channel, its queued notices and the credential holding its URL."""
    with connect(ctx) as client:
        client.delete(f"{API}/{name}")
    console().print(f"Channel {escape(name)} removed.")


@channels_app.command("test")
def send_test(ctx: typer.Context, name: Name, as_json: JsonOption = False) -> None:
    """Send a test message now; exits 1 with the reason when it fails."""
    with connect(ctx) as client:
        delivery = client.post(f"{API}/{name}/test")
    if as_json:
        print_json(delivery)
        return
    console().print(f"Test message sent to {escape(name)}.")


@channels_app.command("log")
def log(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--channel", help="Only this channel.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """The delivery log, newest first: sent or failed, attempt, and why."""
    params: dict[str, Any] = {"limit": limit}
    if name:
        params["channel"] = name
    with connect(ctx) as client:
        items = client.get("/api/alerts/deliveries", params)["items"]
    if as_json:
        print_json(items)
        return
    table = new_table("When", "Channel", "State", "Attempt", "Notices", "Title / error")
    for entry in items:
        state = "[green]sent[/]" if entry["state"] == "sent" else f"[red]{entry['state']}[/]"
        detail = entry["error"] or entry["title"]
        table.add_row(
            relative_time(entry["at"]),
            escape(entry["channel"]) + (" (test)" if entry["test"] else ""),
            state,
            str(entry["attempt"]),
            str(entry["notices"]),
            escape(detail),
        )
    console().print(table)
