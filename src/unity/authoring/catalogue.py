"""The built-in catalogue as Markdown, generated from each plugin's metadata.

``python -m unity.authoring.catalogue > docs/plugins/catalogue.md`` writes the
page; a test fails when the page and the metadata disagree.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from unity.alerts.rules import EXTERNAL_RULES, describe
from unity.plugins.loader import PluginLoader
from unity_sdk import PluginMetadata, prometheus_series

__all__ = ["render_catalogue"]

_FOR_UNITS = ((86400, "d"), (3600, "h"), (60, "min"), (1, "s"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _config_rows(metadata: PluginMetadata) -> list[str]:
    schema = metadata.config_json_schema()
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        if not isinstance(prop, dict):
            continue
        default = "required" if name in required else f"`{prop.get('default')!r}`"
        rows.append(f"| `{name}` | {default} | {_cell(prop.get('description', ''))} |")
    return rows


def _requirements(metadata: PluginMetadata) -> str:
    needs = metadata.requires
    parts = [f"command `{c}`" for c in needs.commands]
    parts += [f"package `{p}`" for p in needs.packages]
    if needs.root:
        parts.append("root")
    if metadata.supports_remote:
        parts.append("runs locally or on an inventory server over SSH")
    return ", ".join(parts) or "nothing beyond the hub"


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "at once"
    for size, unit in _FOR_UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g} {unit}"
    return f"{seconds:g} s"


def _unit(metadata: PluginMetadata, metric: str | None) -> str:
    return metadata.metric(metric).unit if metric else ""


def _alert_rules(plugins: Sequence[PluginMetadata]) -> list[str]:
    """The default alert rules the plugins ship, as one table."""
    lines = [
        "",
        "## Default alert rules",
        "",
        "Active while the plugin is enabled; each can be switched off or changed",
        "(`unity alerts rules disable PLUGIN RULE`, or",
        "`PUT /api/alerts/rules/{plugin}/{rule}/override`).",
        "Every external plugin also gets `agent-stale`: "
        f"{describe(EXTERNAL_RULES[0])}, {EXTERNAL_RULES[0].severity.value}.",
        "",
        "| plugin | rule | severity | condition | for |",
        "|---|---|---|---|---|",
    ]
    for metadata in plugins:
        lines += [
            f"| `{metadata.id}` | `{r.id}` | {r.severity.value} "
            f"| {_cell(describe(r, _unit(metadata, r.metric)))} "
            f"| {_duration(r.for_seconds)} |"
            for r in metadata.alert_rules
        ]
    return lines


def render_catalogue(plugins: Sequence[PluginMetadata]) -> str:
    lines = [
        "# Built-in plugin catalogue",
        "",
        "Generated from the plugins' metadata by `python -m unity.authoring.catalogue`;",
        "a test keeps it in sync. Every plugin also takes the hub keys `interval` and",
        "`retention_days` (and `targets` when it runs remotely). The Prometheus column",
        "is each metric's family on the hub's `/metrics` (see [Prometheus](prometheus.md)).",
        "",
        "| plugin | category | what it collects |",
        "|---|---|---|",
    ]
    ordered = sorted(plugins, key=lambda m: (m.category.value, m.id))
    lines += [
        f"| [`{m.id}`](#{m.id}) | {m.category.value} | {_cell(m.description)} |" for m in ordered
    ]
    lines += _alert_rules(ordered)
    for metadata in ordered:
        lines += [
            "",
            f"## {metadata.id}",
            "",
            f"**{_cell(metadata.name)}** {metadata.version} — {_cell(metadata.description)}",
            "",
            f"- Category: {metadata.category.value}; default interval "
            f"{metadata.default_interval:g} s, timeout {metadata.timeout:g} s",
            f"- Requires: {_requirements(metadata)}",
        ]
        config = _config_rows(metadata)
        if config:
            lines += ["", "| config | default | meaning |", "|---|---|---|", *config]
        if metadata.metrics:
            lines += [
                "",
                "| metric | unit | kind | Prometheus | meaning |",
                "|---|---|---|---|---|",
            ]
            lines += [
                f"| `{f.name}` | {_cell(f.unit)} | {f.kind.value} "
                f"| `{prometheus_series(metadata.id, f).describe()}` | {_cell(f.description)} |"
                for f in metadata.metrics
            ]
    return "\n".join(lines) + "\n"


def builtin_metadata() -> list[PluginMetadata]:
    loaded, failures = PluginLoader(group="unity.builtin-only").discover()
    if failures:
        raise SystemExit(f"built-in plugins failed to load: {failures}")
    return [plugin.metadata for plugin in loaded]


if __name__ == "__main__":
    sys.stdout.write(render_catalogue(builtin_metadata()))
