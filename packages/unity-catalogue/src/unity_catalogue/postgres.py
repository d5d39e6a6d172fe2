"""The ``postgres`` built-in plugin: health and load of a PostgreSQL server.

It connects with asyncpg and reads the statistics views of PostgreSQL 12 and
newer: ``pg_stat_activity`` (connections by state, the longest running query
and transaction, lock waits), ``pg_stat_database`` with ``pg_database_size``
(per-database size, commits, rollbacks, cache hits, deadlocks), and
``pg_stat_replication`` or the WAL replay functions (replication lag, on a
primary per standby and on a standby since the last replayed transaction).
Every query works for an unprivileged role; a role with ``pg_monitor`` sees
the other roles' sessions and the standbys in full.

Health (``assess``, after every run): connections at ``warn_connections_percent``
of max_connections, or a replica (or this standby) lagging more than
``max_replication_lag_seconds``, make it degraded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricDisplay,
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

if TYPE_CHECKING:
    import asyncpg

__all__ = ["PostgresConfig", "PostgresPlugin"]

_COUNTER = MetricKind.COUNTER
_INFO = MetricKind.INFO

# Per database: (column of pg_stat_database, unit, kind, description).
_DATABASE_STATS = [
    ("numbackends", "count", MetricKind.GAUGE, "Sessions connected to the database"),
    ("xact_commit", "count", _COUNTER, "Transactions committed"),
    ("xact_rollback", "count", _COUNTER, "Transactions rolled back"),
    ("blks_read", "count", _COUNTER, "Disk blocks read (shared buffer misses)"),
    ("blks_hit", "count", _COUNTER, "Disk blocks found in shared buffers"),
    ("deadlocks", "count", _COUNTER, "Deadlocks detected"),
    ("temp_bytes", "bytes", _COUNTER, "Bytes written to temporary files"),
    ("conflicts", "count", _COUNTER, "Queries cancelled by recovery conflicts (standbys)"),
]
_TOTALS = ("xact_commit", "xact_rollback", "blks_read", "blks_hit", "deadlocks", "temp_bytes")

_METRICS = [
    MetricField(name="reachable", unit="bool", description="1: the server answered"),
    MetricField(name="version", kind=_INFO, description="Server version (server_version)"),
    MetricField(
        name="version_num",
        unit="version",
        display=MetricDisplay.FACT,
        description="server_version_num",
    ),
    MetricField(name="uptime", unit="s", description="Seconds since the server started"),
    MetricField(name="in_recovery", unit="bool", description="1 on a standby (replica)"),
    MetricField(name="connections.total", unit="count", description="Client sessions"),
    MetricField(
        name="connections.max",
        unit="count",
        display=MetricDisplay.FACT,
        description="max_connections",
    ),
    MetricField(
        name="connections.percent", unit="%", description="Client sessions of max_connections"
    ),
    MetricField(
        name="connections.waiting_on_locks", unit="count", description="Sessions waiting on a lock"
    ),
    MetricField(
        name="connections.by_state.*",
        unit="count",
        description="Client sessions per state: active, idle, idle_in_transaction, ... "
        "(unknown: another role's session, hidden without pg_monitor)",
    ),
    MetricField(
        name="longest_query_seconds",
        unit="s",
        description="Run time of the longest active query (0 when none runs)",
    ),
    MetricField(
        name="longest_transaction_seconds",
        unit="s",
        description="Age of the oldest open transaction (0 when none is open)",
    ),
    *(
        MetricField(name=f"totals.{column}", unit=unit, kind=kind, description=f"{text}, all")
        for column, unit, kind, text in _DATABASE_STATS
        if column in _TOTALS
    ),
    MetricField(
        name="ratios.*",
        unit="%",
        description="cache_hit: share of block reads served from shared buffers, all "
        "databases (present once a block was read)",
    ),
    MetricField(
        name="databases.*.size_bytes",
        unit="bytes",
        description="Size on disk (absent without CONNECT privilege)",
    ),
    *(
        MetricField(name=f"databases.*.{column}", unit=unit, kind=kind, description=text)
        for column, unit, kind, text in _DATABASE_STATS
    ),
    MetricField(
        name="databases.*.cache_hit_ratio",
        unit="%",
        description="Share of block reads served from shared buffers (once a block was read)",
    ),
    MetricField(
        name="replicas_connected", unit="count", description="Standbys streaming from this server"
    ),
    MetricField(
        name="replicas.*.replay_lag_seconds",
        unit="s",
        description="How far the standby's replay is behind (pg_stat_replication.replay_lag)",
    ),
    MetricField(
        name="replicas.*.lag_bytes", unit="bytes", description="WAL not yet replayed by the standby"
    ),
    MetricField(name="replicas.*.state", kind=_INFO, description="WAL sender state"),
    MetricField(
        name="lag.*",
        unit="s",
        description="On a standby, replay: seconds since the last replayed transaction was "
        "committed on the primary (0 when all received WAL is replayed)",
    ),
]

_SERVER = """
SELECT current_setting('server_version') AS version,
       current_setting('server_version_num')::int AS version_num,
       extract(epoch FROM now() - pg_postmaster_start_time())::float8 AS uptime,
       pg_is_in_recovery() AS in_recovery,
       current_setting('max_connections')::int AS max_connections
"""
_ACTIVITY = """
SELECT coalesce(replace(state, ' ', '_'), 'unknown') AS state,
       count(*) AS sessions,
       count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting,
       coalesce(max(extract(epoch FROM now() - query_start))
                FILTER (WHERE state = 'active' AND pid <> pg_backend_pid()), 0)::float8
           AS longest_query,
       coalesce(max(extract(epoch FROM now() - xact_start))
                FILTER (WHERE pid <> pg_backend_pid()), 0)::float8 AS longest_transaction
FROM pg_stat_activity
WHERE backend_type = 'client backend'
GROUP BY 1
"""
_DATABASES = f"""
SELECT d.datname,
       CASE WHEN has_database_privilege(d.oid, 'CONNECT')
            THEN pg_database_size(d.oid) END AS size_bytes,
       {", ".join(f"s.{column}" for column, *_ in _DATABASE_STATS)}
FROM pg_database d JOIN pg_stat_database s ON s.datid = d.oid
WHERE NOT d.datistemplate
ORDER BY d.datname
"""
_REPLICAS = """
SELECT coalesce(nullif(application_name, ''), host(client_addr), pid::text) AS name,
       state,
       extract(epoch FROM replay_lag)::float8 AS replay_lag,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes
FROM pg_stat_replication
"""
_STANDBY_LAG = """
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END::float8
"""


class PostgresConfig(BaseModel):
    """Config of the ``postgres`` plugin."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="Server host or socket dir.")
    port: int = Field(default=5432, ge=1, le=65535, description="Server port.")
    user: str = Field(default="postgres", min_length=1, description="Role to connect as.")
    password: SecretStr | None = Field(default=None, description="Password of the role.")
    database: str = Field(default="postgres", min_length=1, description="Database to connect to.")
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = Field(
        default="prefer", description="TLS mode, as libpq's sslmode."
    )
    connect_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds to connect.")
    warn_connections_percent: float = Field(
        default=90.0, gt=0, le=100, description="Degraded at this share of max_connections."
    )
    max_replication_lag_seconds: float = Field(
        default=300.0, gt=0, description="Degraded when a replica lags more than this."
    )


class PostgresPlugin(PluginBase[PostgresConfig]):
    """Watches a PostgreSQL server: connections, databases, transactions, replication."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="postgres",
            name="PostgreSQL",
            version="1.0.0",
            description="Connections by state, database sizes, transactions, cache hit ratio, "
            "deadlocks, long queries and replication lag of a PostgreSQL server.",
            author="Unity developers",
            category=PluginCategory.DATABASE,
            tags=["postgresql", "postgres", "database", "sql", "replication"],
            config_schema=PostgresConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["asyncpg"]),
            default_interval=60,
            timeout=30,
            alert_rules=[
                AlertRule(
                    id="replica-lag",
                    metric="replicas.*.replay_lag_seconds",
                    threshold=300,
                    clear=60,
                    summary="standby {item} of {host} replays {value} s behind",
                ),
                AlertRule(
                    id="standby-lag",
                    metric="lag.*",
                    threshold=300,
                    clear=60,
                    summary="this standby ({host}) is {value} s behind its primary",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """A PostgreSQL server listening here: port 5432, or a postgres process on another."""
        return service_proposals(
            cls,
            facts,
            service="PostgreSQL",
            ports=[5432],
            processes=["postgres", "postmaster"],
            config=lambda socket: {"host": socket.host, "port": socket.port},
            credential=lambda socket: "password",
            advice="It connects as the postgres role to the postgres database; any role "
            "will do, one with pg_monitor sees every session.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        # Imported here: a hub on SQLite that never runs this plugin never loads asyncpg.
        import asyncpg

        connection = await _connect(cfg)
        try:
            return await _collect(connection)
        except asyncpg.PostgresError as exc:
            raise CollectionError(f"PostgreSQL query failed: {exc}") from exc
        except (OSError, asyncpg.InterfaceError) as exc:
            raise PluginNotReadyError(f"lost the PostgreSQL connection: {exc}") from exc
        finally:
            await connection.close(timeout=cfg.connect_timeout)

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Connections near max_connections or a replica lagging: degraded."""
        cfg = self.config
        connections = document["connections"]
        problems = []
        if connections["percent"] >= cfg.warn_connections_percent:
            problems.append(f"{connections['total']} of {connections['max']} connections in use")
        lags = {
            name: replica["replay_lag_seconds"]
            for name, replica in document["replicas"].items()
            if replica.get("replay_lag_seconds", 0) > cfg.max_replication_lag_seconds
        }
        if document.get("lag", {}).get("replay", 0) > cfg.max_replication_lag_seconds:
            lags["this standby"] = document["lag"]["replay"]
        problems.extend(f"{name} lags {seconds:.0f} s" for name, seconds in lags.items())
        if problems:
            return HealthStatus.degraded("; ".join(problems), lag_seconds=lags)
        role = "standby" if document["in_recovery"] else "primary"
        return HealthStatus.healthy(
            f"PostgreSQL {document['version']} {role}, "
            f"{connections['total']} of {connections['max']} connections"
        )


async def _connect(cfg: PostgresConfig) -> asyncpg.Connection:
    import asyncpg

    where = f"PostgreSQL at {cfg.host}:{cfg.port}"
    try:
        return await asyncpg.connect(
            host=cfg.host,
            port=cfg.port,
            user=cfg.user,
            password=cfg.password.get_secret_value() if cfg.password else None,
            database=cfg.database,
            ssl=cfg.sslmode,
            timeout=cfg.connect_timeout,
            server_settings={"application_name": "unity-postgres-monitor"},
        )
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
        raise PluginAuthError(f"{where} refused role {cfg.user!r}: {exc}") from exc
    except (asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
        raise PluginNotReadyError(f"{where} does not accept connections now: {exc}") from exc
    except asyncpg.PostgresError as exc:
        raise CollectionError(f"{where} refused the connection: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise PluginNotReadyError(f"{where} is not reachable: {reason}") from exc
    except asyncpg.InterfaceError as exc:
        raise CollectionError(f"cannot connect to {where}: {exc}") from exc


async def _collect(connection: asyncpg.Connection) -> dict[str, Any]:
    server = await connection.fetchrow(_SERVER)
    assert server is not None
    activity = await connection.fetch(_ACTIVITY)
    total = sum(row["sessions"] for row in activity)
    document: dict[str, Any] = {
        "reachable": 1,
        "version": server["version"],
        "version_num": server["version_num"],
        "uptime": server["uptime"],
        "in_recovery": int(server["in_recovery"]),
        "connections": {
            "total": total,
            "max": server["max_connections"],
            "percent": 100 * total / server["max_connections"],
            "waiting_on_locks": sum(row["waiting"] for row in activity),
            "by_state": {row["state"]: row["sessions"] for row in activity},
        },
        "longest_query_seconds": max((row["longest_query"] for row in activity), default=0.0),
        "longest_transaction_seconds": max(
            (row["longest_transaction"] for row in activity), default=0.0
        ),
    }
    databases: dict[str, dict[str, Any]] = {}
    for row in await connection.fetch(_DATABASES):
        stats = {key: value for key, value in row.items() if key != "datname" and value is not None}
        ratio = _hit_ratio(stats.get("blks_hit", 0), stats.get("blks_read", 0))
        if ratio is not None:
            stats["cache_hit_ratio"] = ratio
        databases[row["datname"]] = stats
    document["databases"] = databases
    document["totals"] = {
        column: sum(db.get(column, 0) for db in databases.values()) for column in _TOTALS
    }
    ratio = _hit_ratio(document["totals"]["blks_hit"], document["totals"]["blks_read"])
    document["ratios"] = {} if ratio is None else {"cache_hit": ratio}
    replicas: dict[str, dict[str, Any]] = {}
    if not server["in_recovery"]:
        for row in await connection.fetch(_REPLICAS):
            replica: dict[str, Any] = {"state": row["state"]}
            if row["replay_lag"] is not None:
                replica["replay_lag_seconds"] = row["replay_lag"]
            if row["lag_bytes"] is not None:
                replica["lag_bytes"] = row["lag_bytes"]
            replicas[row["name"]] = replica
    document["replicas_connected"] = len(replicas)
    document["replicas"] = replicas
    if server["in_recovery"]:
        lag = await connection.fetchval(_STANDBY_LAG)
        document["lag"] = {} if lag is None else {"replay": lag}
    return document


def _hit_ratio(hits: int, reads: int) -> float | None:
    lookups = hits + reads
    return 100 * hits / lookups if lookups else None
