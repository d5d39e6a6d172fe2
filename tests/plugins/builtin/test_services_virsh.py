"""The ``virsh`` plugin: the real virsh against libvirt's test driver, and recorded KVM output."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from services_support import (
    FIXTURES,
    FakeRunner,
    Recorded,
    UnprivilegedRunner,
    check_class,
    collect_checked,
    make,
    require_command,
)

from unity_catalogue.virsh import VirshPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginNotReadyError

TEST_NODE = f"test://{FIXTURES / 'virsh' / 'test-node.xml'}"
KVM_DOMAINS = ["home-assistant", "pihole", "nextcloud", "k3s-worker-2", "win11", "truenas-old"]
RECORDED = {
    "virsh list --all": Recorded("list-all.txt"),
    **{f"virsh dominfo {name}": Recorded(f"dominfo-{name}.txt") for name in KVM_DOMAINS},
}
GiB = 1024**3


def test_metadata() -> None:
    metadata = check_class(VirshPlugin, "virsh", "container")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["virsh"]


async def test_real_virsh_on_the_test_driver() -> None:
    require_command("virsh")
    plugin = make(VirshPlugin, uri=TEST_NODE)
    document = await collect_checked(plugin)
    assert document["total"] == 4
    assert document["states"]["running"] == 1
    assert document["states"]["paused"] == 1
    assert document["states"]["shut_off"] == 1
    assert document["states"]["crashed"] == 1
    assert document["states"]["other"] == 0
    web = document["domains"]["web01"]
    assert web["state"] == "running"
    assert web["id"] == 1
    assert web["vcpus"] == 2
    assert web["max_memory"] == 2 * GiB
    assert web["cpu_time"] > 0
    assert web["autostart"] is False
    assert web["persistent"] is True
    win11 = document["domains"]["win11"]
    assert win11["state"] == "shut off"
    assert "id" not in win11
    assert (win11["vcpus"], win11["max_memory"], win11["used_memory"]) == (4, 8 * GiB, 8 * GiB)
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message == "1 domain(s) crashed: build-runner"


async def test_real_virsh_without_details() -> None:
    require_command("virsh")
    document = await collect_checked(make(VirshPlugin, uri=TEST_NODE, details=False))
    assert document["domains"]["db01"] == {"state": "paused", "id": 2}


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="unity-libvirt-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


async def test_real_virsh_no_daemon(socket_dir: Path) -> None:
    require_command("virsh")
    uri = f"qemu+unix:///system?socket={socket_dir}/libvirt-sock"
    plugin = make(VirshPlugin, uri=uri)
    with pytest.raises(PluginNotReadyError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        "virsh cannot connect to the hypervisor: Failed to connect socket to "
        f"'{socket_dir}/libvirt-sock': No such file or directory"
    )
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == str(caught.value)


async def test_real_virsh_permission_denied(socket_dir: Path) -> None:
    require_command("virsh")
    require_command("setpriv")
    path = socket_dir / "libvirt-sock"
    with socket.socket(socket.AF_UNIX) as daemon:
        daemon.bind(str(path))
        daemon.listen()
        path.chmod(0o600)
        uri = f"qemu+unix:///system?socket={path}"
        plugin = make(VirshPlugin, runner=UnprivilegedRunner(), uri=uri)
        with pytest.raises(DependencyMissingError, match="permission denied by libvirt"):
            await plugin.collect_data()
        assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_recorded_kvm_host() -> None:
    runner = FakeRunner("virsh", RECORDED)
    plugin = make(VirshPlugin, runner=runner)
    document = await collect_checked(plugin)
    assert document["total"] == 6
    assert document["states"] == {
        "no_state": 0,
        "running": 2,
        "idle": 0,
        "paused": 1,
        "in_shutdown": 0,
        "shut_off": 2,
        "crashed": 1,
        "pmsuspended": 0,
        "other": 0,
    }
    assert document["domains"]["nextcloud"] == {
        "state": "paused",
        "id": 4,
        "vcpus": 4,
        "max_memory": 8 * GiB,
        "used_memory": 6 * GiB,
        "cpu_time": 301542.9,
        "autostart": True,
        "persistent": True,
    }
    assert "cpu_time" not in document["domains"]["win11"]
    assert runner.calls[0] == ("virsh", "list", "--all")
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.details == {"crashed": ["k3s-worker-2"]}


async def test_recorded_domain_gone_before_dominfo() -> None:
    answers = dict(RECORDED)
    answers["virsh dominfo pihole"] = Recorded("", "error: failed to get domain 'pihole'\n", 1)
    document = await collect_checked(make(VirshPlugin, runner=FakeRunner("virsh", answers)))
    assert document["domains"]["pihole"] == {"state": "running", "id": 3}


async def test_recorded_empty_host() -> None:
    runner = FakeRunner("virsh", {"virsh list --all": Recorded("list-empty.txt")})
    plugin = make(VirshPlugin, runner=runner)
    document = await collect_checked(plugin)
    assert document["total"] == 0
    assert document["domains"] == {}
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == "0 domain(s)"


@pytest.mark.parametrize(
    ("stderr", "error", "message"),
    [
        ("no-daemon.stderr", PluginNotReadyError, "cannot connect to the hypervisor"),
        ("permission-denied.stderr", DependencyMissingError, "permission denied by libvirt"),
    ],
)
async def test_recorded_connection_failures(
    stderr: str, error: type[Exception], message: str
) -> None:
    runner = FakeRunner("virsh", {"virsh list --all": Recorded("", stderr, 1)})
    with pytest.raises(error, match=message):
        await make(VirshPlugin, runner=runner).collect_data()


async def test_virsh_missing() -> None:
    plugin = make(VirshPlugin, runner=FakeRunner("virsh", {}))
    with pytest.raises(DependencyMissingError, match="virsh is not installed"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == "virsh is not installed on the target"
