"""``redis`` against real Redis servers on loopback.

The local server (``UNITY_TEST_REDIS_URL``, default redis://127.0.0.1:6379/0)
is only read. Everything that needs a known state -- a password, maxmemory,
keys, a replica, TLS with a certificate from a test CA -- runs on private
``redis-server`` processes on free ports that keep nothing on disk.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from applications_support import (
    TestCA,
    check_metadata,
    collect_checked,
    free_port,
    make,
    timed_collect,
    wait_for_port,
)
from pydantic import ValidationError
from redis.asyncio import Redis

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.redis_server import RedisConfig, RedisPlugin
from unity_sdk import CollectionError, HealthState, PluginAuthError, PluginNotReadyError

URL = urlsplit(os.environ.get("UNITY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0"))
LOCAL: dict[str, Any] = {
    "host": URL.hostname or "127.0.0.1",
    "port": URL.port or 6379,
    "db": int(URL.path.lstrip("/") or 0),
}
if URL.password:
    LOCAL["password"] = URL.password


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class RedisServers:
    """Starts private redis-server processes and stops them all at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, *args: str, port: int | None = None, tls: bool = False) -> int:
        port = port or free_port()
        listen = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
        process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                *listen,
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.folder),
                "--logfile",
                str(self.folder / f"{port}.log"),
                *args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.processes[port] = process
        wait_for_port(port)
        return port

    def stop(self, port: int) -> None:
        process = self.processes.pop(port)
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServers]:
    if shutil.which("redis-server") is None:
        _unavailable("redis-server is not installed")
    servers = RedisServers(tmp_path_factory.mktemp("redis"))
    try:
        yield servers
    finally:
        for port in list(servers.processes):
            servers.stop(port)


async def _command(port: int, *args: Any, **options: Any) -> Any:
    client = Redis(host="127.0.0.1", port=port, **options)
    try:
        return await client.execute_command(*args)
    finally:
        await client.aclose()


def test_metadata_and_registration() -> None:
    check_metadata(RedisPlugin, "redis", "database", secrets={"password"})
    assert RedisPlugin in BUILTIN_PLUGINS


async def test_local_server() -> None:
    plugin = make(RedisPlugin, **LOCAL)
    try:
        document, seconds = await timed_collect(plugin)
    except PluginNotReadyError as exc:
        _unavailable(f"the local Redis is not reachable: {exc}")
    assert document["reachable"] == 1
    assert document["version"].count(".") == 2
    assert document["mode"] == "standalone"
    assert document["role"] == "master"
    assert document["clients"]["connected"] >= 1
    assert document["memory"]["used"] > 0
    assert document["memory"]["peak"] >= document["memory"]["used"] * 0.5
    assert document["primaries"] == {}
    assert (await plugin.health_check()).status is HealthState.HEALTHY
    print(f"redis: local server in {seconds * 1000:.1f} ms")


async def test_keys_hits_and_memory(servers: RedisServers) -> None:
    port = servers.start()
    client = Redis(host="127.0.0.1", port=port)
    try:
        await client.mset({"a": 1, "b": 2, "c": 3})
        await client.set("ttl", "x", ex=3600)
        await client.get("a")
        await client.get("a")
        await client.get("missing")
        await client.execute_command("SELECT", 3)
        plugin = make(RedisPlugin, port=port)
        document = await collect_checked(plugin)
        assert document["keyspace"] == {
            "db0": {"keys": 4, "expires": 1, "avg_ttl": document["keyspace"]["db0"]["avg_ttl"]}
        }
        # Redis samples TTLs in its expire cycle: 0 until it has, then an estimate.
        assert 0 <= document["keyspace"]["db0"]["avg_ttl"] <= 3600_000
        assert document["stats"]["keyspace_hits"] == 2
        assert document["stats"]["keyspace_misses"] == 1
        assert document["ratios"]["keyspace_hit"] == pytest.approx(200 / 3)
        assert document["memory"]["max"] == 0
        assert "memory_of_max" not in document["ratios"]
        assert document["replication"]["connected_replicas"] == 0
        assert document["stats"]["commands_processed"] >= 6

        used = document["memory"]["used"]
        await client.config_set("maxmemory", str(int(used * 1.05)))
        limited = await collect_checked(plugin)
        assert 80 < limited["ratios"]["memory_of_max"] <= 100
        health = await plugin.health_check()
        assert health.status is HealthState.DEGRADED
        assert "of maxmemory in use" in health.message
    finally:
        await client.aclose()
        servers.stop(port)


async def test_fresh_server_has_no_hit_ratio(servers: RedisServers) -> None:
    port = servers.start()
    try:
        document = await collect_checked(make(RedisPlugin, port=port))
    finally:
        servers.stop(port)
    assert document["ratios"] == {}
    assert document["keyspace"] == {}


async def test_password(servers: RedisServers) -> None:
    port = servers.start("--requirepass", "right-pw")
    try:
        ok = await collect_checked(make(RedisPlugin, port=port, password="right-pw"))
        assert ok["reachable"] == 1
        wrong = make(RedisPlugin, port=port, password="wrong-pw")
        with pytest.raises(PluginAuthError, match="refused the credentials") as caught:
            await wrong.collect_data()
        assert "wrong-pw" not in str(caught.value)
        health = await wrong.health_check()
        assert health.status is HealthState.UNHEALTHY
        assert "refused the credentials" in health.message
        with pytest.raises(PluginAuthError, match="requires a password and none is configured"):
            await make(RedisPlugin, port=port).collect_data()
    finally:
        servers.stop(port)


async def test_acl_user(servers: RedisServers) -> None:
    port = servers.start("--user", "monitor", "on", ">mon-pw", "+info", "+client", "+hello")
    try:
        ok = make(RedisPlugin, port=port, username="monitor", password="mon-pw")
        assert (await collect_checked(ok))["reachable"] == 1
        with pytest.raises(PluginAuthError):
            await make(RedisPlugin, port=port, username="monitor", password="x").collect_data()
    finally:
        servers.stop(port)


async def test_replication(servers: RedisServers) -> None:
    # No wait for more replicas before a diskless full sync (5 s by default).
    primary = servers.start("--repl-diskless-sync-delay", "0")
    replica = servers.start("--replicaof", "127.0.0.1", str(primary))
    try:
        primary_plugin = make(RedisPlugin, port=primary)
        document = await collect_checked(primary_plugin)
        for _ in range(100):
            if document["replicas"] and all(
                r["state"] == "online" for r in document["replicas"].values()
            ):
                break
            await asyncio.sleep(0.1)
            document = await collect_checked(primary_plugin)
        assert document["role"] == "master"
        assert document["replication"]["connected_replicas"] == 1
        link = document["replicas"][f"127.0.0.1:{replica}"]
        assert link["state"] == "online"
        assert link["lag"] >= 0
        assert link["offset_behind"] >= 0

        replica_plugin = make(RedisPlugin, port=replica)
        seen = await collect_checked(replica_plugin)
        assert seen["role"] == "slave"
        assert seen["primaries"] == {
            f"127.0.0.1:{primary}": {
                "link_up": 1,
                "last_io_seconds_ago": seen["primaries"][f"127.0.0.1:{primary}"][
                    "last_io_seconds_ago"
                ],
            }
        }
        assert (await replica_plugin.health_check()).status is HealthState.HEALTHY

        servers.stop(primary)
        for _ in range(50):
            down = await collect_checked(replica_plugin)
            if not down["primaries"][f"127.0.0.1:{primary}"]["link_up"]:
                break
            await asyncio.sleep(0.1)
        health = await replica_plugin.health_check()
        assert health.status is HealthState.UNHEALTHY
        assert health.message == f"link to primary 127.0.0.1:{primary} is down"
    finally:
        servers.stop(replica)
        if primary in servers.processes:
            servers.stop(primary)


async def test_tls(servers: RedisServers, tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    certs = ca.issue("redis")
    port = servers.start(
        "--tls-cert-file",
        str(certs.cert),
        "--tls-key-file",
        str(certs.key),
        "--tls-ca-cert-file",
        str(ca.bundle),
        "--tls-auth-clients",
        "no",
        tls=True,
    )
    try:
        trusted = make(RedisPlugin, port=port, tls=True, ca_bundle=str(ca.bundle))
        assert (await collect_checked(trusted))["reachable"] == 1
        unchecked = make(RedisPlugin, port=port, tls=True, verify_tls=False)
        assert (await collect_checked(unchecked))["reachable"] == 1
        untrusted = make(RedisPlugin, port=port, tls=True)
        with pytest.raises(CollectionError, match="TLS certificate verification failed"):
            await untrusted.collect_data()
        assert (await untrusted.health_check()).status is HealthState.UNHEALTHY
    finally:
        servers.stop(port)


async def test_closed_port_is_not_ready() -> None:
    plugin = make(RedisPlugin, port=free_port(), timeout=2)
    with pytest.raises(PluginNotReadyError, match="is not reachable"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message.startswith(f"Redis at 127.0.0.1:{plugin.config.port} is not")


@pytest.mark.parametrize("config", [{"port": 0}, {"db": -1}, {"url": "redis://x"}])
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RedisConfig.model_validate(config)
