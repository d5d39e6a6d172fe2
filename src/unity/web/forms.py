"""A plugin's config form, generated from its JSON Schema.

Each top-level property becomes one field with a widget chosen from its
type: text, number, whole number, checkbox, select (enums), secret (password
input or a stored credential), list (one item per line) or JSON (anything
nested). The hub's own keys come first, with the bounds the SDK declares
for them (:data:`unity_sdk.HUB_KEYS`, ``targets``). The browser sends the
values back as one JSON object to ``PUT /api/plugins/v2/{id}/config``, which
validates them; its 422 details are shown next to the fields they name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from unity_sdk import (
    HUB_KEYS,
    LOCAL_TARGET,
    MASK,
    TARGETS_KEY,
    HubKey,
    PluginMetadata,
    credential_reference,
    secret_fields,
)

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
    credential = credential_reference(current) if secret else None
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
        stored_secret=secret and credential is None and current == MASK,
        example=_example(schema, prop) if widget == "json" else "",
    )


def _hub_field(key: HubKey, current: Any, default: float) -> FormField:
    return FormField(
        name=key.name,
        label=key.label,
        widget="integer" if key.whole else "number",
        description=f"{key.description} ({key.minimum} to {key.maximum}).",
        default=default,
        value="" if current is None else f"{current:g}",
        minimum=key.minimum,
        maximum=key.maximum,
        hub_key=True,
    )


def _hub_fields(
    metadata: PluginMetadata,
    config: Mapping[str, Any],
    *,
    retention_days: int,
    servers: list[str],
) -> list[FormField]:
    defaults: dict[str, float] = {
        "interval": metadata.default_interval,
        "retention_days": retention_days,
    }
    fields = [_hub_field(key, config.get(key.name), defaults[key.name]) for key in HUB_KEYS]
    if metadata.supports_remote:
        fields.append(
            FormField(
                name=TARGETS_KEY,
                label="Targets",
                widget="targets",
                description="Where to collect: the hub itself and servers of the inventory "
                "(none chosen: the hub only).",
                options=[LOCAL_TARGET, *servers],
                chosen=[str(t) for t in config.get(TARGETS_KEY) or []],
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
    secrets = secret_fields(metadata)
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
