"""What a hub or an agent tells about the machine it runs on (the host card's facts).

The hub describes its own host with it and an agent its host, so both cards
say the same things the same way."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

import psutil

from unity_sdk import HostPlatform

__all__ = ["distribution", "host_platform"]

OS_RELEASE_FILES = (Path("/etc/os-release"), Path("/usr/lib/os-release"))


def distribution(paths: tuple[Path, ...] = OS_RELEASE_FILES) -> str:
    """The distribution's name from os-release (``"Debian GNU/Linux 12 (bookworm)"``);
    ``""`` where there is none (macOS, BSDs, minimal containers)."""
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        fields: dict[str, str] = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                fields[key.strip()] = value.strip().strip("'\"")
        name = fields.get("PRETTY_NAME") or " ".join(
            part for part in (fields.get("NAME", ""), fields.get("VERSION_ID", "")) if part
        )
        return name[:200]
    return ""


def host_platform(hostname: str | None = None, *, agent_version: str = "") -> HostPlatform:
    """This machine: host name (``hostname``, else the machine's), OS and kernel,
    distribution, CPUs, memory, the agent's version ("" for the hub), Python."""
    return HostPlatform(
        hostname=(hostname or socket.gethostname())[:255] or "localhost",
        os=f"{platform.system()} {platform.release()}".strip()[:200],
        distribution=distribution(),
        architecture=platform.machine()[:64],
        cpu_count=os.cpu_count(),
        memory_bytes=psutil.virtual_memory().total,
        agent_version=agent_version,
        python=platform.python_version(),
    )
