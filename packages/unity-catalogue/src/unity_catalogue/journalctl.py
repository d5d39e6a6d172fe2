"""The ``journalctl`` built-in plugin: error counts per unit and the latest errors.

Runs ``journalctl -o json --since -<window>s -p <priority>`` (tested with
systemd 252), optionally limited to chosen units (``-u``) or to a journal
directory (``-D``), and reads its JSON lines (one entry per line; a field can be
a string, a byte array for binary data, or null when too large). Each entry is
attributed to ``UNIT`` (systemd's own messages about a unit, such as "Failed to
start"), else its ``_SYSTEMD_UNIT``, else ``SYSLOG_IDENTIFIER``, else ``_COMM``.

A host without journal files gives zero counts (journalctl then prints nothing
in JSON mode); the health check says so, and says when journalctl lacks the
permission to read the system journal.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    CommandResult,
    DependencyMissingError,
    HealthStatus,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Requirements,
)

__all__ = ["JournalctlConfig", "JournalctlPlugin"]

_INFO = MetricKind.INFO
_TIMEOUT = 30.0
# The most entries read per run, so a log storm cannot exhaust the hub's memory.
MAX_SCANNED = 20000
PRIORITIES = ("emerg", "alert", "crit", "err", "warning")
_FIELDS = "MESSAGE,PRIORITY,UNIT,_SYSTEMD_UNIT,SYSLOG_IDENTIFIER,_COMM"
_NO_FILES = "No journal files were found"
_NO_PERMISSION = "insufficient permissions"
_PARTIAL = "not seeing messages from other users"

_METRICS = [
    MetricField(name="window", unit="s", description="How far back errors are counted"),
    MetricField(name="total", unit="count", description="Entries in the window at the priority"),
    *(
        MetricField(
            name=f"by_priority.{name}",
            unit="count",
            description=f"Entries of priority {name} in the window",
        )
        for name in PRIORITIES
    ),
    MetricField(
        name="by_unit.*",
        unit="count",
        description="Entries per unit (or syslog identifier) in the window",
    ),
    MetricField(
        name="truncated",
        unit="count",
        description=f"1 when the window held more than {MAX_SCANNED} entries and only the "
        "newest were counted",
    ),
    MetricField(name="recent.*.unit", kind=_INFO, description="Unit of a recent entry"),
    MetricField(name="recent.*.priority", kind=_INFO, description="Priority of a recent entry"),
    MetricField(
        name="recent.*.message", kind=_INFO, description="Message of a recent entry (truncated)"
    ),
    MetricField(name="recent.*.timestamp", unit="s", description="When, as Unix time"),
]


class JournalctlConfig(BaseModel):
    """Config of the ``journalctl`` plugin."""

    model_config = ConfigDict(extra="forbid")

    window: int = Field(
        default=3600, ge=60, le=7 * 86400, description="Count entries of the last N seconds."
    )
    priority: Literal["emerg", "alert", "crit", "err", "warning"] = Field(
        default="err", description="Count entries of this priority and more severe ones."
    )
    units: list[str] = Field(
        default_factory=list, description="Count only these units (journalctl -u); empty: all."
    )
    max_entries: int = Field(
        default=10, ge=0, le=100, description="How many of the newest entries to list in recent."
    )
    message_length: int = Field(
        default=200, ge=20, le=2000, description="Truncate listed messages to this many characters."
    )
    directory: str | None = Field(
        default=None,
        description="Read the journal files of this directory (journalctl -D) instead of "
        "the system journal.",
    )


class JournalctlPlugin(PluginBase[JournalctlConfig]):
    """Reports how many errors each unit logged recently, and the latest of them."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="journalctl",
            name="Journal errors",
            version="1.0.0",
            description="Error counts per systemd unit over a time window and the latest "
            "error messages, from journalctl's JSON output.",
            author="Unity developers",
            category=PluginCategory.SYSTEM,
            tags=["journald", "systemd", "logs", "errors"],
            config_schema=JournalctlConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["journalctl"]),
            default_interval=300,
            timeout=60,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        argv = [
            "journalctl",
            *_source(cfg),
            "-o",
            "json",
            "--no-pager",
            f"--since=-{cfg.window}s",
            "-p",
            cfg.priority,
            f"--output-fields={_FIELDS}",
            "-n",
            str(MAX_SCANNED),
            *(arg for unit in cfg.units for arg in ("-u", unit)),
        ]
        result = _checked(await self.runner.run(argv, timeout=_TIMEOUT))
        entries = [_entry(line) for line in result.stdout.splitlines() if line.strip()]
        by_priority = dict.fromkeys(PRIORITIES, 0)
        by_unit: dict[str, int] = {}
        for entry in entries:
            if entry["priority"] in by_priority:
                by_priority[entry["priority"]] += 1
            by_unit[entry["unit"]] = by_unit.get(entry["unit"], 0) + 1
        # journalctl prints oldest first; the newest come last.
        recent = [
            {**entry, "message": _truncate(entry["message"], cfg.message_length)}
            for entry in reversed(entries[-cfg.max_entries :] if cfg.max_entries else [])
        ]
        return {
            "window": cfg.window,
            "total": len(entries),
            "by_priority": by_priority,
            "by_unit": dict(sorted(by_unit.items(), key=lambda item: (-item[1], item[0]))),
            "truncated": int(len(entries) >= MAX_SCANNED),
            "recent": recent,
        }

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        probe = ["journalctl", *_source(cfg), "-n", "0", "--no-pager"]
        try:
            result = _checked(await self.runner.run(probe, timeout=_TIMEOUT))
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        if _NO_FILES in result.stderr:
            return HealthStatus.degraded(
                "journalctl found no journal files on the target, so there is nothing to "
                "count (is systemd-journald running?)"
            )
        if _PARTIAL in result.stderr:
            return HealthStatus.degraded(
                "journalctl sees only the hub user's own messages: add that user to the "
                "systemd-journal or adm group"
            )
        return HealthStatus.healthy()


def _source(cfg: JournalctlConfig) -> list[str]:
    return ["-D", cfg.directory] if cfg.directory else []


def _checked(result: CommandResult) -> CommandResult:
    """``result.check()``, with journalctl's "insufficient permissions" as a missing permission."""
    if not result.ok and _NO_PERMISSION in result.stderr:
        raise DependencyMissingError(
            "journalctl: no journal files were opened due to insufficient permissions; "
            "add the hub's user to the systemd-journal or adm group"
        )
    return result.check()


def _text(value: Any) -> str:
    # journalctl's JSON gives binary field values as byte arrays and huge ones as null.
    if isinstance(value, list):
        if all(isinstance(b, int) for b in value):
            return bytes(b & 0xFF for b in value).decode(errors="replace")
        return _text(value[0]) if value else ""
    return "" if value is None else str(value)


def _entry(line: str) -> dict[str, Any]:
    try:
        raw = json.loads(line)
    except ValueError as exc:
        raise CollectionError(
            f"journalctl printed a line that is not JSON: {line[:100]!r}"
        ) from exc
    if not isinstance(raw, dict):
        raise CollectionError(f"journalctl printed JSON that is not an entry: {line[:100]!r}")
    unit = next(
        (
            text
            for key in ("UNIT", "_SYSTEMD_UNIT", "SYSLOG_IDENTIFIER", "_COMM")
            if (text := _text(raw.get(key)))
        ),
        "unknown",
    )
    priority = _text(raw.get("PRIORITY"))
    timestamp = _text(raw.get("__REALTIME_TIMESTAMP"))
    return {
        "unit": unit,
        "priority": PRIORITIES[int(priority)]
        if priority.isdigit() and int(priority) < 5
        else priority,
        "message": _text(raw.get("MESSAGE")),
        "timestamp": int(timestamp) / 1e6 if timestamp.isdigit() else 0.0,
    }


def _truncate(message: str, length: int) -> str:
    return message if len(message) <= length else message[: length - 1] + "…"
