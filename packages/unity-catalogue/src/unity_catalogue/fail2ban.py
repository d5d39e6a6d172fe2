"""The ``fail2ban`` built-in plugin: jails and their failure and ban counts.

Runs ``fail2ban-client status`` for the jail list, then ``fail2ban-client status
<jail>`` per jail (tested with fail2ban 1.0.2), and reports currently / total
failed, currently / total banned and the number of banned addresses per jail
and in sum. fail2ban-client has no JSON output; its status tree (``|- Key:
value`` lines) is parsed by key. The server's socket is root-only by default.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    CommandResult,
    DependencyMissingError,
    HealthStatus,
    MetricField,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    PluginNotReadyError,
    Requirements,
)

__all__ = ["Fail2banConfig", "Fail2banPlugin"]

_TIMEOUT = 15.0
# "|  |- Currently failed:\t3" -> ("Currently failed", "3")
_LINE = re.compile(r"^[\s|`-]*(?P<key>[^:]+):\s*(?P<value>.*)$")
# fail2ban logs errors as "2024-05-13 10:00:00,123 fail2ban   [123]: ERROR   <message>".
_LOGGED = re.compile(r"^.*?\b(?:ERROR|CRITICAL|WARNING)\s+(?P<message>.*)$")
COUNTS = {
    "Currently failed": "currently_failed",
    "Total failed": "total_failed",
    "Currently banned": "currently_banned",
    "Total banned": "total_banned",
}

_METRICS = [
    MetricField(name="jails", unit="count", description="Jails reported"),
    MetricField(
        name="currently_failed",
        unit="count",
        description="Failures within findtime, not yet banned, of all jails",
    ),
    MetricField(
        name="total_failed",
        unit="count",
        description="Failures seen since each jail started, all jails",
    ),
    MetricField(name="currently_banned", unit="count", description="Bans in force, all jails"),
    MetricField(
        name="total_banned", unit="count", description="Bans since each jail started, all jails"
    ),
    MetricField(
        name="per_jail.*.currently_failed",
        unit="count",
        description="Failures within findtime, not yet banned",
    ),
    MetricField(
        name="per_jail.*.total_failed",
        unit="count",
        description="Failures since the jail started",
    ),
    MetricField(name="per_jail.*.currently_banned", unit="count", description="Bans in force"),
    MetricField(
        name="per_jail.*.total_banned", unit="count", description="Bans since the jail started"
    ),
    MetricField(
        name="per_jail.*.banned_ips",
        unit="count",
        description="Addresses on the jail's banned list",
    ),
]


class Fail2banConfig(BaseModel):
    """Config of the ``fail2ban`` plugin."""

    model_config = ConfigDict(extra="forbid")

    jails: list[str] = Field(
        default_factory=list,
        description="Report only these jails; empty reports every running jail. A listed "
        "jail that is not running makes the health check degraded.",
    )
    socket: str | None = Field(
        default=None,
        description="Socket of the fail2ban server (fail2ban-client -s); empty uses the "
        "one in fail2ban.conf (/var/run/fail2ban/fail2ban.sock).",
    )


class Fail2banPlugin(PluginBase[Fail2banConfig]):
    """Reports how many attackers each fail2ban jail is catching and banning."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="fail2ban",
            name="fail2ban",
            version="1.0.0",
            description="fail2ban jails with currently / total failed and banned counts and "
            "the number of banned addresses, from fail2ban-client.",
            author="Unity developers",
            category=PluginCategory.SECURITY,
            tags=["fail2ban", "security", "bans", "intrusion", "ssh"],
            config_schema=Fail2banConfig,
            metrics=_METRICS,
            requires=Requirements(commands=["fail2ban-client"], root=True),
            default_interval=60,
            timeout=30,
            supports_remote=True,
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        running = await self._jail_list(cfg)
        jails = [j for j in running if j in cfg.jails] if cfg.jails else running
        statuses = await asyncio.gather(*(self._jail(cfg, jail) for jail in jails))
        per_jail = dict(zip(jails, statuses, strict=True))
        totals = {key: sum(j[key] for j in per_jail.values()) for key in COUNTS.values()}
        return {"jails": len(per_jail), **totals, "per_jail": per_jail}

    async def health_check(self) -> HealthStatus:
        cfg = self.config
        try:
            running = await self._jail_list(cfg)
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess({"per_jail": dict.fromkeys(running)})

    async def _client(self, cfg: Fail2banConfig, *args: str) -> str:
        argv = ["fail2ban-client", *(["-s", cfg.socket] if cfg.socket else []), *args]
        return _checked(await self.runner.run(argv, timeout=_TIMEOUT)).stdout

    async def _jail_list(self, cfg: Fail2banConfig) -> list[str]:
        fields = _fields(await self._client(cfg, "status"))
        if "Jail list" not in fields:
            raise CollectionError("fail2ban-client status printed no jail list")
        return [j.strip() for j in fields["Jail list"].split(",") if j.strip()]

    async def _jail(self, cfg: Fail2banConfig, jail: str) -> dict[str, int]:
        fields = _fields(await self._client(cfg, "status", jail))
        counts = {name: _int(fields.get(key)) for key, name in COUNTS.items()}
        counts["banned_ips"] = len(fields.get("Banned IP list", "").split())
        return counts

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A jail named in the config that is not running: degraded."""
        cfg = self.config
        running = document["per_jail"]
        missing = [jail for jail in cfg.jails if jail not in running]
        if missing:
            return HealthStatus.degraded(
                f"jail(s) not running: {', '.join(missing)}", missing=missing
            )
        return HealthStatus.healthy(f"{len(running)} jail(s) running")


def _fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            fields[match.group("key").strip()] = match.group("value").strip()
    return fields


def _int(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() else 0


def _checked(result: CommandResult) -> CommandResult:
    """``result.check()``, with fail2ban's own "server down" and "not root" messages."""
    if result.ok or result.exit_status in (126, 127):
        return result.check()
    lines = (result.stderr or result.stdout).strip().splitlines()
    match = _LOGGED.match(lines[-1]) if lines else None
    reason = match.group("message").strip() if match else (lines[-1] if lines else "")
    if "Failed to access socket path" in reason:
        raise PluginNotReadyError(f"fail2ban server is not running: {reason}")
    if "permission denied" in reason.lower():
        raise DependencyMissingError(f"fail2ban-client: {reason}")
    raise CollectionError(f"fail2ban-client exited with {result.exit_status}: {reason}")
