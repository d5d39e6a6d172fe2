"""The ``lxc-list`` plugin: the real lxc client against recorded LXD API answers, and more.

A real HTTP server on a unix socket answers the LXD REST API with responses
recorded from an LXD 5.0 host (fixtures/lxc-list/SOURCE.md); the real ``lxc``
client is pointed at it with ``LXD_SOCKET``, so the plugin parses what the
client really prints.
"""

from __future__ import annotations

import copy
import json
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from services_support import (
    FIXTURES,
    FakeRunner,
    Recorded,
    ScopedRunner,
    check_class,
    collect_checked,
    make,
    require_command,
    serve_http,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from unity_catalogue.lxc_list import LxcListPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginNotReadyError

RECORDED = FIXTURES / "lxc-list"
LIST = "lxc list --format json"


def api(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


def lxd_app(queries: list[str]) -> Starlette:
    """The two LXD API endpoints ``lxc list`` reads, answering with recorded responses."""

    async def server(request: Request) -> Response:
        return JSONResponse(api("api-server.json"))

    async def instances(request: Request) -> Response:
        queries.append(str(request.url.query))
        answer = api("api-instances.json")
        if request.query_params.get("all-projects") == "true":
            lab = copy.deepcopy(answer["metadata"][0])
            lab.update({"name": "pihole", "project": "lab"})
            answer["metadata"].append(lab)
        return JSONResponse(answer)

    return Starlette(routes=[Route("/1.0", server), Route("/1.0/instances", instances)])


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="unity-lxd-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
async def lxd(socket_dir: Path) -> AsyncIterator[tuple[ScopedRunner, list[str]]]:
    """A runner whose real ``lxc`` talks to the recorded LXD API; (runner, queries seen)."""
    require_command("lxc")
    queries: list[str] = []
    path = socket_dir / "unix.socket"
    env = {"LXD_SOCKET": str(path), "LXD_CONF": str(socket_dir / "conf")}
    async with serve_http(lxd_app(queries), uds=str(path)):
        yield ScopedRunner(env=env), queries


def test_metadata() -> None:
    metadata = check_class(LxcListPlugin, "lxc-list", "container")
    assert metadata.supports_remote
    assert metadata.requires.commands == ["lxc"]


async def test_real_client_lists_instances(lxd: tuple[ScopedRunner, list[str]]) -> None:
    runner, queries = lxd
    plugin = make(LxcListPlugin, runner=runner)
    document = await collect_checked(plugin)
    assert queries == ["filter=&recursion=2"]
    assert document["total"] == 5
    assert document["status"] == {
        "running": 2,
        "stopped": 1,
        "frozen": 1,
        "error": 1,
        "other": 0,
    }
    assert document["types"] == {"containers": 4, "virtual_machines": 1}
    assert document["instances"]["pihole"] == {
        "status": "Running",
        "type": "container",
        "project": "default",
        "cpu_time": 1812.345678901,
        "memory_usage": 98566144,
        "memory_peak": 0,
        "swap_usage": 0,
        "disk_usage": 612345856,
        "processes": 23,
        "network_rx_bytes": 812334512,
        "network_tx_bytes": 145229981,
    }
    assert document["instances"]["haos"]["type"] == "virtual-machine"
    assert document["instances"]["haos"]["network_rx_bytes"] == 2210934567
    assert document["instances"]["nextcloud"] == {
        "status": "Stopped",
        "type": "container",
        "project": "default",
        "cpu_time": 0.0,
        "memory_usage": 0,
        "memory_peak": 0,
        "swap_usage": 0,
        "processes": 0,
    }
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message == "1 instance(s) in error: ci-runner"


async def test_real_client_all_projects(lxd: tuple[ScopedRunner, list[str]]) -> None:
    runner, queries = lxd
    document = await collect_checked(make(LxcListPlugin, runner=runner, all_projects=True))
    assert queries == ["all-projects=true&filter=&recursion=2"]
    assert document["total"] == 6
    assert document["instances"]["lab/pihole"]["project"] == "lab"
    assert document["instances"]["pihole"]["project"] == "default"


async def test_real_client_no_daemon(socket_dir: Path) -> None:
    require_command("lxc")
    path = socket_dir / "unix.socket"
    runner = ScopedRunner(env={"LXD_SOCKET": str(path), "LXD_CONF": str(socket_dir / "conf")})
    plugin = make(LxcListPlugin, runner=runner)
    with pytest.raises(PluginNotReadyError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        'lxc: the daemon is not reachable: Get "http://unix.socket/1.0": dial unix '
        f"{path}: connect: no such file or directory"
    )
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_real_client_permission_denied(socket_dir: Path) -> None:
    require_command("lxc")
    require_command("setpriv")
    path = socket_dir / "unix.socket"
    with socket.socket(socket.AF_UNIX) as daemon:
        daemon.bind(str(path))
        daemon.listen()
        path.chmod(0o600)
        env = {"LXD_SOCKET": str(path), "LXD_CONF": str(socket_dir / "conf")}
        plugin = make(LxcListPlugin, runner=ScopedRunner(env=env, unprivileged=True))
        with pytest.raises(DependencyMissingError, match="member of the lxd group"):
            await plugin.collect_data()
        assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_recorded_list_output() -> None:
    runner = FakeRunner("lxc-list", {LIST: Recorded("list.json")})
    document = await collect_checked(make(LxcListPlugin, runner=runner))
    assert sorted(document["instances"]) == ["backup", "ci-runner", "haos", "nextcloud", "pihole"]
    assert document["instances"]["backup"]["status"] == "Frozen"
    assert document["instances"]["backup"]["cpu_time"] == 45.678901234


async def test_recorded_empty_host_with_incus() -> None:
    runner = FakeRunner("lxc-list", {"incus list --format json": Recorded("list-empty.json")})
    plugin = make(LxcListPlugin, runner=runner, command="incus")
    document = await collect_checked(plugin)
    assert document["total"] == 0
    assert document["instances"] == {}
    assert (await plugin.health_check()).message == "0 instance(s)"


@pytest.mark.parametrize(
    ("command", "stderr", "error", "message"),
    [
        ("lxc", "no-daemon.stderr", PluginNotReadyError, "daemon is not reachable"),
        ("lxc", "snap-permission-denied.stderr", DependencyMissingError, "lxd group"),
        ("incus", "incus-no-daemon.stderr", PluginNotReadyError, "doesn't appear to be started"),
    ],
)
async def test_recorded_errors(
    command: str, stderr: str, error: type[Exception], message: str
) -> None:
    answers = {f"{command} list --format json": Recorded("", stderr, 1)}
    plugin = make(LxcListPlugin, runner=FakeRunner("lxc-list", answers), command=command)
    with pytest.raises(error, match=message):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_lxc_missing() -> None:
    plugin = make(LxcListPlugin, runner=FakeRunner("lxc-list", {}))
    with pytest.raises(DependencyMissingError, match="lxc is not installed"):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY
