"""``unity hosts`` and ``unity discover``: the machines of a running hub, over its REST API.

``hosts`` lists, shows and removes hosts, adds a catalogue plugin to one, and
prints the command that joins a new machine (``unity-agent join URL TOKEN``).
``discover`` lists what discovery proposes to monitor and accepts or dismisses
it. Reading needs a read token; everything else an admin token.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.cli.client import connect
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    new_table,
    print_json,
    relative_time,
)
from unity.cli.plugins import _parse_pairs, _styled

__all__ = ["discover_app", "hosts_app", "join_line"]

API = "/api/hosts"

hosts_app = typer.Typer(
    help="Hosts of a running hub: list, show, remove, add plugins, join new ones.",
    no_args_is_help=True,
)
discover_app = typer.Typer(
    help="What discovery proposes to monitor on each host: list, accept, dismiss.",
    no_args_is_help=True,
)

HostArg = Annotated[str, typer.Argument(metavar="HOST", help="The host id, e.g. nas.")]
ProposalArg = Annotated[
    int, typer.Argument(metavar="PROPOSAL_ID", help="From `unity discover list`.", min=1)
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        help="A config value (JSON when it parses, else a string); repeat for more.",
        show_default=False,
    ),
]


def join_line(hub_url: str, token: str) -> str:
    """The one command that joins a new machine to the hub."""
    return f"unity-agent join {hub_url} {token}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _memory(platform: dict[str, Any]) -> str:
    size = platform.get("memory_bytes")
    return f"{size / 1024**3:.1f} GiB" if isinstance(size, int) else "-"


@hosts_app.command("list")
def list_hosts(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List hosts, the hub's own first: state, CPU/memory/disk, plugins, open proposals."""
    with connect(ctx) as hub:
        hosts = hub.get(API)
    if as_json:
        print_json(hosts)
        return
    table = new_table(
        "ID", "HOSTNAME", "KIND", "STATE", "CPU", "MEM", "DISK", "PLUGINS", "PROPOSALS"
    )
    for host in hosts:
        table.add_row(
            escape(host["id"]),
            escape(host["hostname"]),
            host["kind"],
            _styled(host["state"]),
            _percent(host["cpu_percent"]),
            _percent(host["memory_percent"]),
            _percent(host["disk_percent"]),
            str(len(host["plugins"])),
            str(host["open_proposals"] or "-"),
        )
    console().print(table)


@hosts_app.command()
def show(ctx: typer.Context, host_id: HostArg, as_json: JsonOption = False) -> None:
    """One host: its machine, its agent, every plugin on it and its proposals."""
    with connect(ctx) as hub:
        host = hub.get(f"{API}/{host_id}")
    if as_json:
        print_json(host)
        return
    out = console()
    platform = host["platform"]
    out.print(f"[bold]{escape(host['hostname'])}[/] ({escape(host['id'])}, {host['kind']})")
    facts = [
        ("State", _styled(host["state"])),
        ("Last seen", relative_time(host["last_seen_at"], empty="never")),
        ("System", escape(platform["distribution"] or platform["os"] or "-")),
        ("CPUs", str(platform["cpu_count"] or "-")),
        ("Memory", _memory(platform)),
        ("CPU / mem / disk", " / ".join(_percent(host[k]) for k in _HEADLINES)),
    ]
    agent = host.get("agent")
    if agent:
        facts.append(("Agent", f"{agent['buffered']} buffered, {agent['dropped']} dropped"))
        facts += [(f"  {escape(i)}", escape(why)) for i, why in agent["problems"].items()]
    for label, value in facts:
        out.print(f"  {label:<17} {value}", soft_wrap=True)
    types = {p["id"]: p["plugin_type"] for p in host["plugins"]}
    table = new_table("PLUGIN", "TYPE", "ENABLED", "STATE", "INTERVAL", title="Plugins")
    for plugin in host["instances"]:
        table.add_row(
            escape(plugin["id"]),
            escape(types.get(plugin["id"], plugin["id"])),
            "yes" if plugin["enabled"] else "no",
            _styled(plugin["state"]),
            "-" if plugin["interval"] is None else f"{plugin['interval']:g}s",
        )
    out.print(table)
    if host["proposals"]:
        out.print(_proposal_table(host["proposals"], with_host=False))


_HEADLINES = ("cpu_percent", "memory_percent", "disk_percent")


@hosts_app.command()
def remove(
    ctx: typer.Context,
    host_id: HostArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Remove a host: its agent's key is revoked, its plugins deleted with their history."""
    if not yes:
        typer.confirm(
            f"Remove host {host_id!r}, revoke its agent's key and delete its plugins?", abort=True
        )
    with connect(ctx) as hub:
        hub.delete(f"{API}/{host_id}")
    console().print(f"Removed host {escape(host_id)}; its agent's key no longer works.")


def _config(config: str | None, pairs: list[str] | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if config is not None:
        try:
            parsed = json.loads(config)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--config") from exc
        if not isinstance(parsed, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--config")
        values.update(parsed)
    values.update(_parse_pairs(pairs or []))
    return values


@hosts_app.command("add-plugin")
def add_plugin(
    ctx: typer.Context,
    host_id: HostArg,
    plugin: Annotated[
        str, typer.Argument(metavar="PLUGIN", help="A catalogue plugin id, e.g. postgres.")
    ],
    config: Annotated[
        str | None, typer.Option("--config", help="The config as one JSON object.")
    ] = None,
    pairs: SetOption = None,
    interval: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds between runs (default: the plugin's).")
    ] = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Add it without running it.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run a catalogue plugin on a host. The hub validates the config (nothing is
    saved on an error); the host's agent starts it at its next poll."""
    body: dict[str, Any] = {
        "plugin": plugin,
        "config": _config(config, pairs),
        "enabled": not disabled,
    }
    if interval is not None:
        body["interval"] = interval
    with connect(ctx) as hub:
        created = hub.post(f"{API}/{host_id}/plugins", body)
    if as_json:
        print_json(created)
        return
    state = "added (disabled)" if disabled else "added"
    console().print(f"{escape(created['id'])} {state} on {escape(host_id)}.")


@hosts_app.command("join-command")
def join_command(
    ctx: typer.Context,
    uses: Annotated[int, typer.Option(min=1, help="How many hosts may join with it.")] = 1,
    expires_hours: Annotated[
        float, typer.Option(min=0.01, help="Hours until its token expires.")
    ] = 24.0,
    hub_url: Annotated[
        str | None,
        typer.Option(
            help="The address agents reach the hub at (default: the one this command used)."
        ),
    ] = None,
) -> None:
    """Make an enrollment token and print the command that joins a new machine.

    Only the command goes to stdout, so `unity hosts join-command | ssh nas sh` works."""
    body = {"name": "agent join", "max_uses": uses, "expires_in_hours": expires_hours}
    with connect(ctx) as hub:
        made = hub.post("/api/enrollment-tokens", body)
        url = (hub_url or hub.url).rstrip("/")
    error_console().print(
        f"Run this on the new host (its token works for {uses} join(s) and expires "
        f"{relative_time(made['expires_at'])}; it is shown only this once):",
        soft_wrap=True,
    )
    typer.echo(join_line(url, made["token"]))


def _proposal_table(proposals: list[dict[str, Any]], *, with_host: bool) -> Any:
    columns = ["ID", "PLUGIN", "TITLE", "CREDENTIAL", "STATUS", "SEEN"]
    table = new_table(*(["HOST", *columns] if with_host else columns), title="Proposals")
    for item in proposals:
        row = [
            str(item["id"]),
            escape(item["plugin"]),
            escape(item["title"]),
            escape(item["credential"] or "-"),
            item["status"],
            relative_time(item["last_seen_at"]),
        ]
        table.add_row(*([escape(item["host_id"]), *row] if with_host else row))
    return table


@discover_app.command("list")
def list_proposals(
    ctx: typer.Context,
    host_id: Annotated[
        str | None, typer.Argument(metavar="[HOST]", help="Only this host (default: every host).")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Also accepted, dismissed and gone ones.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List open proposals: what discovery found and the plugin that would watch it."""
    params = None if every else {"status": "open"}
    found: list[dict[str, Any]] = []
    with connect(ctx) as hub:
        hosts = [host_id] if host_id else [h["id"] for h in hub.get(API)]
        for host in hosts:
            found += [{"host_id": host, **p} for p in hub.get(f"{API}/{host}/proposals", params)]
    if as_json:
        print_json(found)
        return
    if not found:
        error_console().print("No proposals." if every else "No open proposals.")
        return
    console().print(_proposal_table(found, with_host=True))


@discover_app.command()
def accept(
    ctx: typer.Context,
    host_id: HostArg,
    proposal_id: ProposalArg,
    credential: Annotated[
        str | None,
        typer.Option(
            metavar="NAME", help="A stored credential for the field the proposal says needs one."
        ),
    ] = None,
    pairs: SetOption = None,
) -> None:
    """Accept a proposal: its plugin runs on the host with the suggested config
    (``--set`` changes fields of it)."""
    body: dict[str, Any] = {"config": _parse_pairs(pairs or [])}
    if credential is not None:
        body["credential"] = credential
    with connect(ctx) as hub:
        accepted = hub.post(f"{API}/{host_id}/proposals/{proposal_id}/accept", body)
    console().print(f"Accepted: {escape(accepted['plugin_id'])} runs on {escape(host_id)}.")


@discover_app.command()
def dismiss(ctx: typer.Context, host_id: HostArg, proposal_id: ProposalArg) -> None:
    """Dismiss a proposal for good: later scans do not bring it back."""
    with connect(ctx) as hub:
        done = hub.post(f"{API}/{host_id}/proposals/{proposal_id}/dismiss")
    console().print(f"Dismissed proposal {proposal_id}: {escape(done['title'])}.")
