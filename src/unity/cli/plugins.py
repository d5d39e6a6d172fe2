"""``unity plugins``: inspect and control the plugins of a running hub over its REST API.

The hub is the one ``--url`` names (default: where ``unity serve`` listens),
reached with the token of ``--token``/``UNITY_TOKEN``. Reading needs a read
token; enable, disable, run and config set need an admin token.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from unity.cli.client import connect
from unity.cli.output import (
    JsonOption,
    console,
    error_console,
    fail,
    format_interval,
    new_table,
    print_json,
    relative_time,
    warn,
)
from unity_sdk import HealthState, PluginState, RunStatus

__all__ = ["app"]

API = "/api/plugins/v2"

app = typer.Typer(
    help="Plugins of a running hub: list, inspect, enable, run, configure.", no_args_is_help=True
)
config_app = typer.Typer(
    help="A plugin's config: show it, change it (validated by the hub).", no_args_is_help=True
)
app.add_typer(config_app, name="config")

PluginId = Annotated[str, typer.Argument(metavar="ID", help="The plugin id, e.g. system-info.")]

# Plugin states, health answers and run outcomes share their words
# ("healthy", "degraded"...), and each word one colour.
_STYLES: dict[str, str] = {
    PluginState.HEALTHY: "green",
    PluginState.DEGRADED: "yellow",
    PluginState.UNHEALTHY: "red",
    PluginState.FAILING: "red",
    PluginState.STALE: "magenta",
    PluginState.UNKNOWN: "dim",
    PluginState.NOT_APPLICABLE: "dim",
    PluginState.DISABLED: "dim",
    PluginState.NOT_LOADED: "dim",
    RunStatus.SUCCESS: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMED_OUT: "red",
    RunStatus.SKIPPED: "yellow",
}
# Health answers that need no attention: `unity plugins health` exits 0 on them.
_FINE = {HealthState.HEALTHY, HealthState.NOT_APPLICABLE}


def _styled(word: str) -> str:
    style = _STYLES.get(word)
    return f"[{style}]{escape(word)}[/]" if style else escape(word)


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[dim]no[/]"


def _json_text(value: Any) -> str:
    return escape(json.dumps(value, ensure_ascii=False, default=str))


@app.command("list")
def list_command(
    ctx: typer.Context,
    category: Annotated[
        str | None, typer.Option(help="Only this category (system, network, ...).")
    ] = None,
    enabled: Annotated[
        bool | None, typer.Option("--enabled/--disabled", help="Only enabled or only disabled.")
    ] = None,
    external: Annotated[
        bool, typer.Option("--external", help="Only external plugins (reporting from elsewhere).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """List plugins with their state, health, last run and interval."""
    params: dict[str, Any] = {"limit": 100}
    if category is not None:
        params["category"] = category
    if enabled is not None:
        params["enabled"] = enabled
    if external:
        params["external"] = True
    items: list[dict[str, Any]] = []
    with connect(ctx) as hub:
        page = hub.get(API, params=params)
        items.extend(page["items"])
        while page.get("next_cursor"):
            page = hub.get(API, params={**params, "cursor": page["next_cursor"]})
            items.extend(page["items"])
    failures: list[dict[str, Any]] = page.get("load_failures", [])
    if as_json:
        print_json({"items": items, "load_failures": failures})
        return
    if items:
        table = new_table("ID", "CATEGORY", "ENABLED", "STATE", "HEALTH", "LAST RUN", "INTERVAL")
        for item in items:
            table.add_row(
                escape(item["id"]),
                escape(item["category"]),
                _yes_no(item["enabled"]),
                _styled(item["state"]),
                _styled(item["health"]["status"]),
                relative_time(item["last_run_at"], empty="never"),
                format_interval(item["interval"]),
            )
        console().print(table)
    else:
        error_console().print("No plugins match.")
    if failures:
        warn(f"{len(failures)} plugin(s) failed to load and were skipped:")
        err = error_console()
        for failure in failures:
            err.print(
                f"  {escape(failure['name'])} ({escape(failure['source'])}): "
                f"{escape(failure['error'])}",
                soft_wrap=True,
            )


@app.command()
def info(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """Everything about one plugin: metadata, state, health, config (secrets masked), metrics."""
    with connect(ctx) as hub:
        plugin = hub.get(f"{API}/{plugin_id}")
    if as_json:
        print_json(plugin)
        return
    out = console()
    out.print(
        f"[bold]{escape(plugin['name'])}[/] ({escape(plugin['id'])}) {escape(plugin['version'])}"
        f" by {escape(plugin['author'] or 'unknown')}",
        soft_wrap=True,
    )
    if plugin["description"]:
        out.print(escape(plugin["description"]), soft_wrap=True)
    health = plugin["health"]
    checked = relative_time(health["checked_at"], empty="never checked")
    health_parts = (_styled(health["status"]), escape(health["message"]), f"({checked})")
    facts = new_table("", "")
    facts.show_header = False
    for key, value in (
        ("category", escape(plugin["category"])),
        ("enabled", _yes_no(plugin["enabled"])),
        ("loaded", _yes_no(plugin["loaded"])),
        ("external", _yes_no(plugin["external"])),
        ("state", _styled(plugin["state"])),
        ("health", " ".join(part for part in health_parts if part)),
        ("interval", format_interval(plugin["interval"])),
        ("runs", str(plugin["run_count"])),
        ("last run", relative_time(plugin["last_run_at"], empty="never")),
        ("last success", relative_time(plugin["last_success_at"], empty="never")),
        ("failures in a row", str(plugin["consecutive_failures"])),
        ("last error", escape(plugin["last_error"] or "-")),
        ("reload error", escape(plugin.get("reload_error") or "-")),
        ("config", _json_text(plugin["config"])),
    ):
        facts.add_row(key, value)
    out.print(facts)
    metrics = plugin["metadata"].get("metrics") or []
    if metrics:
        table = new_table("METRIC", "UNIT", "KIND", "DESCRIPTION", title="Declared metrics")
        for metric in metrics:
            table.add_row(
                escape(metric["name"]),
                escape(metric.get("unit", "")),
                escape(metric.get("kind", "")),
                escape(metric.get("description", "")),
            )
        out.print(table)


def _switch(ctx: typer.Context, plugin_id: str, action: str, as_json: bool) -> None:
    with connect(ctx) as hub:
        plugin = hub.post(f"{API}/{plugin_id}/{action}")
    if as_json:
        print_json(plugin)
        return
    console().print(f"{action.capitalize()}d {escape(plugin_id)}: state {_styled(plugin['state'])}")


@app.command()
def enable(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """Enable a plugin and schedule it at once (refused while its config is incomplete)."""
    _switch(ctx, plugin_id, "enable", as_json)


@app.command()
def disable(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """Disable a plugin: it stops being scheduled."""
    _switch(ctx, plugin_id, "disable", as_json)


@app.command()
def run(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """Collect now (enabled or not), store it like a scheduled run and show the document.

    Exits 1 when the run did not succeed.
    """
    with connect(ctx) as hub:
        result = hub.post(f"{API}/{plugin_id}/execute")
    if as_json:
        print_json(result)
    else:
        out = console()
        out.print(
            f"{escape(plugin_id)}: {_styled(result['status'])} in {result['duration_ms']:.1f} ms, "
            f"{result['metrics_count']} document(s) stored",
            soft_wrap=True,
        )
        if result["data"] is not None:
            out.print_json(data=result["data"])
    if result["status"] != RunStatus.SUCCESS:
        fail(f"the run of {plugin_id} {result['status']}: {result['error'] or 'no error message'}")


@app.command()
def rescan(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Load plugin packages installed since the hub started, without a restart.

    New plugins start disabled; enable them with `unity plugins enable ID`.
    """
    with connect(ctx) as hub:
        answer = hub.post(f"{API}/rescan")
    if as_json:
        print_json(answer)
        return
    out = console()
    if answer["added"]:
        out.print("New plugins: " + ", ".join(escape(p) for p in answer["added"]))
    else:
        out.print("No new plugins.")
    for failure in answer["load_failures"]:
        warn(f"{failure['name']} failed to load: {failure['error']}")


@app.command()
def health(
    ctx: typer.Context,
    plugin_id: PluginId,
    cached: Annotated[
        bool, typer.Option("--cached", help="Show the last answer instead of checking now.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the plugin's health check now and show the answer.

    Exits 1 unless the plugin is healthy (or has nothing to monitor here).
    """
    with connect(ctx) as hub:
        answer = hub.get(f"{API}/{plugin_id}/health", params={"cached": cached} if cached else None)
    if as_json:
        print_json(answer)
    else:
        message = f": {escape(answer['message'])}" if answer.get("message") else ""
        console().print(
            f"{escape(plugin_id)}: {_styled(answer['status'])}{message}", soft_wrap=True
        )
    if answer["status"] not in _FINE:
        raise typer.Exit(1)


@app.command()
def events(
    ctx: typer.Context,
    plugin_id: PluginId,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: JsonOption = False,
) -> None:
    """Show the plugin's state changes, newest first, with what caused each."""
    with connect(ctx) as hub:
        answer = hub.get(f"{API}/{plugin_id}/events", params={"limit": limit})
    if as_json:
        print_json(answer)
        return
    table = new_table("WHEN", "FROM", "TO", "WHY")
    for event in answer["items"]:
        table.add_row(
            relative_time(event["at"]),
            _styled(event["previous"]),
            _styled(event["current"]),
            escape(event["message"]),
        )
    console().print(table)


@app.command()
def keys(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """List the API keys issued to an external plugin (never their secrets)."""
    with connect(ctx) as hub:
        rows = hub.get(f"{API}/{plugin_id}/keys")
    if as_json:
        print_json(rows)
        return
    table = new_table("KEY ID", "HOSTNAME", "CREATED", "LAST USED", "REVOKED")
    for row in rows:
        table.add_row(
            row["id"],
            escape(row["hostname"]),
            relative_time(row["created_at"]),
            relative_time(row["last_used_at"], empty="never"),
            relative_time(row["revoked_at"], empty="no"),
        )
    console().print(table)


@app.command("revoke-key")
def revoke_key(
    ctx: typer.Context,
    plugin_id: PluginId,
    key_id: Annotated[str, typer.Argument(metavar="KEY_ID", help="From `unity plugins keys`.")],
) -> None:
    """Revoke an external plugin's API key: its next report is refused (401)."""
    with connect(ctx) as hub:
        hub.delete(f"{API}/{plugin_id}/keys/{key_id}")
    console().print(f"Revoked key {escape(key_id)} of {escape(plugin_id)}.")


def _print_config(answer: dict[str, Any]) -> None:
    config: dict[str, Any] = answer["config"]
    schema: dict[str, Any] = answer["config_schema"]
    properties: dict[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    table = new_table("FIELD", "VALUE", "DESCRIPTION")
    for field in [*properties, *(key for key in config if key not in properties)]:
        prop = properties.get(field) or {}
        if field in config:
            value = _json_text(config[field])
        elif "default" in prop:
            value = f"[dim]{_json_text(prop['default'])} (default)[/]"
        elif field in required:
            value = "[red]required, not set[/]"
        else:
            value = "[dim]-[/]"
        table.add_row(escape(field), value, escape(prop.get("description", "")))
    if table.row_count:
        console().print(table)
    else:
        error_console().print(f"{answer['plugin_id']} takes no config.")


@config_app.command("get")
def config_get(ctx: typer.Context, plugin_id: PluginId, as_json: JsonOption = False) -> None:
    """Show the stored config (secret fields read back as ********) and its fields."""
    with connect(ctx) as hub:
        answer = hub.get(f"{API}/{plugin_id}/config")
    if as_json:
        print_json(answer["config"])
        return
    _print_config(answer)


def _parse_pairs(pairs: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="KEY=VALUE")
        try:
            values[key] = json.loads(text)
        except ValueError:
            values[key] = text
    return values


def _read_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(
            f"cannot read JSON from {path}: {exc}", param_hint="--file"
        ) from exc
    if not isinstance(data, dict):
        raise typer.BadParameter(f"{path} must hold a JSON object", param_hint="--file")
    return data


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    plugin_id: PluginId,
    pairs: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE",
            help="Values are JSON when they parse (8080, true, [1,2]), else strings.",
            show_default=False,
        ),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", dir_okay=False, help="A JSON object of values to set."),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(help="Send only what is given instead of merging into the current config."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Change a plugin's config. The hub validates it: on any error nothing is saved.

    Only the given keys change (a merge patch); a JSON null removes a key, back to
    its default. `--replace` sends the whole config instead. `interval` (seconds)
    and `retention_days` are understood by the hub itself.
    """
    changes = {**(_read_file(file) if file else {}), **_parse_pairs(pairs or [])}
    if not changes and not replace:
        raise typer.BadParameter("give KEY=VALUE pairs or --file", param_hint="KEY=VALUE")
    with connect(ctx) as hub:
        path = f"{API}/{plugin_id}/config"
        answer = hub.put(path, changes) if replace else hub.patch(path, changes)
    if as_json:
        print_json(answer["config"])
        return
    error_console().print(f"Saved the config of {escape(plugin_id)}.")
    _print_config(answer)
