"""The ``ss`` plugin: the real ss against our own listeners, and recorded output."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
from services_support import (
    FakeRunner,
    Recorded,
    check_class,
    collect_checked,
    make,
    require_command,
)

from unity_catalogue.ss import SsPlugin
from unity_sdk import DependencyMissingError, HealthState

RECORDED = {
    "ss -s": Recorded("summary.txt"),
    "ss -Htlnp": Recorded("listen-tcp.txt"),
    "ss -Hulnp": Recorded("listen-udp.txt"),
}


def test_metadata() -> None:
    metadata = check_class(SsPlugin, "ss", "network")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["ss"]


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """A TCP listener and a bound UDP socket of this process on 127.0.0.1."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        tcp.bind(("127.0.0.1", 0))
        tcp.listen(7)
        udp.bind(("127.0.0.1", 0))
        yield tcp.getsockname()[1], udp.getsockname()[1]


async def test_real_ss_reports_our_listeners(listeners: tuple[int, int]) -> None:
    require_command("ss")
    tcp_port, udp_port = listeners
    document = await collect_checked(make(SsPlugin))
    tcp = document["listeners"][f"127.0.0.1:{tcp_port}/tcp"]
    assert tcp["protocol"] == "tcp"
    assert tcp["address"] == "127.0.0.1"
    assert tcp["port"] == tcp_port
    assert tcp["pid"] == os.getpid()
    assert tcp["backlog"] == 7
    assert tcp["queue"] == 0
    udp = document["listeners"][f"127.0.0.1:{udp_port}/udp"]
    assert udp["pid"] == os.getpid()
    assert "backlog" not in udp
    assert document["listening"]["tcp"] >= 1
    assert document["listening"]["udp"] >= 1
    assert document["sockets"] > 0
    assert document["transport"]["tcp"]["total"] >= 1
    assert document["tcp"]["total"] >= document["tcp"]["estab"]
    assert (await make(SsPlugin).health_check()).status is HealthState.HEALTHY


async def test_real_ss_without_processes_or_listeners(listeners: tuple[int, int]) -> None:
    require_command("ss")
    tcp_port, _ = listeners
    document = await collect_checked(make(SsPlugin, processes=False))
    assert "pid" not in document["listeners"][f"127.0.0.1:{tcp_port}/tcp"]
    summary_only = await collect_checked(make(SsPlugin, listeners=False))
    assert "listeners" not in summary_only
    assert "listening" not in summary_only


async def test_recorded_server() -> None:
    runner = FakeRunner("ss", RECORDED)
    document = await collect_checked(make(SsPlugin, runner=runner))
    assert document["sockets"] == 412
    assert document["tcp"] == {
        "total": 38,
        "estab": 21,
        "closed": 6,
        "orphaned": 0,
        "timewait": 5,
    }
    assert document["transport"]["udp"] == {"total": 9, "ipv4": 6, "ipv6": 3}
    assert set(document["transport"]) == {"raw", "udp", "tcp", "inet", "frag"}
    assert document["listening"] == {"tcp": 9, "udp": 4}
    listeners = document["listeners"]
    assert listeners["0.0.0.0:80/tcp"]["queue"] == 3
    assert listeners["0.0.0.0:80/tcp"]["process"] == "nginx"
    assert listeners["0.0.0.0:80/tcp"]["pid"] == 1422
    assert listeners["[::]:22/tcp"]["address"] == "::"
    assert listeners["*:9100/tcp"]["process"] == "prometheus-node"
    assert listeners["127.0.0.53%lo:53/udp"]["address"] == "127.0.0.53%lo"
    assert "process" not in listeners["127.0.0.1:8125/tcp"]
    assert runner.calls == [("ss", "-s"), ("ss", "-Htlnp"), ("ss", "-Hulnp")]


async def test_recorded_old_iproute2_summary() -> None:
    runner = FakeRunner("ss", {"ss -s": Recorded("summary-iproute2-4.9.txt")})
    document = await collect_checked(make(SsPlugin, runner=runner, listeners=False))
    assert document["sockets"] == 1203
    assert document["tcp"]["timewait"] == 8
    assert document["tcp"]["orphaned"] == 1
    assert document["transport"]["tcp"]["ipv6"] == 11


async def test_ss_missing() -> None:
    plugin = make(SsPlugin, runner=FakeRunner("ss", {}))
    with pytest.raises(DependencyMissingError, match="ss is not installed"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "ss is not installed" in health.message
