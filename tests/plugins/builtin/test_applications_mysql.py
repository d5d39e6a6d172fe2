"""``mysql`` against real MariaDB servers on loopback.

Most tests use the local server (``UNITY_TEST_MYSQL_URL``, default
mysql://root@127.0.0.1:3306/test); the auth tests create a user with a
password there and drop it after. The replication tests start a private
primary (binary log on) and a replica of it with ``mariadb-install-db`` and
``mariadbd`` on free ports, in a temporary folder removed afterwards.
"""

from __future__ import annotations

import asyncio
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

import asyncmy
import pytest
from applications_support import check_metadata, collect_checked, free_port, make, timed_collect
from asyncmy.errors import Error as MySQLError
from pydantic import ValidationError

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.mysql import MysqlConfig, MysqlPlugin
from unity_sdk import HealthState, PluginAuthError, PluginNotReadyError

URL = urlsplit(os.environ.get("UNITY_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/test"))
LOCAL: dict[str, Any] = {
    "host": URL.hostname or "127.0.0.1",
    "port": URL.port or 3306,
    "user": URL.username or "root",
    "database": URL.path.lstrip("/") or None,
}
if URL.password:
    LOCAL["password"] = URL.password
AUTH_USER = "unity_auth_test"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


async def _connect(**config: Any) -> Any:
    return await asyncmy.connect(
        host=config["host"],
        port=config["port"],
        user=config["user"],
        password=config.get("password", ""),
        db=config.get("database"),
        connect_timeout=5,
    )


async def _execute(connection: Any, *statements: str) -> list[Any]:
    results = []
    async with connection.cursor() as cursor:
        for statement in statements:
            await cursor.execute(statement)
            results.append(await cursor.fetchall())
    return results


@pytest.fixture
async def local() -> AsyncIterator[Any]:
    """A connection to the local server, for setting the scene."""
    try:
        connection = await _connect(**LOCAL)
    except (OSError, MySQLError) as exc:
        _unavailable(f"the local MariaDB/MySQL is not reachable: {exc}")
    try:
        yield connection
    finally:
        await connection.ensure_closed()


@dataclass
class Pair:
    primary: int
    replica: int


def _mariadbd(folder: Path, name: str, port: int, server_id: int) -> subprocess.Popen[bytes]:
    datadir = folder / name
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            f"--datadir={datadir}",
            f"--port={port}",
            f"--socket={folder / name}.sock",
            "--bind-address=127.0.0.1",
            "--user=root",
            f"--server-id={server_id}",
            "--log-bin=mysql-bin",
            "--innodb-buffer-pool-size=16M",
            f"--pid-file={folder / name}.pid",
            f"--log-error={folder / name}.err",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = await _connect(host="127.0.0.1", port=port, user="root")
        except MySQLError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"mariadbd on {port} did not start") from None
            await asyncio.sleep(0.1)
        else:
            await connection.ensure_closed()
            return


@pytest.fixture(scope="module")
def pair() -> Iterator[Pair]:
    """A private MariaDB primary and a replica streaming from it."""
    if os.geteuid() != 0 or not (shutil.which("mariadbd") and shutil.which("mariadb-install-db")):
        _unavailable("a private MariaDB needs root, mariadbd and mariadb-install-db")
    folder = Path(tempfile.mkdtemp(prefix="unity-mariadb-"))
    pair = Pair(free_port(), free_port())
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes.append(_mariadbd(folder, "primary", pair.primary, 1))
        processes.append(_mariadbd(folder, "replica", pair.replica, 2))

        async def start() -> None:
            await _wait_ready(pair.primary, processes[0])
            await _wait_ready(pair.replica, processes[1])
            replica = await _connect(host="127.0.0.1", port=pair.replica, user="root")
            await _execute(
                replica,
                f"CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT={pair.primary}, "
                "MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=no",
                "START SLAVE",
            )
            await replica.ensure_closed()

        asyncio.run(start())
        yield pair
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def test_metadata_and_registration() -> None:
    check_metadata(MysqlPlugin, "mysql", "database", secrets={"password"})
    assert MysqlPlugin in BUILTIN_PLUGINS


async def test_local_server(local: Any) -> None:
    plugin = make(MysqlPlugin, **LOCAL)
    before, seconds = await timed_collect(plugin)
    # One slow query (long_query_time 0 counts every statement) and a few questions.
    other = await _connect(**LOCAL)
    try:
        await _execute(other, "SET SESSION long_query_time = 0", "SELECT 1")
    finally:
        await other.ensure_closed()
    after = await collect_checked(plugin)
    [[(version,)], variables] = await _execute(
        local, "SELECT VERSION()", "SHOW GLOBAL VARIABLES LIKE 'max_connections'"
    )
    assert after["reachable"] == 1
    assert after["version"] == version
    assert after["flavor"] == ("MariaDB" if "MariaDB" in version else "MySQL")
    assert after["uptime"] >= before["uptime"] > 0
    assert after["threads"]["connected"] >= 2  # the fixture and the plugin
    assert after["threads"]["running"] >= 1
    assert after["connections"]["max"] == int(variables[0][1])
    assert after["connections"]["percent"] == pytest.approx(
        100 * after["threads"]["connected"] / after["connections"]["max"]
    )
    assert after["connections"]["total"] >= before["connections"]["total"] + 2
    assert after["queries"]["questions"] > before["queries"]["questions"]
    assert after["queries"]["total"] >= after["queries"]["questions"]
    assert after["queries"]["slow"] >= before["queries"]["slow"] + 1
    assert after["innodb"]["buffer_pool_size"] > 0
    assert after["innodb"]["buffer_pool_pages_total"] >= after["innodb"]["buffer_pool_pages_free"]
    assert 0 <= after["ratios"]["innodb_buffer_pool_hit"] <= 100
    assert after["replication"] == {}
    assert after["is_replica"] == 0
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == f"{after['flavor']} {version}"
    print(f"mysql: local server in {seconds * 1000:.1f} ms")


async def test_user_with_password(local: Any) -> None:
    await _execute(
        local,
        f"DROP USER IF EXISTS '{AUTH_USER}'@'%'",
        f"CREATE USER '{AUTH_USER}'@'%' IDENTIFIED BY 'right-pw'",
    )
    try:
        monitor = {"host": LOCAL["host"], "port": LOCAL["port"], "user": AUTH_USER}
        document = await collect_checked(make(MysqlPlugin, **monitor, password="right-pw"))
        # Without REPLICATION CLIENT / SLAVE MONITOR the replica status is left out.
        assert document["replication"] == {}
        wrong = make(MysqlPlugin, **monitor, password="wrong-pw")
        with pytest.raises(PluginAuthError, match="Access denied") as caught:
            await wrong.collect_data()
        assert "wrong-pw" not in str(caught.value)
        health = await wrong.health_check()
        assert health.status is HealthState.UNHEALTHY
        assert f"refused user '{AUTH_USER}'" in health.message
        with pytest.raises(PluginAuthError):
            await make(MysqlPlugin, **monitor).collect_data()
    finally:
        await _execute(local, f"DROP USER IF EXISTS '{AUTH_USER}'@'%'")


async def test_closed_port_is_not_ready() -> None:
    plugin = make(MysqlPlugin, port=free_port(), connect_timeout=2)
    with pytest.raises(PluginNotReadyError, match="is not reachable"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY


async def test_connections_warning(local: Any) -> None:
    health = await make(MysqlPlugin, **LOCAL, warn_connections_percent=0.001).health_check()
    assert health.status is HealthState.DEGRADED
    assert "connections in use" in health.message


async def test_replica_status(pair: Pair) -> None:
    replica = make(MysqlPlugin, port=pair.replica)
    document = await collect_checked(replica)
    for _ in range(100):
        if document["replication"].get("default", {}).get("io_running"):
            break
        await asyncio.sleep(0.1)
        document = await collect_checked(replica)
    assert document["is_replica"] == 1
    status = document["replication"]["default"]
    assert status["io_running"] == status["sql_running"] == 1
    assert status["source"] == f"127.0.0.1:{pair.primary}"
    assert status["seconds_behind"] >= 0
    assert "last_error" not in status
    assert (await replica.health_check()).status is HealthState.HEALTHY
    primary = await collect_checked(make(MysqlPlugin, port=pair.primary))
    assert primary["is_replica"] == 0

    connection = await _connect(host="127.0.0.1", port=pair.replica, user="root")
    try:
        await _execute(connection, "STOP SLAVE SQL_THREAD")
        stopped = await collect_checked(replica)
        health = await replica.health_check()
    finally:
        await _execute(connection, "START SLAVE SQL_THREAD")
        await connection.ensure_closed()
    assert stopped["replication"]["default"]["sql_running"] == 0
    assert "seconds_behind" not in stopped["replication"]["default"]
    assert health.status is HealthState.UNHEALTHY
    assert health.message.startswith("replication default: sql stopped")


@pytest.mark.parametrize("config", [{"port": 70000}, {"user": ""}, {"socket": "/x"}])
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MysqlConfig.model_validate(config)
