"""The ``mysql`` built-in plugin: health and load of a MariaDB or MySQL server.

It connects with asyncmy and reads ``SHOW GLOBAL STATUS`` (threads, query
counters, slow queries, connections, InnoDB buffer pool), ``SHOW GLOBAL
VARIABLES`` (max_connections, buffer pool size) and the replica status:
``SHOW ALL REPLICAS STATUS`` on MariaDB 10.5+, ``SHOW REPLICA STATUS`` on
MySQL 8.0.22+, ``SHOW SLAVE STATUS`` before that; both column namings
(Slave_/Master_ and Replica_/Source_) are read. The replica status needs the
REPLICATION CLIENT (MariaDB: SLAVE MONITOR) privilege; without it that part
is left out.

Health (``assess``, after every run): a stopped replication thread makes it
unhealthy; replication lag over ``max_replication_lag_seconds`` or connections
at ``warn_connections_percent`` of max_connections degraded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    from asyncmy.errors import Error as MySQLError

__all__ = ["MysqlConfig", "MysqlPlugin"]

# Server error codes (mysqld_error.h, errmsg.h) that mean "credentials refused".
AUTH_ERRORS = {1044, 1045, 1698, 1251}
# ... and that mean "not reachable or not accepting connections now".
NOT_READY_ERRORS = {1040, 1053, 2002, 2003, 2006, 2013}

_COUNTER = MetricKind.COUNTER
_GAUGE = MetricKind.GAUGE

# (document path, SHOW GLOBAL STATUS variable, unit, kind, description)
_STATUS = [
    ("uptime", "Uptime", "s", _GAUGE, "Seconds since the server started"),
    ("threads.connected", "Threads_connected", "count", _GAUGE, "Open client connections"),
    ("threads.running", "Threads_running", "count", _GAUGE, "Threads not sleeping"),
    ("threads.cached", "Threads_cached", "count", _GAUGE, "Threads in the thread cache"),
    ("threads.created", "Threads_created", "count", _COUNTER, "Threads created"),
    ("connections.total", "Connections", "count", _COUNTER, "Connection attempts"),
    ("connections.aborted", "Aborted_connects", "count", _COUNTER, "Failed connection attempts"),
    ("connections.max_used", "Max_used_connections", "count", _GAUGE, "Most connections at once"),
    ("queries.questions", "Questions", "count", _COUNTER, "Statements sent by clients"),
    ("queries.total", "Queries", "count", _COUNTER, "Statements, stored programs' included"),
    ("queries.slow", "Slow_queries", "count", _COUNTER, "Queries over long_query_time"),
    (
        "innodb.buffer_pool_read_requests",
        "Innodb_buffer_pool_read_requests",
        "count",
        _COUNTER,
        "Logical reads from the InnoDB buffer pool",
    ),
    (
        "innodb.buffer_pool_reads",
        "Innodb_buffer_pool_reads",
        "count",
        _COUNTER,
        "Reads the buffer pool could not serve (went to disk)",
    ),
    (
        "innodb.buffer_pool_pages_total",
        "Innodb_buffer_pool_pages_total",
        "pages",
        _GAUGE,
        "Pages in the buffer pool",
    ),
    (
        "innodb.buffer_pool_pages_free",
        "Innodb_buffer_pool_pages_free",
        "pages",
        _GAUGE,
        "Free pages in the buffer pool",
    ),
]

_REPLICA = "replication.*"

_METRICS = [
    MetricField(name="reachable", unit="bool", description="1: the server answered"),
    MetricField(name="version", kind=MetricKind.INFO, description="Server version (VERSION())"),
    MetricField(name="flavor", kind=MetricKind.INFO, description="MariaDB or MySQL"),
    *(
        MetricField(name=path, unit=unit, kind=kind, description=f"{text} ({variable})")
        for path, variable, unit, kind, text in _STATUS
    ),
    MetricField(
        name="connections.max",
        unit="count",
        display=MetricDisplay.FACT,
        description="max_connections",
    ),
    MetricField(
        name="connections.percent", unit="%", description="Open connections of max_connections"
    ),
    MetricField(
        name="innodb.buffer_pool_size", unit="bytes", description="innodb_buffer_pool_size"
    ),
    MetricField(
        name="ratios.*",
        unit="%",
        description="innodb_buffer_pool_hit: share of InnoDB reads served from the buffer "
        "pool (present once there was a read)",
    ),
    MetricField(
        name="is_replica", unit="bool", description="1 when the server replicates from a primary"
    ),
    MetricField(
        name=f"{_REPLICA}.io_running",
        unit="bool",
        description="1 when the replication I/O thread runs (per connection/channel)",
    ),
    MetricField(
        name=f"{_REPLICA}.sql_running",
        unit="bool",
        description="1 when the replication SQL thread runs",
    ),
    MetricField(
        name=f"{_REPLICA}.seconds_behind",
        unit="s",
        description="Seconds_Behind_Master/Source (absent while a thread is stopped)",
    ),
    MetricField(
        name=f"{_REPLICA}.source",
        kind=MetricKind.INFO,
        description="host:port of the primary",
    ),
    MetricField(
        name=f"{_REPLICA}.last_error",
        kind=MetricKind.INFO,
        description="Last I/O or SQL error (absent when there is none)",
    ),
]

_VARIABLES = ("max_connections", "innodb_buffer_pool_size", "version_comment")


class MysqlConfig(BaseModel):
    """Config of the ``mysql`` plugin."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(default="127.0.0.1", min_length=1, description="Server host.")
    port: int = Field(default=3306, ge=1, le=65535, description="Server port.")
    user: str = Field(default="root", min_length=1, description="User to connect as.")
    password: SecretStr | None = Field(default=None, description="Password of the user.")
    database: str | None = Field(default=None, description="Database to select (optional).")
    connect_timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds to connect.")
    warn_connections_percent: float = Field(
        default=90.0, gt=0, le=100, description="Degraded at this share of max_connections."
    )
    max_replication_lag_seconds: float = Field(
        default=300.0, gt=0, description="Degraded when a replica lags more than this."
    )


class MysqlPlugin(PluginBase[MysqlConfig]):
    """Watches a MariaDB/MySQL server: threads, queries, connections, InnoDB, replication."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="mysql",
            name="MySQL / MariaDB",
            version="1.0.0",
            description="Version, uptime, threads, query and slow-query counters, connections, "
            "InnoDB buffer pool hit ratio and replica status of a MariaDB or MySQL server.",
            author="Unity developers",
            category=PluginCategory.DATABASE,
            tags=["mysql", "mariadb", "database", "sql", "replication"],
            config_schema=MysqlConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["asyncmy"]),
            default_interval=60,
            timeout=30,
            alert_rules=[
                AlertRule(
                    id="replica-lag",
                    metric="replication.*.seconds_behind",
                    threshold=300,
                    clear=60,
                    summary="replication {item} on {host} is {value} s behind",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """A MariaDB or MySQL server listening here: port 3306, or mysqld/mariadbd on another."""
        return service_proposals(
            cls,
            facts,
            service="MySQL/MariaDB",
            ports=[3306],
            processes=["mysqld", "mariadbd"],
            config=lambda socket: {"host": socket.host, "port": socket.port},
            credential=lambda socket: "password",
            advice="It connects as root; any user will do, one with REPLICATION CLIENT "
            "(MariaDB: SLAVE MONITOR) sees the replica status too.",
        )

    async def collect_data(self) -> dict[str, Any]:
        cfg = self.config
        where = f"MySQL at {cfg.host}:{cfg.port}"
        # Imported here: a hub that never runs this plugin never loads the driver.
        import asyncmy
        from asyncmy.errors import Error as MySQLError

        try:
            async with asyncio.timeout(cfg.connect_timeout):
                connection = await asyncmy.connect(
                    host=cfg.host,
                    port=cfg.port,
                    user=cfg.user,
                    password=cfg.password.get_secret_value() if cfg.password else "",
                    db=cfg.database,
                    connect_timeout=cfg.connect_timeout,
                )
        except TimeoutError as exc:
            raise PluginNotReadyError(f"{where} is not reachable: timed out") from exc
        except MySQLError as exc:
            raise _error(where, cfg.user, exc) from exc
        try:
            return await _collect(connection)
        except MySQLError as exc:
            raise _error(where, cfg.user, exc) from exc
        finally:
            await connection.ensure_closed()

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """A replication thread stopped: unhealthy; lag or connections near the max: degraded."""
        cfg = self.config
        failing: list[str] = []
        warnings: list[str] = []
        for name, replica in document["replication"].items():
            stopped = [
                thread for thread in ("io", "sql") if not replica.get(f"{thread}_running", 1)
            ]
            if stopped:
                reason = replica.get("last_error", "no error given")
                failing.append(f"replication {name}: {' and '.join(stopped)} stopped ({reason})")
            elif replica.get("seconds_behind", 0) > cfg.max_replication_lag_seconds:
                warnings.append(f"replication {name} lags {replica['seconds_behind']} s")
        if document["connections"]["percent"] >= cfg.warn_connections_percent:
            warnings.append(
                f"{document['threads']['connected']} of {document['connections']['max']} "
                "connections in use"
            )
        if failing:
            return HealthStatus.unhealthy("; ".join(failing + warnings))
        if warnings:
            return HealthStatus.degraded("; ".join(warnings))
        return HealthStatus.healthy(f"{document['flavor']} {document['version']}")


def _error(where: str, user: str, exc: MySQLError) -> PluginError:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    message = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if code in AUTH_ERRORS:
        return PluginAuthError(f"{where} refused user {user!r}: {message}")
    if code in NOT_READY_ERRORS:
        return PluginNotReadyError(f"{where} is not reachable: {message}")
    return CollectionError(f"{where}: {message} (error {code})")


async def _rows(connection: Any, statement: str) -> tuple[list[str], Sequence[Sequence[Any]]]:
    async with connection.cursor() as cursor:
        await cursor.execute(statement)
        rows = await cursor.fetchall()
        columns = [column[0] for column in cursor.description or ()]
    return columns, rows


async def _collect(connection: Any) -> dict[str, Any]:
    _, version_rows = await _rows(connection, "SELECT VERSION()")
    version = str(version_rows[0][0])
    _, status_rows = await _rows(connection, "SHOW GLOBAL STATUS")
    status = {str(name): value for name, value in status_rows}
    names = ", ".join(f"'{name}'" for name in _VARIABLES)
    _, variable_rows = await _rows(
        connection, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({names})"
    )
    variables = {str(name): value for name, value in variable_rows}
    document: dict[str, Any] = {
        "reachable": 1,
        "version": version,
        "flavor": "MariaDB"
        if "mariadb" in f"{version} {variables.get('version_comment', '')}".lower()
        else "MySQL",
    }
    for path, variable, *_ in _STATUS:
        section, _, key = path.rpartition(".")
        target = document.setdefault(section, {}) if section else document
        target[key] = _number(status.get(variable, 0))
    max_connections = int(variables.get("max_connections", 0))
    document["connections"]["max"] = max_connections
    document["connections"]["percent"] = (
        100 * document["threads"]["connected"] / max_connections if max_connections else 0.0
    )
    document["innodb"]["buffer_pool_size"] = int(variables.get("innodb_buffer_pool_size", 0))
    requests = document["innodb"]["buffer_pool_read_requests"]
    misses = document["innodb"]["buffer_pool_reads"]
    document["ratios"] = (
        {"innodb_buffer_pool_hit": 100 * (1 - misses / requests)} if requests else {}
    )
    document["replication"] = await _replication(connection)
    document["is_replica"] = int(bool(document["replication"]))
    return document


def _number(value: Any) -> int | float:
    text = str(value)
    try:
        return int(text)
    except ValueError:
        return float(text)


async def _replication(connection: Any) -> dict[str, dict[str, Any]]:
    """The replica status, one entry per connection (MariaDB) or channel (MySQL)."""
    from asyncmy.errors import Error as MySQLError

    for statement in ("SHOW ALL REPLICAS STATUS", "SHOW REPLICA STATUS", "SHOW SLAVE STATUS"):
        try:
            columns, rows = await _rows(connection, statement)
        except MySQLError as exc:
            code = exc.args[0] if exc.args else None
            if code in (1227, 1045):  # no REPLICATION CLIENT / SLAVE MONITOR privilege
                return {}
            continue  # syntax this server does not know: try the older statement
        return dict(_replica(dict(zip(columns, row, strict=True))) for row in rows)
    return {}


def _replica(row: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    def field(*names: str) -> Any:
        return next((row[name] for name in names if row.get(name) not in (None, "")), None)

    name = field("Connection_name", "Channel_Name", "Channel_name") or "default"
    replica: dict[str, Any] = {
        "io_running": int(field("Slave_IO_Running", "Replica_IO_Running") == "Yes"),
        "sql_running": int(field("Slave_SQL_Running", "Replica_SQL_Running") == "Yes"),
        "source": f"{field('Master_Host', 'Source_Host')}:{field('Master_Port', 'Source_Port')}",
    }
    behind = field("Seconds_Behind_Master", "Seconds_Behind_Source")
    if behind is not None:
        replica["seconds_behind"] = _number(behind)
    error = field("Last_IO_Error", "Last_SQL_Error", "Last_Error")
    if error:
        replica["last_error"] = str(error)
    return str(name), replica
