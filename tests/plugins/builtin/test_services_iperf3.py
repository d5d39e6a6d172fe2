"""The ``iperf3`` plugin: real runs against ``iperf3 -s -1`` on loopback, and recorded JSON."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from pydantic import ValidationError
from services_support import (
    FakeRunner,
    Recorded,
    check_class,
    collect_checked,
    free_port,
    make,
    require_command,
)

from unity_catalogue.iperf3 import Iperf3Plugin
from unity_sdk import CollectionError, DependencyMissingError, HealthState, PluginNotReadyError


@pytest.fixture
def iperf3_server() -> Iterator[Callable[[], int]]:
    """Starts one-off servers (``iperf3 -s -1``) on 127.0.0.1; each call returns a port."""
    require_command("iperf3")
    servers: list[subprocess.Popen[bytes]] = []

    def start() -> int:
        port = free_port()
        argv = ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)]
        servers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        # Probing the port would use up the one-off server, so wait for ss to see it listen.
        deadline = time.monotonic() + 10
        while not subprocess.run(
            ["ss", "-Htln", f"sport = :{port}"], capture_output=True, text=True, check=True
        ).stdout.strip():
            assert time.monotonic() < deadline, "iperf3 -s did not start listening"
            time.sleep(0.05)
        return port

    yield start
    for server in servers:
        server.kill()
        server.wait()


def recorded(name: str, *, argv: str = "iperf3 -c nas.lan -p 5201 -t 5 -J") -> FakeRunner:
    return FakeRunner("iperf3", {argv: Recorded(name), "iperf3 --version": Recorded("")})


def test_metadata() -> None:
    metadata = check_class(Iperf3Plugin, "iperf3", "network")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["iperf3"]
    assert metadata.timeout > 30 + 20


@pytest.mark.parametrize(
    "config",
    [{}, {"server": ""}, {"server": "nas", "duration": 31}, {"server": "x", "bitrate": "fast"}],
)
def test_config_is_validated(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        make(Iperf3Plugin, **config)


async def test_real_tcp_upload(iperf3_server: Callable[[], int]) -> None:
    port = iperf3_server()
    plugin = make(Iperf3Plugin, server="127.0.0.1", port=port, duration=1)
    started = time.monotonic()
    document = await collect_checked(plugin)
    assert time.monotonic() - started < 10
    assert document["protocol"] == "tcp"
    assert document["direction"] == "upload"
    assert document["server"] == "127.0.0.1"
    assert document["seconds"] == pytest.approx(1.0, abs=0.5)
    assert document["receiver"]["bits_per_second"] > 1e8
    assert document["receiver"]["bytes"] > 0
    assert document["sender"]["bytes"] >= document["receiver"]["bytes"]
    assert document["transport"]["tcp"]["retransmits"] >= 0
    assert (await plugin.health_check()).status is HealthState.HEALTHY


async def test_real_tcp_download(iperf3_server: Callable[[], int]) -> None:
    port = iperf3_server()
    plugin = make(Iperf3Plugin, server="127.0.0.1", port=port, duration=1, reverse=True)
    document = await collect_checked(plugin)
    assert document["direction"] == "download"
    assert document["receiver"]["bits_per_second"] > 1e8


async def test_real_udp(iperf3_server: Callable[[], int]) -> None:
    port = iperf3_server()
    plugin = make(Iperf3Plugin, server="127.0.0.1", port=port, duration=1, udp=True, bitrate="20M")
    document = await collect_checked(plugin)
    assert document["protocol"] == "udp"
    assert document["sender"]["bits_per_second"] == pytest.approx(20e6, rel=0.2)
    udp = document["transport"]["udp"]
    assert udp["packets"] > 0
    assert 0 <= udp["lost_percent"] <= 100
    assert udp["jitter_ms"] >= 0
    assert "tcp" not in document["transport"]


async def test_real_server_not_listening() -> None:
    require_command("iperf3")
    port = free_port()
    plugin = make(Iperf3Plugin, server="127.0.0.1", port=port, duration=1)
    with pytest.raises(PluginNotReadyError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        "iperf3 to 127.0.0.1: unable to connect to server: Connection refused"
    )
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == f"last measurement failed: {caught.value}"


async def test_recorded_tcp() -> None:
    document = await collect_checked(
        make(Iperf3Plugin, runner=recorded("tcp.json"), server="nas.lan")
    )
    assert document["sender"] == {"bits_per_second": 21953468496.370674, "bytes": 2745827328}
    assert document["receiver"]["bits_per_second"] == 21953183275.835186
    assert document["transport"] == {"tcp": {"retransmits": 16}}
    assert document["cpu"] == {"local": 71.59213115932694, "remote": 40.77451979772541}
    assert document["seconds"] == 1.000612


async def test_recorded_reverse_and_udp() -> None:
    runner = recorded("tcp-reverse.json", argv="iperf3 -c nas.lan -p 5201 -t 5 -J -R")
    plugin = make(Iperf3Plugin, runner=runner, server="nas.lan", reverse=True)
    document = await collect_checked(plugin)
    assert document["direction"] == "download"
    assert document["transport"]["tcp"]["retransmits"] == 0
    assert document["sender"]["bits_per_second"] == 21709474659.346146
    runner = recorded("udp.json", argv="iperf3 -c nas.lan -p 5201 -t 5 -J -u -b 50M")
    plugin = make(Iperf3Plugin, runner=runner, server="nas.lan", udp=True, bitrate="50M")
    document = await collect_checked(plugin)
    assert document["transport"] == {
        "udp": {
            "jitter_ms": 0.028033191855329077,
            "lost_packets": 0,
            "lost_percent": 0.0,
            "packets": 191,
        }
    }
    assert document["receiver"]["bits_per_second"] == 50060793.42194459


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("unreachable.json", "unable to connect to server: Connection refused"),
        ("busy.json", "the server is busy running a test. try again later"),
    ],
)
async def test_recorded_server_not_ready(name: str, message: str) -> None:
    plugin = make(Iperf3Plugin, runner=recorded(name), server="nas.lan")
    with pytest.raises(PluginNotReadyError, match=message):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert message in health.message


async def test_recorded_garbage() -> None:
    runner = FakeRunner(
        "iperf3",
        {"iperf3 -c nas.lan -p 5201 -t 5 -J": Recorded("iperf3: parameter error - ...", "", 1)},
    )
    with pytest.raises(CollectionError, match="exited with 1"):
        await make(Iperf3Plugin, runner=runner, server="nas.lan").collect_data()


async def test_iperf3_missing() -> None:
    plugin = make(Iperf3Plugin, runner=FakeRunner("iperf3", {}), server="nas.lan")
    with pytest.raises(DependencyMissingError, match="iperf3 is not installed"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == "iperf3 is not installed on the target"
