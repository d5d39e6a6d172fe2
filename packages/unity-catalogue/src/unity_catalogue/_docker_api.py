"""The Docker Engine API over its unix socket, for the ``docker`` and ``docker-stats`` plugins.

A small async client on httpx (``httpx.AsyncHTTPTransport(uds=...)``) for the few
read-only endpoints the plugins use -- ``/_ping``, ``/version``, ``/info``,
``/containers/json``, ``/containers/{id}/json`` and ``/containers/{id}/stats`` --
with the socket's failures mapped to SDK errors, and the arithmetic the
``docker stats`` command applies to a stats object (Engine API v1.43+, cgroup v1
and v2; see ``cli/command/container/stats_helpers.go`` of docker/cli).

Paths carry no ``/v1.xx`` prefix, so every engine answers in its own current API
version; the fields read here are stable since API v1.25.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from unity_sdk import CollectionError, DependencyMissingError, PluginNotReadyError

if TYPE_CHECKING:
    import httpx

__all__ = ["DockerEngine", "container_name", "container_usage"]


class _NotFound(CollectionError):
    """The engine answered 404: the container went away between two requests."""


class DockerEngine:
    """An open connection to one Docker Engine; use as ``async with DockerEngine(path):``."""

    def __init__(self, socket_path: str, *, timeout: float = 10.0) -> None:
        # Imported here: a hub that never runs the Docker plugins never loads httpx.
        import httpx

        self.socket_path = socket_path
        self._client = httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(uds=socket_path),
            base_url="http://docker",
            timeout=timeout,
        )

    async def __aenter__(self) -> DockerEngine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def get(self, path: str, **params: str) -> Any:
        """The decoded JSON answer of ``GET path``; SDK errors for every failure."""
        import httpx

        try:
            os.stat(self.socket_path)
        except FileNotFoundError:
            raise DependencyMissingError(
                f"Docker socket {self.socket_path} does not exist: "
                "is Docker installed and its daemon running?"
            ) from None
        except PermissionError:
            raise _permission_denied(self.socket_path) from None
        try:
            response = await self._client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise PluginNotReadyError(
                f"Docker Engine on {self.socket_path} did not answer {path} in time"
            ) from exc
        except httpx.TransportError as exc:
            raise _transport_error(self.socket_path, exc) from exc
        if response.status_code >= 400:
            error = _NotFound if response.status_code == 404 else CollectionError
            raise error(
                f"Docker Engine answered {path} with HTTP {response.status_code}: "
                f"{_message(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise CollectionError(f"Docker Engine answered {path} with invalid JSON") from exc

    async def containers(self, *, all_states: bool = True) -> list[dict[str, Any]]:
        """``GET /containers/json``: one summary per container."""
        found = await self.get("/containers/json", all="true" if all_states else "false")
        return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []

    async def inspect(self, container_ids: list[str]) -> dict[str, dict[str, Any]]:
        """``GET /containers/{id}/json`` of each container, fetched concurrently.

        A container removed since it was listed is left out.
        """
        return await self._each(container_ids, "/containers/{}/json")

    async def stats(self, container_ids: list[str]) -> dict[str, dict[str, Any]]:
        """One ``stream=false`` stats object per container id, fetched concurrently.

        The engine samples the CPU counters twice, about a second apart, so a
        call takes about a second whatever the number of containers. A container
        removed since it was listed is left out.
        """
        return await self._each(container_ids, "/containers/{}/stats", stream="false")

    async def _each(
        self, container_ids: list[str], template: str, **params: str
    ) -> dict[str, dict[str, Any]]:
        async def one(container_id: str) -> Any:
            try:
                return await self.get(template.format(container_id), **params)
            except _NotFound:
                return None

        answers = await asyncio.gather(*(one(cid) for cid in container_ids))
        return {
            cid: answer
            for cid, answer in zip(container_ids, answers, strict=True)
            if isinstance(answer, dict)
        }


def _errnos(exc: BaseException) -> Iterator[int]:
    # httpx wraps httpcore's error, which wraps the OSError of connect().
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno is not None:
            yield seen.errno
        seen = seen.__cause__ or seen.__context__


def _transport_error(socket_path: str, exc: httpx.TransportError) -> Exception:
    codes = set(_errnos(exc))
    if codes & {errno.EACCES, errno.EPERM} or "permission denied" in str(exc).lower():
        return _permission_denied(socket_path)
    return PluginNotReadyError(f"Docker Engine on {socket_path} is not answering: {exc}")


def _permission_denied(socket_path: str) -> DependencyMissingError:
    return DependencyMissingError(
        f"permission denied on the Docker socket {socket_path}: "
        "run the hub as root or as a member of the docker group"
    )


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    message = body.get("message") if isinstance(body, dict) else None
    if isinstance(message, str):
        return message
    return response.text.strip()[:200]


def container_name(summary: Mapping[str, Any]) -> str:
    """The name ``docker ps`` shows: the first of ``Names`` without its leading slash."""
    names = summary.get("Names") or []
    if names and isinstance(names[0], str):
        return names[0].lstrip("/")
    return str(summary.get("Id", ""))[:12]


def _int(node: Any, *keys: str) -> int:
    for key in keys:
        if not isinstance(node, Mapping):
            return 0
        node = node.get(key)
    return int(node) if isinstance(node, int | float) and not isinstance(node, bool) else 0


def container_usage(stats: Mapping[str, Any]) -> dict[str, Any]:
    """CPU, memory, network and block IO of one stats object, computed as ``docker stats`` does."""
    cpu_delta = _int(stats, "cpu_stats", "cpu_usage", "total_usage") - _int(
        stats, "precpu_stats", "cpu_usage", "total_usage"
    )
    system_delta = _int(stats, "cpu_stats", "system_cpu_usage") - _int(
        stats, "precpu_stats", "system_cpu_usage"
    )
    online = _int(stats, "cpu_stats", "online_cpus") or len(
        (stats.get("cpu_stats") or {}).get("cpu_usage", {}).get("percpu_usage") or []
    )
    cpu_percent = 0.0
    if system_delta > 0 and cpu_delta > 0:
        cpu_percent = cpu_delta / system_delta * online * 100.0

    memory = stats.get("memory_stats") or {}
    usage = _int(memory, "usage")
    detail = memory.get("stats") or {}
    # Page cache that can be dropped is not "used" (cgroup v1 and v2 spellings).
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    if isinstance(inactive, int) and 0 < inactive < usage:
        usage -= inactive
    limit = _int(memory, "limit")

    networks = stats.get("networks") or {}
    rx = sum(_int(nic, "rx_bytes") for nic in networks.values())
    tx = sum(_int(nic, "tx_bytes") for nic in networks.values())

    read = write = 0
    entries = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    for entry in entries:
        op = str(entry.get("op", ""))[:1].lower()
        if op == "r":
            read += _int(entry, "value")
        elif op == "w":
            write += _int(entry, "value")

    return {
        "cpu_percent": round(cpu_percent, 3),
        "memory": {
            "usage": usage,
            "limit": limit,
            "percent": round(usage / limit * 100.0, 3) if limit else 0.0,
        },
        "network": {"rx_bytes": rx, "tx_bytes": tx},
        "block_io": {"read_bytes": read, "write_bytes": write},
        "pids": _int(stats, "pids_stats", "current"),
    }
