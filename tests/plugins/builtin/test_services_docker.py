"""The ``docker`` and ``docker-stats`` plugins against a real HTTP server on a unix socket.

The server (uvicorn) answers with Docker Engine API responses recorded from a
host running three containers (fixtures/docker/SOURCE.md); the plugins talk to
it exactly as to ``/var/run/docker.sock``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from services_support import (
    FIXTURES,
    check_class,
    collect_checked,
    make,
    require_command,
    serve_http,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from unity_catalogue.docker import DockerPlugin
from unity_catalogue.docker_stats import DockerStatsPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginBase, PluginNotReadyError

RECORDED = FIXTURES / "docker"


def recorded(name: str) -> Any:
    return json.loads((RECORDED / name).read_text())


CONTAINERS: list[dict[str, Any]] = recorded("containers.json")
NAMES = {c["Id"]: c["Names"][0].lstrip("/") for c in CONTAINERS}


def engine_app(requests: list[str]) -> Starlette:
    """The Engine API endpoints the plugins use, answering with recorded responses."""

    async def ping(request: Request) -> Response:
        return PlainTextResponse("OK")

    async def document(request: Request) -> Response:
        requests.append(request.url.path)
        return JSONResponse(recorded(f"{request.url.path.strip('/')}.json"))

    async def containers(request: Request) -> Response:
        requests.append(request.url.path)
        if request.query_params.get("all") in ("1", "true"):
            return JSONResponse(CONTAINERS)
        # Without all=true the engine lists running, paused and restarting containers.
        return JSONResponse([c for c in CONTAINERS if c["State"] != "exited"])

    async def per_container(request: Request) -> Response:
        requests.append(request.url.path)
        name = NAMES.get(request.path_params["id"])
        kind = request.path_params["kind"]
        path = RECORDED / f"{'inspect' if kind == 'json' else kind}-{name}.json"
        if name is None or kind not in ("json", "stats"):
            return JSONResponse({"message": "No such container"}, status_code=404)
        if kind == "stats":
            assert request.query_params["stream"] == "false"
            if not path.exists():
                # Stats of a container that is not running: empty counters, as the engine sends.
                return JSONResponse({"read": "0001-01-01T00:00:00Z", "memory_stats": {}})
        return JSONResponse(json.loads(path.read_text()))

    return Starlette(
        routes=[
            Route("/_ping", ping),
            Route("/version", document),
            Route("/info", document),
            Route("/containers/json", containers),
            Route("/containers/{id}/{kind}", per_container),
        ]
    )


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # A short path: a unix socket path must fit in 108 bytes, pytest's tmp_path may not.
    path = Path(tempfile.mkdtemp(prefix="unity-docker-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@pytest.fixture
async def engine(socket_dir: Path) -> AsyncIterator[tuple[str, list[str]]]:
    """A real HTTP server on a unix socket serving the recorded Engine API; (path, requests)."""
    requests: list[str] = []
    path = str(socket_dir / "docker.sock")
    async with serve_http(engine_app(requests), uds=path):
        yield path, requests


def test_metadata() -> None:
    for cls, plugin_id in ((DockerStatsPlugin, "docker-stats"), (DockerPlugin, "docker")):
        metadata = check_class(cls, plugin_id, "container")
        assert not metadata.supports_remote
        assert metadata.requires.packages == ["httpx"]
        assert make(cls).config.socket == "/var/run/docker.sock"


async def test_docker_stats_reports_running_containers(engine: tuple[str, list[str]]) -> None:
    path, requests = engine
    document = await collect_checked(make(DockerStatsPlugin, socket=path))
    assert set(document["containers"]) == {"web", "db"}
    assert document["running"] == 2
    web = document["containers"]["web"]
    assert web["id"] == CONTAINERS[0]["Id"][:12]
    assert web["image"] == "nginx:1.27"
    assert web["cpu_percent"] == pytest.approx(15.2)
    assert web["memory"] == {
        "usage": 22331392,
        "limit": 8221130752,
        "percent": pytest.approx(22331392 / 8221130752 * 100, abs=1e-3),
    }
    assert web["network"] == {"rx_bytes": 1548392711, "tx_bytes": 9874412093}
    assert web["block_io"] == {"read_bytes": 1236992, "write_bytes": 8192}
    assert web["pids"] == 5
    db = document["containers"]["db"]
    assert db["cpu_percent"] == pytest.approx(3.8)
    assert db["memory"]["usage"] == 116011008
    assert db["memory"]["percent"] == pytest.approx(10.804, abs=1e-3)
    assert document["total"] == {
        "cpu_percent": pytest.approx(19.0),
        "memory_usage": 22331392 + 116011008,
    }
    # The restarting container is listed but never asked for stats.
    assert not any("stats" in r and CONTAINERS[2]["Id"] in r for r in requests)


async def test_docker_stats_filters_by_name(engine: tuple[str, list[str]]) -> None:
    path, _ = engine
    plugin = make(DockerStatsPlugin, socket=path, containers=["db", "no-such-container"])
    document = await collect_checked(plugin)
    assert list(document["containers"]) == ["db"]
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == "Docker Engine 26.1.5"


async def test_docker_reports_states_health_and_restarts(engine: tuple[str, list[str]]) -> None:
    path, _ = engine
    document = await collect_checked(make(DockerPlugin, socket=path))
    assert document["engine"] == {
        "version": "26.1.5",
        "api_version": "1.45",
        "cpus": 4,
        "memory": 8221130752,
    }
    assert document["images"] == 7
    assert document["containers"] == {
        "total": 3,
        "created": 0,
        "running": 2,
        "paused": 0,
        "restarting": 1,
        "removing": 0,
        "exited": 0,
        "dead": 0,
    }
    assert document["health"] == {"healthy": 1, "unhealthy": 1, "starting": 0, "none": 1}
    assert document["restarts"] == 7
    assert document["instances"]["db"] == {
        "state": "running",
        "health": "unhealthy",
        "image": "postgres:16",
        "status": "Up 3 days (unhealthy)",
        "restart_count": 0,
    }
    assert document["instances"]["worker"]["restart_count"] == 7
    assert document["instances"]["worker"]["state"] == "restarting"
    resources = document["resources"]
    assert resources["cpu_percent"] == pytest.approx(19.0)
    assert resources["memory_usage"] == 22331392 + 116011008
    assert resources["memory_percent"] == pytest.approx(138342400 / 8221130752 * 100, abs=1e-3)


async def test_docker_health_names_the_troubled_containers(engine: tuple[str, list[str]]) -> None:
    path, _ = engine
    health = await make(DockerPlugin, socket=path).health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message == "2 container(s) in trouble: db unhealthy, worker restarting"
    assert health.details["containers"] == {"db": "unhealthy", "worker": "restarting"}


@pytest.mark.parametrize("cls", [DockerPlugin, DockerStatsPlugin])
async def test_socket_missing(cls: type[PluginBase], socket_dir: Path) -> None:
    plugin = make(cls, socket=str(socket_dir / "docker.sock"))
    with pytest.raises(DependencyMissingError, match=r"docker.sock does not exist"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "does not exist: is Docker installed and its daemon running?" in health.message


@pytest.mark.parametrize("cls", [DockerPlugin, DockerStatsPlugin])
async def test_engine_not_answering(cls: type[PluginBase], socket_dir: Path) -> None:
    # A socket file nobody listens on, as a crashed daemon leaves behind.
    path = socket_dir / "docker.sock"
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(path))
        plugin = make(cls, socket=str(path))
        with pytest.raises(PluginNotReadyError, match="is not answering"):
            await plugin.collect_data()
        assert (await plugin.health_check()).status is HealthState.UNHEALTHY


UNPRIVILEGED_RUN = """
import asyncio, sys
from unity_catalogue.docker import DockerPlugin
from unity_catalogue.docker_stats import DockerStatsPlugin

async def main() -> None:
    for cls in (DockerPlugin, DockerStatsPlugin):
        plugin = cls({"socket": sys.argv[1]})
        try:
            await plugin.collect_data()
        except Exception as exc:
            print(type(exc).__name__, exc)
        health = await plugin.health_check()
        print(health.status.value, health.message)

asyncio.run(main())
"""


async def test_permission_denied_on_socket(engine: tuple[str, list[str]]) -> None:
    path, requests = engine
    os.chmod(path, 0)
    if os.geteuid() != 0:
        plugin = make(DockerPlugin, socket=path)
        with pytest.raises(DependencyMissingError, match="permission denied"):
            await plugin.collect_data()
        return
    # Root ignores file modes. In a new user namespace it keeps its uid but loses
    # CAP_DAC_OVERRIDE over the host's files, so connect() meets the socket's mode.
    unshare = require_command("unshare")
    proc = await asyncio.create_subprocess_exec(
        unshare,
        "--user",
        sys.executable,
        "-c",
        UNPRIVILEGED_RUN,
        path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    expected = (
        f"permission denied on the Docker socket {path}: "
        "run the hub as root or as a member of the docker group"
    )
    each_plugin = [f"DependencyMissingError {expected}", f"unhealthy {expected}"]
    assert out.decode().splitlines() == each_plugin * 2
    assert requests == []
