"""What the built-ins propose: for recorded hosts, and for the real services on this machine.

This machine runs PostgreSQL (5432), MariaDB (3306), Redis (6379) and
Mosquitto (1883) on loopback. Discovery must find each, and the plugin it
proposes, run with the suggested config plus the test credentials, must
collect real metrics: that is what makes a proposal worth accepting. A
service that is not running skips its test, except under ``CI=true``, where
it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

import pytest

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.discovery import discover
from unity_sdk import (
    BlockDevice,
    GpuDevice,
    HostFacts,
    ListeningSocket,
    MdArray,
    PluginBase,
    Proposal,
    ProposalReport,
    ZfsPool,
    proposal_problems,
)
from unity_sdk.testing import check_plugin

PLUGINS: dict[str, type[PluginBase[Any]]] = {
    cls().get_metadata().id: cls for cls in BUILTIN_PLUGINS
}


def tcp(address: str, port: int, process: str = "", pid: int | None = None) -> ListeningSocket:
    return ListeningSocket("tcp", address, port, process, pid)


# A busy home server, as a scan would see it.
BUSY = HostFacts(
    listeners=(
        tcp("127.0.0.1", 5432, "postgres", 100),
        tcp("::1", 5432, "postgres", 100),
        tcp("127.0.0.1", 5433, "postgres", 110),  # a second cluster, found by its process
        tcp("0.0.0.0", 3306, "mariadbd", 120),
        tcp("127.0.0.1", 33060, "mariadbd", 120),  # the X protocol: not a second server
        tcp("127.0.0.1", 6379, "redis-server", 130),
        tcp("127.0.0.1", 1883, "mosquitto", 140),
        tcp("0.0.0.0", 8883, "mosquitto", 140),
        tcp("127.0.0.1", 3493, "upsd", 150),
        tcp("127.0.0.1", 11434, "ollama", 160),
        tcp("127.0.0.1", 41234, "ollama", 161),  # a model runner: not the API
        tcp("0.0.0.0", 443, "nginx", 170),
        tcp("0.0.0.0", 80, "nginx", 170),
        tcp("::", 3000, "grafana", 180),
        tcp("0.0.0.0", 8080, "beam.smp", 190),
        tcp("127.0.0.1", 9000, "php-fpm8.2", 200),  # FastCGI, not HTTP
        tcp("127.0.0.1", 4222, "nats-server", 210),  # an unknown service: nothing
        tcp("0.0.0.0", 2024),  # an owner we may not read: nothing
        ListeningSocket("udp", "0.0.0.0", 53, "dnsmasq", 220),
    ),
    docker_socket="/var/run/docker.sock",
    docker_socket_readable=True,
    block_devices=(
        BlockDevice("nvme0n1", 10**12, False, "Samsung SSD 970 EVO Plus 1TB", False),
        BlockDevice("sda", 4 * 10**12, True, "WDC WD40EFRX-68N", False),
        BlockDevice("vda", 10**11, True, "", True),
    ),
    md_arrays=(MdArray("md0", "active", "raid1", ("sda1", "sdb1"), True),),
    zfs_pools=(ZfsPool("tank", "ONLINE"),),
    gpus=(GpuDevice("card0", "nvidia", "nvidia"), GpuDevice("card1", "intel", "i915")),
    hwmon=("coretemp", "nvme", "nvme"),
    systemd=True,
    executables=("mdadm", "nvidia-smi", "sensors", "smartctl", "systemctl", "upsc", "zpool"),
)
BUSY_KEYS = [
    "docker",
    "docker-stats",
    "gpu",
    "http-check:3000",
    "http-check:80",
    "http-check:8080",
    "lm-sensors",
    "mdadm",
    "mqtt-broker:1883",
    "mqtt-broker:8883",
    "mysql:3306",
    "nvidia-smi",
    "ollama:11434",
    "postgres:5432",
    "postgres:5433",
    "redis:6379",
    "smartctl",
    "systemctl",
    "tls-certificate:443",
    "upsc:3493",
    "zpool-status",
]


def test_a_busy_host_gets_one_proposal_per_thing_to_watch() -> None:
    assert [p.key for p in discover(facts=BUSY)] == BUSY_KEYS


@pytest.mark.parametrize("cls", BUILTIN_PLUGINS, ids=lambda cls: cls().get_metadata().id)
def test_every_proposal_fits_its_plugin(cls: type[PluginBase[Any]]) -> None:
    """Asked directly (not through collect_proposals, which would drop a bad one)."""
    metadata = cls().get_metadata()
    for proposal in cls.discover(BUSY):
        assert proposal_problems(metadata, proposal) == []
        assert cls.config_model is not None
        cls.config_model.model_validate(proposal.config)  # the plugin's own validation
        assert cls(proposal.config).config == cls.config_model.model_validate(proposal.config)
        assert proposal.title
        assert proposal.reason


def by_key(facts: HostFacts) -> dict[str, Proposal]:
    return {p.key: p for p in discover(facts=facts)}


def test_services_are_proposed_on_loopback_with_the_credential_they_need() -> None:
    found = by_key(BUSY)
    postgres = found["postgres:5432"]
    assert (postgres.plugin, postgres.title) == ("postgres", "PostgreSQL on port 5432")
    assert postgres.config == {"host": "127.0.0.1", "port": 5432}
    assert postgres.credential == "password"
    assert postgres.reason.startswith("postgres (pid 100) listens on TCP 127.0.0.1:5432.")
    assert found["postgres:5433"].config == {"host": "127.0.0.1", "port": 5433}
    mysql = found["mysql:3306"]
    assert mysql.config == {"host": "127.0.0.1", "port": 3306}  # bound to 0.0.0.0
    assert mysql.credential == "password"
    # On loopback only, Redis and Mosquitto allow clients without a password...
    assert found["redis:6379"].credential is None
    assert found["mqtt-broker:1883"].credential is None
    # ...open to the network they want one; 8883 speaks TLS.
    assert found["mqtt-broker:8883"].config == {"host": "127.0.0.1", "port": 8883, "tls": True}
    assert found["mqtt-broker:8883"].credential == "password"
    assert found["upsc:3493"].config == {"host": "127.0.0.1", "port": 3493}
    assert found["ollama:11434"].config == {"url": "http://127.0.0.1:11434"}
    assert found["tls-certificate:443"].config == {"endpoints": ["127.0.0.1:443"]}
    assert "server_name" in found["tls-certificate:443"].reason


def test_web_apps_on_their_usual_ports_are_checked_by_name() -> None:
    found = by_key(BUSY)
    grafana = found["http-check:3000"]
    assert grafana.title == "HTTP on port 3000 (grafana)"
    [endpoint] = grafana.config["endpoints"]
    assert endpoint["name"] == "grafana-3000"
    assert endpoint["url"] == "http://[::1]:3000/"
    assert 302 in endpoint["expected_status"]
    # a dot would split the metric path: beam.smp -> beam-smp
    assert found["http-check:8080"].config["endpoints"][0]["name"] == "beam-smp-8080"
    assert "http-check:9000" not in found
    assert not [key for key in found if key.endswith((":4222", ":2024", ":41234", ":33060"))]


def test_host_wide_plugins_describe_what_they_found() -> None:
    found = by_key(BUSY)
    smart = found["smartctl"]
    assert smart.title == "SMART health of 2 disks"  # not vda: virtio has no SMART
    assert "sda (WDC WD40EFRX-68N, 4.0 TB, HDD)" in smart.reason
    assert "needs root" in smart.reason
    assert smart.config == {}  # smartctl --scan finds them, and any disk added later
    assert found["mdadm"].config == {"detail": True}
    assert found["mdadm"].title == "Software RAID: 1 md array"
    assert found["zpool-status"].reason == "zpool list shows tank (ONLINE)."
    assert found["nvidia-smi"].title == "Hardware state of 1 NVIDIA GPU"
    assert found["gpu"].title == "AI/ML load of 1 NVIDIA GPU"
    assert found["lm-sensors"].reason == "Hardware monitors: coretemp, nvme."
    assert found["docker"].config == {"socket": "/var/run/docker.sock"}
    assert found["docker-stats"].config == {"socket": "/var/run/docker.sock"}


def test_nothing_is_proposed_that_could_not_run() -> None:
    bare = replace(
        BUSY,
        executables=(),
        docker_socket_readable=False,
        md_arrays=(replace(BUSY.md_arrays[0], readable=False),),
    )
    keys = set(by_key(bare))
    # without their commands: no SMART, GPU, sensors, systemd or UPS client
    assert not keys & {"smartctl", "nvidia-smi", "gpu", "lm-sensors", "systemctl", "upsc:3493"}
    assert not keys & {"docker", "docker-stats"}  # a socket this user may not use
    assert by_key(bare)["mdadm"].config == {"detail": False}  # /proc/mdstat only
    assert "zpool-status" in keys  # the pools were listed: zpool was there when scanned
    only_vda = HostFacts(block_devices=(BlockDevice("vda", 10**11),), executables=("smartctl",))
    assert discover(facts=only_vda) == []
    assert discover(facts=HostFacts()) == []


def test_a_big_host_still_gets_its_proposals_described_in_short() -> None:
    disks = tuple(
        BlockDevice(f"sd{chr(97 + i % 26)}{i}", 16 * 10**12, True, "ST16000NM001G-2KK103")
        for i in range(60)
    )
    long_name = "a-very-long-process-name." * 12
    facts = HostFacts(
        listeners=(tcp("0.0.0.0", 8080, long_name, 7),),
        block_devices=disks,
        executables=("smartctl",),
    )
    found = by_key(facts)
    assert set(found) == {"smartctl", "http-check:8080"}
    assert found["smartctl"].title == "SMART health of 60 disks"
    assert len(found["smartctl"].reason) == 1000
    assert found["smartctl"].reason.endswith("\u2026")
    assert len(found["http-check:8080"].title) == 200
    name = found["http-check:8080"].config["endpoints"][0]["name"]
    assert name.startswith("a-very-long-process-name-a-very")
    assert name.endswith("-8080")
    assert len(name) <= 100


def test_keys_and_configs_are_stable_across_scans() -> None:
    restarted = replace(
        BUSY, listeners=tuple(replace(s, pid=(s.pid or 0) + 5000) for s in BUSY.listeners)
    )
    first, second = discover(facts=BUSY), discover(facts=restarted)
    assert [(p.key, p.config, p.credential) for p in first] == [
        (p.key, p.config, p.credential) for p in second
    ]


def test_ipv6_only_servers_are_reached_on_ipv6_loopback() -> None:
    facts = HostFacts(
        listeners=(tcp("::1", 3493, "upsd", 1), tcp("::", 8443, "caddy", 2)),
        executables=("upsc",),
    )
    found = by_key(facts)
    assert found["upsc:3493"].config == {"host": "[::1]", "port": 3493}  # upsc's ups@[::1]
    assert found["tls-certificate:8443"].config == {"endpoints": ["[::1]:8443"]}


# -- the real services of this machine -----------------------------------------

PG_URL = urlsplit(
    os.environ.get("UNITY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
)


@dataclass(frozen=True)
class Service:
    name: str
    key: str
    credential: str | None
    # What the test adds to the suggested config: its own credentials.
    login: dict[str, Any] = field(default_factory=dict)
    check: Callable[[dict[str, Any]], bool] = lambda document: True

    @property
    def port(self) -> int:
        return int(self.key.rpartition(":")[2])


SERVICES = [
    Service(
        "PostgreSQL",
        "postgres:5432",
        "password",
        {
            "user": PG_URL.username or "postgres",
            "database": PG_URL.path.lstrip("/") or "test",
            **({"password": PG_URL.password} if PG_URL.password else {}),
        },
        lambda d: d["reachable"] == 1 and d["uptime"] > 0 and d["connections"]["total"] >= 1,
    ),
    Service(
        "MariaDB",
        "mysql:3306",
        "password",
        {"user": "root"},
        lambda d: d["reachable"] == 1 and d["uptime"] > 0 and d["threads"]["connected"] >= 1,
    ),
    Service(
        "Redis",
        "redis:6379",
        None,
        check=lambda d: d["reachable"] == 1 and d["memory"]["used"] > 0,
    ),
    Service(
        "Mosquitto",
        "mqtt-broker:1883",
        None,
        check=lambda d: d["version"].startswith("mosquitto version ") and d["uptime"] > 0,
    ),
]


def require(service: Service) -> None:
    """Skip (fail under CI) when the service does not answer on its loopback port."""
    try:
        socket.create_connection(("127.0.0.1", service.port), timeout=2).close()
    except OSError as exc:
        reason = f"{service.name} is not running on 127.0.0.1:{service.port}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(f"CI requires {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def here() -> dict[str, Proposal]:
    discover()  # warm: imports
    started = time.perf_counter()
    found = discover()
    seconds = time.perf_counter() - started
    print(f"discover(): {seconds * 1000:.1f} ms, {len(found)} proposals")
    assert seconds < 1.0
    return {p.key: p for p in found}


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
async def test_a_real_service_is_proposed_and_the_proposal_collects(
    service: Service, here: dict[str, Proposal]
) -> None:
    require(service)
    proposal = here.get(service.key)
    assert proposal is not None, f"{service.name} not proposed; proposals: {sorted(here)}"
    assert proposal.config["host"] == "127.0.0.1"
    assert proposal.config["port"] == service.port
    assert proposal.credential == service.credential
    cls = PLUGINS[proposal.plugin]
    assert proposal_problems(cls().get_metadata(), proposal) == []
    # As accepting it would: the suggested config, plus what the credential gives.
    document = await check_plugin(cls, {**proposal.config, **service.login})
    assert service.check(document), document


def test_the_module_prints_the_report_an_agent_sends() -> None:
    running = []
    for service in SERVICES:
        try:
            socket.create_connection(("127.0.0.1", service.port), timeout=2).close()
            running.append(service.key)
        except OSError:
            continue
    command = [sys.executable, "-m", "unity_catalogue.discovery"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    report = ProposalReport.model_validate_json(result.stdout)
    keys = [p.key for p in report.proposals]
    assert keys == sorted(keys)
    assert set(running) <= set(keys)
    facts = json.loads(
        subprocess.run(
            [*command, "--facts"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    )
    assert set(facts) >= {"listeners", "block_devices", "executables", "docker_socket"}
    assert {s["port"] for s in facts["listeners"]} >= {int(k.split(":")[1]) for k in running}
