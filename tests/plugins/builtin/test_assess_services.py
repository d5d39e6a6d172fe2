"""``assess(document)`` of the system and service plugins, and which built-ins have one.

Documents come from ``collect_data``: the recorded Docker Engine API served
on a real unix socket, recorded systemd 252 and sysstat output, and real
filesystems (a full tmpfs mounted for the test). ``health_check`` must say
what ``assess`` says.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import test_services_docker
from services_support import Recorded, collect_checked, make
from test_hardware_common import FakeRunner as ToolRunner
from test_hardware_common import recorded as tool_output
from test_hardware_iostat import IOSTAT
from test_services_systemctl import LIST_JSON, UNITS
from test_services_systemctl import recorded as systemd_252

from unity_catalogue import BUILTIN_PLUGINS
from unity_catalogue.disk_monitor import DiskMonitorPlugin
from unity_catalogue.docker import DockerPlugin
from unity_catalogue.iostat import IostatPlugin
from unity_catalogue.systemctl import SystemctlPlugin
from unity_sdk import HealthState, HealthStatus, PluginBase

# The recorded Docker Engine of the docker tests, a fixture of this module too.
engine = test_services_docker.engine
socket_dir = test_services_docker.socket_dir


async def judged(plugin: PluginBase) -> tuple[dict[str, object], HealthStatus]:
    document = await collect_checked(plugin)
    status = plugin.assess(document)
    assert status is not None
    assert await plugin.health_check() == status
    return document, status


async def test_docker_restarting_and_unhealthy_containers_are_degraded(
    engine: tuple[str, list[str]],
) -> None:
    path, _ = engine
    # health_check reads the container list only; assess reads the inspected document.
    _, status = await judged(make(DockerPlugin, socket=path))
    assert status.status is HealthState.DEGRADED
    assert status.message == "2 container(s) in trouble: db unhealthy, worker restarting"
    assert status.details == {"containers": {"db": "unhealthy", "worker": "restarting"}}


async def test_systemd_failed_units_are_degraded() -> None:
    plugin = make(SystemctlPlugin, runner=systemd_252(), units=UNITS)
    _, status = await judged(plugin)
    assert status.status is HealthState.DEGRADED
    assert status.message == (
        "3 unit(s) need attention: restic-backup.service failed, nut-monitor.service failed, "
        "grafana-server not found"
    )
    calm = make(
        SystemctlPlugin,
        runner=systemd_252(
            {
                LIST_JSON: Recorded("failed-none.json"),
                "systemctl is-system-running": Recorded("running\n"),
            }
        ),
    )
    _, status = await judged(calm)
    assert (status.status, status.message) == (HealthState.HEALTHY, "system running")


async def test_busy_device_is_degraded() -> None:
    runner = ToolRunner({IOSTAT: tool_output("iostat", "nas-sysstat-11.6.json")})
    _, status = await judged(make(IostatPlugin, runner=runner, util_warn=90))
    assert status.status is HealthState.DEGRADED
    assert status.message == "devices busier than 90%: sda 99.6%, sdb 91.2%"


# -- disk-monitor on real filesystems -------------------------------------------------


@pytest.fixture
def full_tmpfs() -> Iterator[str]:
    """A 1 MiB tmpfs mounted for the test and filled to the brim; yields its mountpoint."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mountpoint = tempfile.mkdtemp(prefix="unity-full-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "unity-test", mountpoint],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        os.rmdir(mountpoint)
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        with contextlib.suppress(OSError), open(Path(mountpoint) / "fill", "wb") as fill:
            fill.write(b"\0" * 2 * 1024 * 1024)  # more than fits: ENOSPC ends it
        yield mountpoint
    finally:
        subprocess.run(["umount", mountpoint], check=True)
        os.rmdir(mountpoint)


async def test_filesystems_above_the_mark_are_degraded_full_ones_unhealthy(
    full_tmpfs: str,
) -> None:
    root = psutil.disk_usage("/").percent
    calm = make(DiskMonitorPlugin, include_mountpoints=["/"], warn_percent=100)
    _, status = await judged(calm)
    assert (status.status, status.message) == (
        HealthState.HEALTHY,
        f"1 filesystem(s), the fullest {root:g} %",
    )
    if root > 0:
        alarmed = make(DiskMonitorPlugin, include_mountpoints=["/"], warn_percent=root / 2)
        _, status = await judged(alarmed)
        assert (status.status, status.message) == (
            HealthState.DEGRADED,
            f"1 filesystem(s) above {root / 2:g} % used: / {root:g} %",
        )
    full = make(DiskMonitorPlugin, include_mountpoints=[full_tmpfs])
    document, status = await judged(full)
    assert document["partitions"][full_tmpfs]["percent"] == 100.0  # type: ignore[index]
    assert status.status is HealthState.UNHEALTHY
    assert status.message == f"filesystem(s) full: {full_tmpfs} 100 %"
    assert status.details == {"partitions": {full_tmpfs: 100.0}}


# What these plugins collect are figures without a "wrong" of their own (CPU,
# processes, traffic, sockets, log counts, throughput, loaded models, broker
# statistics): alert rules on their metrics judge them.
NOT_ASSESSED = {
    "system-info",
    "process-monitor",
    "network-monitor",
    "lsblk",
    "docker-stats",
    "ss",
    "iperf3",
    "journalctl",
    "ollama",
    "mqtt-broker",
}


def test_every_builtin_that_can_judge_its_document_does() -> None:
    ids = {cls().get_metadata().id: cls for cls in BUILTIN_PLUGINS}
    assert set(ids) >= NOT_ASSESSED
    for plugin_id, cls in ids.items():
        judges = cls.assess is not PluginBase.assess
        assert judges is (plugin_id not in NOT_ASSESSED), plugin_id
