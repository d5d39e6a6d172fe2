"""``unity alerts``: alerts of a running hub over its REST API.

List what fires, acknowledge it, silence it, plan maintenance, and manage
rules (add your own, switch a plugin's default rule off or on). Reading needs
a read token; every change an admin token.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.cli.client import RestClient, connect
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    fail,
    new_table,
    print_json,
    relative_time,
)

__all__ = ["app", "parse_duration"]

API = "/api/alerts"

app = typer.Typer(help="Alerts: list, acknowledge, silence; rules.", no_args_is_help=True)
rules_app = typer.Typer(help="Alert rules: list, add, disable, enable.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")

_STYLES = {"firing": "red", "pending": "yellow", "resolved": "green", "critical": "red"}
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$")

PluginArg = Annotated[str, typer.Argument(metavar="PLUGIN", help="The plugin id.")]
RuleArg = Annotated[str, typer.Argument(metavar="RULE", help="The rule id.")]


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``2h``, ``1d`` as seconds."""
    found = _DURATION.match(text)
    if found is None:
        raise typer.BadParameter(f"{text!r} is not a duration like 90s, 15m, 2h or 1d")
    return float(found.group(1)) * _UNITS[found.group(2) or "s"]


def _styled(word: str) -> str:
    style = _STYLES.get(word)
    return f"[{style}]{escape(word)}[/]" if style else escape(word)


def _value(item: dict[str, Any]) -> str:
    value = item.get("value")
    return "" if value is None else f"{value:g}{item.get('unit') or ''}"


@app.command("list")
def list_command(
    ctx: typer.Context,
    plugin: Annotated[str | None, typer.Option(help="Only this plugin's alerts.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Active alerts: firing first, then pending."""
    with connect(ctx) as hub:
        items = hub.get(API, params={"plugin_id": plugin} if plugin else None)["items"]
    if as_json:
        print_json({"items": items})
        return
    if not items:
        error_console().print("No alerts are active.")
        return
    table = new_table("ID", "STATE", "SEVERITY", "PLUGIN", "RULE", "HOST", "VALUE", "SINCE", "ACK")
    for item in items:
        table.add_row(
            item["fingerprint"][:12],
            _styled(item["state"]),
            _styled(item["severity"]),
            escape(item["plugin_id"]),
            escape(item["rule_id"] + (f" [{item['item']}]" if item["item"] else "")),
            escape(item["host"]),
            _value(item),
            relative_time(item["since"]),
            escape(item["ack_by"] or ""),
        )
    console().print(table)


def _resolve(hub: RestClient, prefix: str) -> str:
    matches = [
        a["fingerprint"] for a in hub.get(API)["items"] if a["fingerprint"].startswith(prefix)
    ]
    if len(matches) != 1:
        fail(f"{len(matches)} active alerts start with {prefix!r}; give more of the ID")
    return str(matches[0])


@app.command()
def ack(
    ctx: typer.Context,
    alert: Annotated[str, typer.Argument(metavar="ID", help="The alert ID (or its start).")],
    note: Annotated[str, typer.Option(help="What is being done about it.")] = "",
) -> None:
    """Acknowledge an active alert: it is not told again until it resolves."""
    with connect(ctx) as hub:
        fingerprint = _resolve(hub, alert)
        done = hub.post(f"{API}/{fingerprint}/ack", {"note": note})
    console().print(f"Acknowledged {escape(done['summary'])} (by {escape(done['ack_by'])}).")


@app.command()
def history(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: JsonOption = False,
) -> None:
    """Recent transitions of every alert, newest first."""
    with connect(ctx) as hub:
        items = hub.get(f"{API}/history", params={"limit": limit})["items"]
    if as_json:
        print_json({"items": items})
        return
    table = new_table("WHEN", "RULE", "HOST", "CHANGE", "VALUE", "SUMMARY")
    for item in items:
        table.add_row(
            relative_time(item["at"]),
            escape(f"{item['plugin_id']}/{item['rule_id']}"),
            escape(item["host"]),
            f"{item['from_state']} → {_styled(item['to_state'])}",
            "" if item["value"] is None else f"{item['value']:g}",
            escape(item["summary"]),
        )
    console().print(table)


@app.command()
def silence(
    ctx: typer.Context,
    duration: Annotated[str, typer.Option("--for", help="How long: 90s, 15m, 2h, 1d.")],
    rule: Annotated[str | None, typer.Option(help="Only this rule id.")] = None,
    plugin: Annotated[str | None, typer.Option(help="Only this plugin.")] = None,
    host: Annotated[str | None, typer.Option(help="Only this host.")] = None,
    label: Annotated[list[str] | None, typer.Option(help="KEY=VALUE (repeatable).")] = None,
    comment: Annotated[str, typer.Option(help="Why.")] = "",
) -> None:
    """Stop telling the alerts that match every given matcher, for a while."""
    labels = {}
    for pair in label or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = value
    matchers = {"rule_id": rule, "plugin_id": plugin, "host": host, "labels": labels}
    body = {"matchers": matchers, "duration_seconds": parse_duration(duration), "comment": comment}
    with connect(ctx) as hub:
        made = hub.post(f"{API}/silences", body)
    console().print(f"Silence {made['id']} until {made['ends_at']}.")


@app.command()
def silences(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Silences that have not ended."""
    with connect(ctx) as hub:
        items = hub.get(f"{API}/silences")["items"]
    if as_json:
        print_json({"items": items})
        return
    table = new_table("ID", "MATCHERS", "ACTIVE", "ENDS", "BY", "COMMENT")
    for item in items:
        matchers = ", ".join(f"{k}={v}" for k, v in item["matchers"].items())
        table.add_row(
            str(item["id"]),
            escape(matchers),
            "yes" if item["active"] else "not yet",
            escape(item["ends_at"]),
            escape(item["created_by"]),
            escape(item["comment"]),
        )
    console().print(table)


@app.command()
def unsilence(ctx: typer.Context, silence_id: Annotated[int, typer.Argument(metavar="ID")]) -> None:
    """End a silence now."""
    with connect(ctx) as hub:
        hub.delete(f"{API}/silences/{silence_id}")
    console().print(f"Silence {silence_id} ended.")


@app.command()
def maintenance(
    ctx: typer.Context,
    host: Annotated[str, typer.Argument(help="The host whose alerts are held back.")],
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    comment: Annotated[str, typer.Option(help="The work planned.")] = "",
) -> None:
    """A maintenance window for one host, starting now."""
    body = {"host": host, "duration_seconds": parse_duration(duration), "comment": comment}
    with connect(ctx) as hub:
        made = hub.post(f"{API}/maintenance", body)
    console().print(f"Maintenance {made['id']} of {escape(host)} until {made['ends_at']}.")


@rules_app.command("list")
def rules_list(
    ctx: typer.Context,
    plugin: Annotated[str | None, typer.Option(help="Only this plugin's rules.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every rule: the plugins' defaults (as overridden) and the users' own."""
    with connect(ctx) as hub:
        items = hub.get(f"{API}/rules", params={"plugin_id": plugin} if plugin else None)["items"]
    if as_json:
        print_json({"items": items})
        return
    table = new_table("PLUGIN", "RULE", "SOURCE", "ON", "SEVERITY", "CONDITION", "FOR")
    for item in items:
        rule = item["rule"]
        table.add_row(
            escape(item["plugin_id"]),
            escape(rule["id"]),
            item["source"] + (" (changed)" if item["overridden"] else ""),
            "yes" if item["enabled"] else "[dim]off[/]",
            _styled(rule["severity"]),
            escape(_condition(rule)),
            f"{rule['for_seconds']:g} s",
        )
    console().print(table)


def _condition(rule: dict[str, Any]) -> str:
    if rule["kind"] in ("threshold", "rate"):
        limit = rule["threshold_metric"] or f"{rule['threshold']:g}{rule.get('unit') or ''}"
        rate = "rate of " if rule["kind"] == "rate" else ""
        return f"{rate}{rule['metric']} {rule['op']} {limit}"
    if rule["kind"] == "no_data":
        return f"no data for {rule['intervals']} intervals"
    return f"{rule['kind']} is {' or '.join(rule['states']) or 'a problem'}"


@rules_app.command("add")
def rules_add(
    ctx: typer.Context,
    plugin: PluginArg,
    rule_id: RuleArg,
    metric: Annotated[str | None, typer.Option(help="A declared metric (disks.*.percent).")] = None,
    op: Annotated[str, typer.Option(help="> >= < <= == !=")] = ">",
    threshold: Annotated[float | None, typer.Option(help="The limit.")] = None,
    clear: Annotated[float | None, typer.Option(help="Resolve only back past this.")] = None,
    unit: Annotated[str | None, typer.Option(help="Unit of threshold (default: metric's).")] = None,
    kind: Annotated[
        str, typer.Option(help="threshold, rate, no_data, state, health")
    ] = "threshold",
    severity: Annotated[str, typer.Option(help="info, warning, critical")] = "warning",
    duration: Annotated[str, typer.Option("--for", help="How long it must hold: 5m.")] = "0",
    summary: Annotated[str, typer.Option(help="Template: {item} {value}{unit}...")] = "",
) -> None:
    """Add a rule (the hub refuses a metric, unit or threshold that cannot work)."""
    body: dict[str, Any] = {
        "plugin_id": plugin,
        "id": rule_id,
        "kind": kind,
        "severity": severity,
        "op": op,
        "for_seconds": parse_duration(duration),
        "summary": summary,
    }
    extra = {"metric": metric, "threshold": threshold, "clear": clear, "unit": unit}
    body |= {k: v for k, v in extra.items() if v is not None}
    with connect(ctx) as hub:
        hub.post(f"{API}/rules", body)
    console().print(f"Rule {escape(rule_id)} added to {escape(plugin)}.")


def _switch(ctx: typer.Context, plugin: str, rule_id: str, enabled: bool) -> None:
    with connect(ctx) as hub:
        hub.put(f"{API}/rules/{plugin}/{rule_id}/override", {"enabled": enabled})
    state = "enabled" if enabled else "disabled"
    console().print(f"Rule {escape(rule_id)} of {escape(plugin)} {state}.")


@rules_app.command("disable")
def rules_disable(ctx: typer.Context, plugin: PluginArg, rule_id: RuleArg) -> None:
    """Switch a rule off (its active alerts resolve)."""
    _switch(ctx, plugin, rule_id, False)


@rules_app.command("enable")
def rules_enable(ctx: typer.Context, plugin: PluginArg, rule_id: RuleArg) -> None:
    """Switch a rule back on."""
    _switch(ctx, plugin, rule_id, True)


@rules_app.command("delete")
def rules_delete(ctx: typer.Context, plugin: PluginArg, rule_id: RuleArg) -> None:
    """Delete a rule you added."""
    with connect(ctx) as hub:
        hub.delete(f"{API}/rules/{plugin}/{rule_id}")
    console().print(f"Rule {escape(rule_id)} of {escape(plugin)} deleted.")
