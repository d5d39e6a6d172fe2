"""``postgres`` against real PostgreSQL servers on loopback.

Most tests use the local server (``UNITY_TEST_POSTGRES_URL``, default
postgresql://postgres@127.0.0.1:5432/test). That server trusts every loopback
connection, so it cannot refuse a wrong password: the authentication and
replication tests start a private primary (password auth, scram-sha-256) and a
streaming standby made with ``pg_basebackup``, both on free ports, run as the
``postgres`` system user, and removed afterwards.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from applications_support import check_metadata, collect_checked, free_port, make, timed_collect
from pydantic import SecretStr, ValidationError

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.postgres import PostgresConfig, PostgresPlugin
from unity_sdk import HealthState, PluginAuthError, PluginNotReadyError

URL = urlsplit(
    os.environ.get("UNITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test").replace(
        "+asyncpg", ""
    )
)
LOCAL: dict[str, Any] = {
    "host": URL.hostname or "127.0.0.1",
    "port": URL.port or 5432,
    "user": URL.username or "postgres",
    "database": URL.path.lstrip("/") or "postgres",
}
if URL.password:
    LOCAL["password"] = URL.password
PASSWORD = "unity-test-secret"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
async def local() -> AsyncIterator[asyncpg.Connection]:
    """A connection to the local server, for setting the scene."""
    try:
        connection = await asyncpg.connect(**LOCAL, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"the local PostgreSQL is not reachable: {exc}")
    try:
        yield connection
    finally:
        await connection.close()


@dataclass
class Cluster:
    primary_port: int
    standby_port: int


def _as_postgres(*argv: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["runuser", "-u", "postgres", "--", *argv], check=True, **kwargs)


def _start(bindir: str, data: Path, port: int, sockets: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "runuser",
            "-u",
            "postgres",
            "--",
            f"{bindir}/postgres",
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={sockets}",
            "-c",
            "fsync=off",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=port, user="postgres", password=PASSWORD, timeout=2
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL on {port} did not start") from None
            await asyncio.sleep(0.1)
        else:
            await connection.close()
            return


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A private primary with password auth and a streaming standby."""
    bindirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
    if not bindirs or os.geteuid() != 0 or shutil.which("runuser") is None:
        _unavailable("a private PostgreSQL needs root, runuser and the server binaries")
    bindir = bindirs[-1]
    folder = Path(tempfile.mkdtemp(prefix="unity-pg-"))
    shutil.chown(folder, "postgres")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD)
        shutil.chown(pwfile, "postgres")
        primary, standby = folder / "primary", folder / "standby"
        _as_postgres(
            f"{bindir}/initdb",
            "-D",
            str(primary),
            "-U",
            "postgres",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            stdout=subprocess.DEVNULL,
        )
        cluster = Cluster(free_port(), free_port())
        processes.append(_start(bindir, primary, cluster.primary_port, folder))
        asyncio.run(_wait_ready(cluster.primary_port, processes[0]))
        _as_postgres(
            "env",
            f"PGPASSWORD={PASSWORD}",
            f"{bindir}/pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(cluster.primary_port),
            "-U",
            "postgres",
            "-D",
            str(standby),
            "-R",
            "-X",
            "stream",
        )
        processes.append(_start(bindir, standby, cluster.standby_port, folder))
        asyncio.run(_wait_ready(cluster.standby_port, processes[1]))
        yield cluster
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)


def private(port: int, **config: Any) -> PostgresPlugin:
    config.setdefault("password", PASSWORD)
    return make(PostgresPlugin, host="127.0.0.1", port=port, user="postgres", **config)


def test_metadata_and_registration() -> None:
    check_metadata(PostgresPlugin, "postgres", "database", secrets={"password"})
    assert PostgresPlugin in BUILTIN_PLUGINS


async def test_local_server(local: asyncpg.Connection) -> None:
    # A second session that holds a transaction open and sleeps in a query.
    sleeper = await asyncpg.connect(**LOCAL)
    try:
        transaction = sleeper.transaction()
        await transaction.start()
        sleeping = asyncio.ensure_future(sleeper.execute("SELECT pg_sleep(1.5)"))
        await asyncio.sleep(0.8)
        document, seconds = await timed_collect(make(PostgresPlugin, **LOCAL))
        await sleeping
        await transaction.rollback()
    finally:
        await sleeper.close()
    assert document["reachable"] == 1
    assert document["version"] == await local.fetchval("SHOW server_version")
    assert document["version_num"] == int(await local.fetchval("SHOW server_version_num"))
    assert document["uptime"] > 0
    assert document["in_recovery"] == 0
    connections = document["connections"]
    assert connections["max"] == int(await local.fetchval("SHOW max_connections"))
    assert connections["total"] >= 3  # the fixture, the sleeper and the plugin itself
    assert connections["by_state"]["active"] >= 2
    assert sum(connections["by_state"].values()) == connections["total"]
    assert connections["percent"] == pytest.approx(100 * connections["total"] / connections["max"])
    assert 0.5 < document["longest_query_seconds"] < 5
    assert document["longest_transaction_seconds"] >= document["longest_query_seconds"]
    database = document["databases"][LOCAL["database"]]
    assert database["size_bytes"] == await local.fetchval(
        "SELECT pg_database_size(current_database())"
    )
    assert database["xact_commit"] > 0
    assert 0 < database["cache_hit_ratio"] <= 100
    assert "template0" not in document["databases"]
    totals = document["totals"]
    assert totals["xact_commit"] == sum(db["xact_commit"] for db in document["databases"].values())
    assert 0 < document["ratios"]["cache_hit"] <= 100
    assert document["replicas_connected"] == 0
    assert document["replicas"] == {}
    assert "lag" not in document
    assert (await make(PostgresPlugin, **LOCAL).health_check()).status is HealthState.HEALTHY
    print(f"postgres: local server in {seconds * 1000:.1f} ms")


async def test_counts_deadlocks_and_rollbacks(local: asyncpg.Connection) -> None:
    plugin = make(PostgresPlugin, **LOCAL)
    before = (await collect_checked(plugin))["databases"][LOCAL["database"]]
    await local.execute("DROP TABLE IF EXISTS unity_pg_deadlock")
    await local.execute("CREATE TABLE unity_pg_deadlock (id int PRIMARY KEY, v int)")
    await local.execute("INSERT INTO unity_pg_deadlock VALUES (1, 0), (2, 0)")
    first, second = await asyncpg.connect(**LOCAL), await asyncpg.connect(**LOCAL)
    try:
        await first.execute("BEGIN; UPDATE unity_pg_deadlock SET v = 1 WHERE id = 1")
        await second.execute("BEGIN; UPDATE unity_pg_deadlock SET v = 2 WHERE id = 2")
        crossing = asyncio.gather(
            first.execute("UPDATE unity_pg_deadlock SET v = 1 WHERE id = 2"),
            second.execute("UPDATE unity_pg_deadlock SET v = 2 WHERE id = 1"),
            return_exceptions=True,
        )
        outcomes = await crossing
        assert any(isinstance(o, asyncpg.DeadlockDetectedError) for o in outcomes)
        await first.execute("ROLLBACK")
        await second.execute("ROLLBACK")
    finally:
        await first.close()
        await second.close()
        await local.execute("DROP TABLE unity_pg_deadlock")
    after = (await collect_checked(plugin))["databases"][LOCAL["database"]]
    # The statistics collector reports with a short delay; wait for it.
    for _ in range(50):
        if after["deadlocks"] > before["deadlocks"]:
            break
        await asyncio.sleep(0.1)
        after = (await collect_checked(plugin))["databases"][LOCAL["database"]]
    assert after["deadlocks"] == before["deadlocks"] + 1
    assert after["xact_rollback"] >= before["xact_rollback"] + 2


async def test_connections_warning(local: asyncpg.Connection) -> None:
    plugin = make(PostgresPlugin, **LOCAL, warn_connections_percent=0.001)
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert "connections in use" in health.message


async def test_closed_port_is_not_ready() -> None:
    plugin = make(PostgresPlugin, host="127.0.0.1", port=free_port(), connect_timeout=2)
    with pytest.raises(PluginNotReadyError, match=r"is not reachable: .*[Cc]onnect"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "is not reachable" in health.message


async def test_unknown_role_is_an_auth_error(local: asyncpg.Connection) -> None:
    plugin = make(PostgresPlugin, **{**LOCAL, "user": "unity_no_such_role"})
    with pytest.raises(PluginAuthError, match="refused role 'unity_no_such_role'"):
        await plugin.collect_data()


async def test_wrong_password_is_an_auth_error(cluster: Cluster) -> None:
    wrong = private(cluster.primary_port, password="not-the-password")
    with pytest.raises(PluginAuthError, match="password authentication failed") as caught:
        await wrong.collect_data()
    assert "not-the-password" not in str(caught.value)
    health = await wrong.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "refused role 'postgres'" in health.message
    missing = private(cluster.primary_port, password=None)
    with pytest.raises(PluginAuthError):
        await missing.collect_data()
    right = await collect_checked(private(cluster.primary_port))
    assert right["reachable"] == 1


async def test_role_with_password_on_the_private_server(cluster: Cluster) -> None:
    admin = await asyncpg.connect(
        host="127.0.0.1", port=cluster.primary_port, user="postgres", password=PASSWORD
    )
    try:
        await admin.execute("CREATE ROLE unity_monitor LOGIN PASSWORD 'monitor-pw'")
        ok = make(
            PostgresPlugin,
            port=cluster.primary_port,
            user="unity_monitor",
            password="monitor-pw",
            database="postgres",
        )
        document = await collect_checked(ok)
        # Without pg_monitor the other roles' sessions show no state.
        assert document["connections"]["total"] >= 1
        bad = make(PostgresPlugin, port=cluster.primary_port, user="unity_monitor", password="nope")
        with pytest.raises(PluginAuthError):
            await bad.collect_data()
    finally:
        await admin.execute("DROP ROLE IF EXISTS unity_monitor")
        await admin.close()


async def test_replication(cluster: Cluster) -> None:
    primary = private(cluster.primary_port)
    deadline = time.monotonic() + 20
    document = await collect_checked(primary)
    while document["replicas_connected"] == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        document = await collect_checked(primary)
    assert document["in_recovery"] == 0
    assert document["replicas_connected"] == 1
    (replica,) = document["replicas"].values()
    assert replica["state"] == "streaming"
    assert replica["lag_bytes"] >= 0

    admin = await asyncpg.connect(
        host="127.0.0.1", port=cluster.primary_port, user="postgres", password=PASSWORD
    )
    try:
        await admin.execute("CREATE TABLE IF NOT EXISTS unity_replicated (v int)")
        await admin.execute("INSERT INTO unity_replicated VALUES (1)")
    finally:
        await admin.close()
    standby = private(cluster.standby_port)
    document = await collect_checked(standby)
    assert document["in_recovery"] == 1
    assert document["replicas_connected"] == 0
    assert 0 <= document["lag"]["replay"] < 10
    health = await standby.health_check()
    assert health.status is HealthState.HEALTHY
    # Pause replay on the standby, then write on the primary: WAL arrives, is not
    # replayed, and the lag grows from the last replayed commit.
    on_standby = await asyncpg.connect(
        host="127.0.0.1", port=cluster.standby_port, user="postgres", password=PASSWORD
    )
    admin = await asyncpg.connect(
        host="127.0.0.1", port=cluster.primary_port, user="postgres", password=PASSWORD
    )
    try:
        await on_standby.execute("SELECT pg_wal_replay_pause()")
        await asyncio.sleep(1.1)
        await admin.execute("INSERT INTO unity_replicated VALUES (2)")
        for _ in range(100):
            received, replayed = await on_standby.fetchrow(
                "SELECT pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()"
            )
            if received != replayed:
                break
            await asyncio.sleep(0.05)
        lagging = await private(cluster.standby_port, max_replication_lag_seconds=1).health_check()
        paused = await collect_checked(standby)
    finally:
        await on_standby.execute("SELECT pg_wal_replay_resume()")
        await on_standby.close()
        await admin.close()
    assert paused["lag"]["replay"] > 1
    assert lagging.status is HealthState.DEGRADED
    assert "this standby lags" in lagging.message


def test_password_is_a_secret() -> None:
    config = PostgresConfig.model_validate({"password": "hunter2"})
    assert isinstance(config.password, SecretStr)
    assert "hunter2" not in repr(config)
    assert "hunter2" not in str(PostgresConfig.model_validate(config.model_dump()))


@pytest.mark.parametrize(
    "config", [{"port": 0}, {"sslmode": "sometimes"}, {"user": ""}, {"dsn": "postgres://"}]
)
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PostgresConfig.model_validate(config)
