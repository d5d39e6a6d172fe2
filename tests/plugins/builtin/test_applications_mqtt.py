"""``mqtt-broker`` against real Mosquitto brokers on loopback.

The local broker (``UNITY_TEST_MQTT_URL``, default mqtt://127.0.0.1:1883) is
only read. Known states -- traffic counted within a second (``sys_interval
1``), a password file, ``$SYS`` switched off, TLS with a test CA -- run on
private ``mosquitto`` processes on free ports.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
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

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.mqtt_broker import (
    MqttBrokerConfig,
    MqttBrokerPlugin,
    parse_sys_topics,
)
from unity_sdk import CollectionError, HealthState, PluginAuthError, PluginNotReadyError

URL = urlsplit(os.environ.get("UNITY_TEST_MQTT_URL", "mqtt://127.0.0.1:1883"))
LOCAL: dict[str, Any] = {"host": URL.hostname or "127.0.0.1", "port": URL.port or 1883}
if URL.username:
    LOCAL["username"] = URL.username
if URL.password:
    LOCAL["password"] = URL.password


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Brokers:
    """Starts private mosquitto processes from a config text, stops them at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *lines: str) -> int:
        port = free_port()
        config = self.folder / f"{port}.conf"
        config.write_text(
            "\n".join(
                [
                    "user root",
                    "persistence false",
                    f"listener {port} 127.0.0.1",
                    "sys_interval 1",
                    *lines,
                    "",
                ]
            )
        )
        self.processes.append(
            subprocess.Popen(
                ["mosquitto", "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_for_port(port)
        return port


@pytest.fixture(scope="module")
def brokers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Brokers]:
    if shutil.which("mosquitto") is None:
        _unavailable("mosquitto is not installed")
    brokers = Brokers(tmp_path_factory.mktemp("mqtt"))
    try:
        yield brokers
    finally:
        for process in brokers.processes:
            process.terminate()
        for process in brokers.processes:
            process.wait(timeout=10)


def test_metadata_and_registration() -> None:
    check_metadata(MqttBrokerPlugin, "mqtt-broker", "application", secrets={"password"})
    assert MqttBrokerPlugin in BUILTIN_PLUGINS


async def test_local_broker() -> None:
    plugin = make(MqttBrokerPlugin, **LOCAL)
    try:
        document, seconds = await timed_collect(plugin)
    except PluginNotReadyError as exc:
        _unavailable(f"the local Mosquitto is not reachable: {exc}")
    assert document["version"].startswith("mosquitto version ")
    assert document["uptime"] > 0
    # The whole default window is spent listening: that is the collection time.
    assert 2 <= seconds < 4
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message.startswith("mosquitto version")
    print(f"mqtt-broker: local broker in {seconds * 1000:.0f} ms (collect_seconds 2)")


async def test_traffic_is_counted(brokers: Brokers) -> None:
    port = brokers.start("allow_anonymous true")
    async with aiomqtt.Client("127.0.0.1", port, identifier="unity-test-publisher") as client:
        await client.subscribe("unity/test/#")
        for index in range(5):
            await client.publish("unity/test/value", str(index), retain=index == 4)
        await asyncio.sleep(1.5)  # one sys_interval, so the $SYS tree is refreshed
        document = await collect_checked(make(MqttBrokerPlugin, port=port, collect_seconds=1.2))
    # The retained snapshot may predate the plugin's own connection.
    assert document["clients"]["connected"] >= 1
    assert document["clients"]["maximum"] >= 1
    assert document["counts"]["subscriptions"] >= 1
    assert document["counts"]["retained_messages"] >= 1
    assert document["messages"]["publish_sent"] >= 5
    assert document["messages"]["received"] >= 5
    assert document["bytes"]["received"] > 0
    assert document["bytes"]["sent"] > 0
    assert set(document["load"]["messages_received"]) == {"1min", "5min", "15min"}
    assert document["load"]["connections"]["1min"] > 0


async def test_password_file(brokers: Brokers, tmp_path: Path) -> None:
    if shutil.which("mosquitto_passwd") is None:
        _unavailable("mosquitto_passwd is not installed")
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "monitor", "right-pw"], check=True
    )
    port = brokers.start("allow_anonymous false", f"password_file {passwords}")
    right = make(MqttBrokerPlugin, port=port, username="monitor", password="right-pw")
    assert (await collect_checked(right))["uptime"] >= 0
    wrong = make(
        MqttBrokerPlugin, port=port, username="monitor", password="wrong-pw", collect_seconds=0.2
    )
    with pytest.raises(PluginAuthError, match="refused the credentials") as caught:
        await wrong.collect_data()
    assert "wrong-pw" not in str(caught.value)
    assert (await wrong.health_check()).status is HealthState.UNHEALTHY
    with pytest.raises(PluginAuthError):
        await make(MqttBrokerPlugin, port=port, collect_seconds=0.2).collect_data()


async def test_sys_tree_switched_off(brokers: Brokers) -> None:
    port = brokers.start("allow_anonymous true", "sys_interval 0")
    plugin = make(MqttBrokerPlugin, port=port, collect_seconds=0.5)
    with pytest.raises(CollectionError, match=r"published no \$SYS/broker/version"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "sys_interval 0" in health.message


async def test_tls(brokers: Brokers, tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    certs = ca.issue("mosquitto")
    port = brokers.start(
        "allow_anonymous true",
        f"cafile {ca.bundle}",
        f"certfile {certs.cert}",
        f"keyfile {certs.key}",
    )
    trusted = make(
        MqttBrokerPlugin, port=port, tls=True, ca_bundle=str(ca.bundle), collect_seconds=0.5
    )
    assert (await collect_checked(trusted))["version"].startswith("mosquitto")
    unchecked = make(MqttBrokerPlugin, port=port, tls=True, verify_tls=False, collect_seconds=0.5)
    assert (await collect_checked(unchecked))["uptime"] >= 0
    untrusted = make(MqttBrokerPlugin, port=port, tls=True, collect_seconds=0.5)
    with pytest.raises(CollectionError, match="TLS certificate verification failed"):
        await untrusted.collect_data()


async def test_closed_port_is_not_ready() -> None:
    plugin = make(MqttBrokerPlugin, port=free_port(), timeout=2)
    with pytest.raises(PluginNotReadyError, match="is not reachable"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "is not reachable" in health.message


def test_parses_recorded_mosquitto_topics() -> None:
    """Lines as ``mosquitto_sub -v -t '$SYS/#'`` printed them from Mosquitto 2.0.11."""
    recorded = """\
$SYS/broker/version mosquitto version 2.0.11
$SYS/broker/uptime 1749 seconds
$SYS/broker/load/messages/received/1min 2.74
$SYS/broker/load/publish/sent/15min 0.13
$SYS/broker/load/bytes/sent/5min 17.68
$SYS/broker/load/sockets/1min 0.91
$SYS/broker/messages/stored 23
$SYS/broker/messages/received 9
$SYS/broker/store/messages/count 23
$SYS/broker/store/messages/bytes 127
$SYS/broker/retained messages/count 26
$SYS/broker/heap/current 35520
$SYS/broker/publish/messages/sent 2
$SYS/broker/bytes/received 99
$SYS/broker/clients/connected 1
$SYS/broker/subscriptions/count 1
$SYS/broker/unknown/topic 5
$SYS/broker/clients/bogus not-a-number
"""
    # Topic names may hold spaces ("retained messages"); payloads start after the last one.
    topics = {}
    for line in recorded.splitlines():
        match = re.match(r"(\$SYS/broker/(?:retained messages/count|\S+)) (.*)$", line)
        assert match is not None
        topics[match[1]] = match[2]
    assert parse_sys_topics(topics) == {
        "version": "mosquitto version 2.0.11",
        "uptime": 1749,
        "load": {
            "messages_received": {"1min": 2.74},
            "publish_sent": {"15min": 0.13},
            "bytes_sent": {"5min": 17.68},
            "sockets": {"1min": 0.91},
        },
        "counts": {"stored_messages": 23, "retained_messages": 26, "subscriptions": 1},
        "messages": {"received": 9, "publish_sent": 2},
        "memory": {"store_bytes": 127, "heap_current": 35520},
        "bytes": {"received": 99},
        "clients": {"connected": 1},
    }


@pytest.mark.parametrize("config", [{"collect_seconds": 0}, {"port": 0}, {"topic": "$SYS/#"}])
def test_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        MqttBrokerConfig.model_validate(config)
