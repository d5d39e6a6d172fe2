"""The ``redis`` built-in plugin: health and load of a Redis (or Valkey) server.

It sends one ``INFO all`` with redis-py's asyncio client (RESP, optionally
over TLS) and reports the parsed sections: server (version, mode, uptime),
clients, memory (used, peak, RSS, maxmemory, fragmentation), stats (ops per
second, commands, keyspace hits and misses, evicted and expired keys),
keyspace (keys, keys with a TTL, average TTL per database) and replication
(role, connected replicas and their lag; on a replica, the link to its
primary).

Health (``assess``, after every run): on a replica, the link to its primary
down makes it unhealthy; used memory at ``warn_memory_percent`` of maxmemory
degraded.
"""

from __future__ import annotations

import ssl
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginAuthError,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    PluginNotReadyError,
    Proposal,
    Requirements,
)

from ._proposing import service_proposals

__all__ = ["RedisConfig", "RedisPlugin"]

_COUNTER = MetricKind.COUNTER
_GAUGE = MetricKind.GAUGE
_INFO = MetricKind.INFO

# (document path, INFO field, unit, kind, description)
_FIELDS = [
    ("uptime", "uptime_in_seconds", "s", _GAUGE, "Seconds since the server started"),
    ("clients.connected", "connected_clients", "count", _GAUGE, "Client connections"),
    ("clients.blocked", "blocked_clients", "count", _GAUGE, "Clients in a blocking call"),
    ("memory.used", "used_memory", "bytes", _GAUGE, "Memory allocated by Redis"),
    ("memory.peak", "used_memory_peak", "bytes", _GAUGE, "Peak of used memory"),
    ("memory.rss", "used_memory_rss", "bytes", _GAUGE, "Resident set size of the process"),
    ("memory.max", "maxmemory", "bytes", _GAUGE, "maxmemory (0: no limit)"),
    (
        "memory.fragmentation_ratio",
        "mem_fragmentation_ratio",
        "ratio",
        _GAUGE,
        "RSS divided by used memory",
    ),
    ("stats.ops_per_sec", "instantaneous_ops_per_sec", "ops/s", _GAUGE, "Commands per second"),
    ("stats.commands_processed", "total_commands_processed", "count", _COUNTER, "Commands run"),
    (
        "stats.connections_received",
        "total_connections_received",
        "count",
        _COUNTER,
        "Connections accepted",
    ),
    (
        "stats.rejected_connections",
        "rejected_connections",
        "count",
        _COUNTER,
        "Connections refused (maxclients)",
    ),
    ("stats.keyspace_hits", "keyspace_hits", "count", _COUNTER, "Key lookups that found the key"),
    ("stats.keyspace_misses", "keyspace_misses", "count", _COUNTER, "Key lookups that missed"),
    ("stats.evicted_keys", "evicted_keys", "count", _COUNTER, "Keys evicted by maxmemory"),
    ("stats.expired_keys", "expired_keys", "count", _COUNTER, "Keys removed by their TTL"),
    (
        "replication.connected_replicas",
        "connected_slaves",
        "count",
        _GAUGE,
        "Replicas connected to this server",
    ),
]

_METRICS = [
    MetricField(name="reachable", unit="bool", description="1: the server answered"),
    MetricField(name="version", kind=_INFO, description="Server version (redis_version)"),
    MetricField(name="mode", kind=_INFO, description="standalone, cluster or sentinel"),
    MetricField(name="role", kind=_INFO, description="master or slave (replica)"),
    *(
        MetricField(name=path, unit=unit, kind=kind, description=f"{text} ({field})")
        for path, field, unit, kind, text in _FIELDS
    ),
    MetricField(
        name="ratios.*",
        unit="%",
        description="keyspace_hit: hits of all key lookups (once there was one); "
        "memory_of_max: used memory of maxmemory (when a limit is set)",
    ),
    MetricField(name="keyspace.*.keys", unit="count", description="Keys in the database"),
    MetricField(name="keyspace.*.expires", unit="count", description="Keys with a TTL"),
    MetricField(name="keyspace.*.avg_ttl", unit="ms", description="Average TTL of those keys"),
    MetricField(
        name="replicas.*.lag",
        unit="s",
        description="Seconds since the replica last acknowledged (on a primary)",
    ),
    MetricField(
        name="replicas.*.offset_behind",
        unit="bytes",
        description="Replication stream the replica has not acknowledged yet",
    ),
    MetricField(name="replicas.*.state", kind=_INFO, description="Replica state (online...)"),
    MetricField(
        name="primaries.*.link_up",
        unit="bool",
        description="1 when this replica's link to its primary is up (on a replica)",
    ),
    MetricField(
        name="primaries.*.last_io_seconds_ago",
        unit="s",
        description="Seconds since the last exchange with the primary (-1 before the first)",
    ),
]


class RedisConfig(BaseModel):
    """Config of the ``redis`` plugin."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="Server host.")
    port: int = Field(default=6379, ge=1, le=65535, description="Server port.")
    username: str | None = Field(default=None, description="ACL user (Redis 6+); none: default.")
    password: SecretStr | None = Field(default=None, description="Password (requirepass or ACL).")
    db: int = Field(default=0, ge=0, description="Database number to select.")
    tls: bool = Field(default=False, description="Connect over TLS.")
    verify_tls: bool = Field(default=True, description="Verify the server certificate (TLS).")
    ca_bundle: str | None = Field(
        default=None, description="PEM file of CA certificates to trust (TLS)."
    )
    timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds to connect and answer.")
    warn_memory_percent: float = Field(
        default=90.0, gt=0, le=100, description="Degraded above this share of maxmemory."
    )


class RedisPlugin(PluginBase[RedisConfig]):
    """Watches a Redis server: memory, clients, throughput, hit ratio, keys, replication."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="redis",
            name="Redis",
            version="1.0.0",
            description="Version, uptime, clients, memory, ops/s, keyspace hit ratio, keys per "
            "database, evictions and replication of a Redis server.",
            author="Unity developers",
            category=PluginCategory.DATABASE,
            tags=["redis", "valkey", "cache", "key-value", "database"],
            config_schema=RedisConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["redis"]),
            default_interval=30,
            timeout=20,
            alert_rules=[
                AlertRule(
                    id="replica-lag",
                    metric="replicas.*.lag",
                    threshold=30,
                    clear=10,
                    summary="replica {item} of {host} last acknowledged {value} s ago",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """A Redis or Valkey server listening here: port 6379, or the server on another.

        A server reachable from this host only is taken to need no password (the
        default of Redis' protected mode); one open to the network is asked for one.
        """
        return service_proposals(
            cls,
            facts,
            service="Redis",
            ports=[6379],
            processes=["redis-server", "valkey-server"],
            config=lambda socket: {"host": socket.host, "port": socket.port},
            credential=lambda socket: None if socket.loopback_only else "password",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        where = f"Redis at {cfg.host}:{cfg.port}"
        # Imported here: a hub that never runs this plugin never loads the client.
        from redis import exceptions as redis_errors
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = Redis(
            host=cfg.host,
            port=cfg.port,
            db=cfg.db,
            username=cfg.username,
            password=cfg.password.get_secret_value() if cfg.password else None,
            ssl=cfg.tls,
            ssl_ca_certs=cfg.ca_bundle,
            ssl_cert_reqs="required" if cfg.verify_tls else "none",
            ssl_check_hostname=cfg.verify_tls,
            socket_timeout=cfg.timeout,
            socket_connect_timeout=cfg.timeout,
            # The hub owns retries; one attempt per run keeps failures fast and clear.
            retry=Retry(NoBackoff(), 0),
            client_name="unity-redis-monitor",
        )
        try:
            info = await client.info("all")
        except redis_errors.AuthenticationError as exc:
            raise _auth_error(where, cfg, exc) from exc
        except redis_errors.ResponseError as exc:
            if str(exc).startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                raise _auth_error(where, cfg, exc) from exc
            raise CollectionError(f"{where} refused INFO: {exc}") from exc
        except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
            if _tls_rejected(exc):
                raise CollectionError(f"{where}: TLS certificate verification failed") from exc
            raise PluginNotReadyError(f"{where} is not reachable: {exc}") from exc
        except redis_errors.RedisError as exc:
            raise CollectionError(f"{where}: {exc}") from exc
        finally:
            await client.aclose()
        return _document(info)

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """The link to the primary down: unhealthy; memory near maxmemory: degraded."""
        cfg = self.config
        down = [name for name, link in document["primaries"].items() if not link["link_up"]]
        if down:
            return HealthStatus.unhealthy(f"link to primary {', '.join(down)} is down")
        used = document["ratios"].get("memory_of_max", 0)
        if used >= cfg.warn_memory_percent:
            return HealthStatus.degraded(f"{used:.0f} % of maxmemory in use")
        return HealthStatus.healthy(f"Redis {document['version']} ({document['role']})")


def _auth_error(where: str, cfg: RedisConfig, exc: Exception) -> PluginAuthError:
    if cfg.password is None:
        return PluginAuthError(f"{where} requires a password and none is configured")
    return PluginAuthError(f"{where} refused the credentials: {exc}")


def _tls_rejected(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _number(value: Any) -> int | float:
    return value if isinstance(value, int | float) else float(value)


def _document(info: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {
        "reachable": 1,
        "version": str(info.get("redis_version", "")),
        "mode": str(info.get("redis_mode", "standalone")),
        "role": str(info.get("role", "")),
    }
    for path, field, *_ in _FIELDS:
        section, _, key = path.rpartition(".")
        target = document.setdefault(section, {}) if section else document
        target[key] = _number(info.get(field, 0))
    ratios: dict[str, float] = {}
    lookups = document["stats"]["keyspace_hits"] + document["stats"]["keyspace_misses"]
    if lookups:
        ratios["keyspace_hit"] = 100 * document["stats"]["keyspace_hits"] / lookups
    if document["memory"]["max"]:
        ratios["memory_of_max"] = 100 * document["memory"]["used"] / document["memory"]["max"]
    document["ratios"] = ratios
    document["keyspace"] = {
        name: {key: _number(value) for key, value in stats.items()}
        for name, stats in info.items()
        if name.startswith("db") and name[2:].isdigit() and isinstance(stats, dict)
    }
    offset = info.get("master_repl_offset", 0)
    replicas: dict[str, dict[str, Any]] = {}
    for name, replica in info.items():
        if name.startswith("slave") and name[5:].isdigit() and isinstance(replica, dict):
            entry: dict[str, Any] = {"state": str(replica.get("state", ""))}
            if "lag" in replica:
                entry["lag"] = _number(replica["lag"])
            if "offset" in replica:
                entry["offset_behind"] = max(0, offset - _number(replica["offset"]))
            replicas[f"{replica.get('ip')}:{replica.get('port')}"] = entry
    document["replicas"] = replicas
    primaries: dict[str, dict[str, Any]] = {}
    if "master_host" in info:
        primaries[f"{info['master_host']}:{info.get('master_port')}"] = {
            "link_up": int(info.get("master_link_status") == "up"),
            "last_io_seconds_ago": _number(info.get("master_last_io_seconds_ago", -1)),
        }
    document["primaries"] = primaries
    return document
