"""A plugin's config form, generated from its JSON Schema.

Each top-level property becomes one field with a widget chosen from its
type: text, number, whole number, checkbox, select (enums), secret (password
input or a stored credential), list (one item per line) or JSON (anything
nested). The hub's own keys (``interval``, ``retention_days``, ``targets``)
come first. The browser sends the values back as one JSON object to
``PUT /api/plugins/v2/{id}/config``, which validates them; its 422 details
are shown next to the fields they name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from unity.plugins import config as plugin_config
from unity_sdk import PluginMetadata

__all__ = ["FormField", "config_form"]

Widget = Literal[
    "text", "number", "integer", "boolean", "select", "secret", "list", "json", "targets"
]


@dataclass(frozen=True)
class FormField:
    """One input of the config form, with everything the template needs."""

    name: str
    label: str
    widget: Widget
    description: str = ""
    required: bool = False
    default: Any = None
    value: str = ""
    checked: bool = False
    options: list[str] = field(default_factory=list)
    chosen: list[str] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    item_type: str = "string"
    credential: str | None = None
    stored_secret: bool = False
    hub_key: bool = False
    example: str = ""

    @property
    def default_text(self) -> str:
        if self.default is None or self.default in ([], {}, ""):
            return self.example
        if isinstance(self.default, bool):
            return "on" if self.default else "off"
        if isinstance(self.default, float):
            return f"{self.default:g}"
        if isinstance(self.default, list | dict):
            return json.dumps(self.default)
        return str(self.default)


def _resolve(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> dict[str, Any]:
    """The property with a local ``$ref`` followed and an optional (``| None``) unwrapped."""
    resolved = dict(prop)
    ref = resolved.pop("$ref", None)
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = schema
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        resolved = {**target, **resolved}
    for key in ("anyOf", "oneOf"):
        options = resolved.get(key)
        if isinstance(options, list):
            real = [o for o in options if isinstance(o, Mapping) and o.get("type") != "null"]
            if len(real) == 1:
                del resolved[key]
                resolved = {**_resolve(schema, real[0]), **resolved}
                resolved["nullable"] = True
    return resolved


def _widget(prop: Mapping[str, Any], secret: bool) -> tuple[Widget, str]:
    kind = prop.get("type")
    if secret:
        return "secret", "string"
    if "enum" in prop and all(isinstance(v, str | int | float) for v in prop["enum"]):
        return "select", "string"
    if kind == "boolean":
        return "boolean", "string"
    if kind == "integer":
        return "integer", "string"
    if kind == "number":
        return "number", "string"
    if kind == "string":
        return "text", "string"
    if kind == "array":
        items = prop.get("items")
        item_kind = items.get("type") if isinstance(items, Mapping) else None
        if item_kind in ("string", "integer", "number") and "enum" not in (items or {}):
            return "list", str(item_kind)
    return "json", "string"


def _example(schema: Mapping[str, Any], prop: Mapping[str, Any]) -> str:
    """A skeleton for a JSON field: a list of objects shows their required keys."""
    items = prop.get("items")
    if prop.get("type") != "array" or not isinstance(items, Mapping):
        return ""
    item = _resolve(schema, items)
    keys = item.get("required") or list(item.get("properties", {}))[:2]
    if item.get("type") != "object" or not keys:
        return ""
    return json.dumps([dict.fromkeys(keys, "…")], ensure_ascii=False)


def _text(value: Any, widget: Widget) -> str:
    if value is None:
        return ""
    if widget == "list" and isinstance(value, list):
        return "\n".join(str(v) for v in value)
    if widget == "json":
        return json.dumps(value, indent=2)
    return str(value)


def _field(
    schema: Mapping[str, Any],
    name: str,
    prop: Mapping[str, Any],
    *,
    required: bool,
    secret: bool,
    config: Mapping[str, Any],
) -> FormField:
    widget, item_type = _widget(prop, secret)
    present = name in config
    current = config.get(name)
    default = prop.get("default")
    credential = plugin_config.credential_reference(current) if secret else None
    return FormField(
        name=name,
        label=str(prop.get("title") or name.replace("_", " ").capitalize()),
        widget=widget,
        description=str(prop.get("description", "")),
        required=required,
        default=default,
        value="" if secret or not present else _text(current, widget),
        checked=bool(current if present else default),
        options=[str(v) for v in prop.get("enum", [])],
        chosen=[str(current if present else default or "")],
        minimum=prop.get("minimum"),
        maximum=prop.get("maximum"),
        item_type=item_type,
        credential=credential,
        stored_secret=secret and credential is None and current == plugin_config.MASK,
        example=_example(schema, prop) if widget == "json" else "",
    )


def _hub_fields(
    metadata: PluginMetadata,
    config: Mapping[str, Any],
    *,
    retention_days: int,
    servers: list[str],
) -> list[FormField]:
    interval = config.get("interval")
    retention = config.get("retention_days")
    fields = [
        FormField(
            name="interval",
            label="Interval",
            widget="number",
            description="Seconds between scheduled runs (1 to 86400).",
            default=metadata.default_interval,
            value="" if interval is None else f"{interval:g}",
            minimum=1,
            maximum=86400,
            hub_key=True,
        ),
        FormField(
            name="retention_days",
            label="Retention",
            widget="integer",
            description="Days of metrics and run history kept (1 to 3650).",
            default=retention_days,
            value="" if retention is None else str(retention),
            minimum=1,
            maximum=3650,
            hub_key=True,
        ),
    ]
    if metadata.supports_remote:
        fields.append(
            FormField(
                name="targets",
                label="Targets",
                widget="targets",
                description="Where to collect: the hub itself and servers of the inventory "
                "(none chosen: the hub only).",
                options=[plugin_config.LOCAL_TARGET, *servers],
                chosen=[str(t) for t in config.get("targets") or []],
                hub_key=True,
            )
        )
    return fields


def config_form(
    metadata: PluginMetadata,
    config: Mapping[str, Any],
    *,
    retention_days: int,
    servers: list[str],
) -> list[FormField]:
    """The form fields for a plugin's config; ``config`` as the API returns it (masked)."""
    schema = metadata.config_json_schema()
    required = set(schema.get("required", []))
    secrets = plugin_config.secret_fields(metadata)
    fields = _hub_fields(metadata, config, retention_days=retention_days, servers=servers)
    taken = {f.name for f in fields}
    for name, raw in schema.get("properties", {}).items():
        if name in taken or not isinstance(raw, Mapping):
            continue
        prop = _resolve(schema, raw)
        fields.append(
            _field(
                schema, name, prop, required=name in required, secret=name in secrets, config=config
            )
        )
    return fields
