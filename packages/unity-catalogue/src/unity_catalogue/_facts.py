"""What a Linux host has besides its sockets: disks, arrays, pools, GPUs, sensors, Docker.

Each reader takes the root of the tree it reads (``/`` on a real host, a
folder of recorded files in tests) and returns "nothing" for a source that is
missing or unreadable: discovery reports what it could see and never fails
because a host lacks something.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from unity_sdk import BlockDevice, GpuDevice, MdArray, ZfsPool

__all__ = [
    "block_devices",
    "docker_socket",
    "gpus",
    "hwmon_chips",
    "md_arrays",
    "zfs_pools",
]

# /sys/block entries without a SMART-able disk behind them: optical drives.
_NOT_DISKS = ("sr",)
# PCI vendor ids (/sys/class/drm/cardN/device/vendor) of the GPU makers people mean.
_VENDORS = {"0x10de": "nvidia", "0x1002": "amd", "0x8086": "intel"}
_CARD = re.compile(r"card\d+")
_NVIDIA_NODE = re.compile(r"nvidia\d+")
# "md0 : active raid1 sdb1[1] sda1[0](F)" / "md1 : inactive sdc1[0](S)"
_MD_LINE = re.compile(r"^(md\S*) : (\S+)\s*(.*)$")
_MEMBER = re.compile(r"^(\S+?)\[\d+\]")
_ZPOOL_TIMEOUT = 3.0


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def block_devices(root: Path) -> tuple[BlockDevice, ...]:
    """The disks in ``/sys/block``: those with a device behind them (no loop, zram,
    dm or md), not optical drives, not empty."""
    found = []
    try:
        entries = sorted(os.listdir(root / "sys" / "block"))
    except OSError:
        return ()
    for name in entries:
        folder = root / "sys" / "block" / name
        sectors = _read(folder / "size")
        if not (folder / "device").exists() or name.startswith(_NOT_DISKS):
            continue
        if not sectors or not sectors.isdigit() or int(sectors) == 0:
            continue
        rotational = _read(folder / "queue" / "rotational")
        found.append(
            BlockDevice(
                name=name,
                size_bytes=int(sectors) * 512,  # /sys/block/*/size counts 512-byte sectors
                rotational={"0": False, "1": True}.get(rotational or ""),
                model=_read(folder / "device" / "model") or "",
                readable=os.access(root / "dev" / name, os.R_OK),
            )
        )
    return tuple(found)


def md_arrays(root: Path) -> tuple[MdArray, ...]:
    """The arrays ``/proc/mdstat`` lists (none when the md driver is not loaded)."""
    text = _read(root / "proc" / "mdstat")
    if text is None:
        return ()
    found = []
    for line in text.splitlines():
        match = _MD_LINE.match(line)
        if not match:
            continue
        name, state, rest = match.groups()
        # "(auto-read-only)" and the like describe the state, not a member.
        words = [word for word in rest.split() if not word.startswith("(")]
        level = words.pop(0) if words and "[" not in words[0] else ""
        members = tuple(m.group(1) for word in words if (m := _MEMBER.match(word)))
        readable = os.access(root / "dev" / name, os.R_OK)
        found.append(MdArray(name, state, level, members, readable))
    return tuple(found)


def zfs_pools(root: Path, zpool: str | None) -> tuple[ZfsPool, ...]:
    """``zpool list -H`` when the ZFS module is loaded and ``zpool`` is at hand.

    Without the module there can be no pool, so the command (which would only
    fail) is not run.
    """
    if zpool is None or not (root / "sys" / "module" / "zfs").is_dir():
        return ()
    try:
        result = subprocess.run(
            [zpool, "list", "-H", "-o", "name,health"],
            capture_output=True,
            text=True,
            timeout=_ZPOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ()
    if result.returncode != 0:
        return ()
    pools = []
    for line in result.stdout.splitlines():
        name, _, health = line.partition("\t")
        if name.strip():
            pools.append(ZfsPool(name.strip(), health.strip()))
    return tuple(pools)


def gpus(root: Path) -> tuple[GpuDevice, ...]:
    """The DRM cards, plus the NVIDIA device nodes when no DRM card is NVIDIA's
    (the proprietary driver without nvidia-drm registers no card)."""
    found = []
    drm = root / "sys" / "class" / "drm"
    try:
        cards = sorted(name for name in os.listdir(drm) if _CARD.fullmatch(name))
    except OSError:
        cards = []
    for card in cards:
        vendor = (_read(drm / card / "device" / "vendor") or "").lower()
        try:
            driver = os.path.basename(os.readlink(drm / card / "device" / "driver"))
        except OSError:
            driver = ""
        found.append(GpuDevice(card, _VENDORS.get(vendor, vendor or "unknown"), driver))
    if not any(gpu.vendor == "nvidia" for gpu in found):
        try:
            nodes = sorted(
                name for name in os.listdir(root / "dev") if _NVIDIA_NODE.fullmatch(name)
            )
        except OSError:
            nodes = []
        found += [GpuDevice(node, "nvidia", "nvidia") for node in nodes]
    return tuple(found)


def hwmon_chips(root: Path) -> tuple[str, ...]:
    """The names of the hardware monitors (``coretemp``, ``nct6775``, ``nvme``), sorted."""
    folder = root / "sys" / "class" / "hwmon"
    try:
        entries = os.listdir(folder)
    except OSError:
        return ()
    return tuple(sorted(name for entry in entries if (name := _read(folder / entry / "name"))))


def docker_socket(root: Path, environ: Mapping[str, str]) -> tuple[str | None, bool]:
    """The Docker Engine's unix socket and whether this user may use it.

    Where the docker CLI would look: ``DOCKER_HOST`` when it names a unix
    socket, the system socket, then a rootless daemon's socket of this user.
    Using it needs read and write access to the socket file.
    """
    candidates = ["/var/run/docker.sock", f"/run/user/{os.getuid()}/docker.sock"]
    host = environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        candidates.insert(0, host.removeprefix("unix://"))
    for candidate in candidates:
        path = root / candidate.lstrip("/")
        try:
            if stat.S_ISSOCK(path.stat().st_mode):
                return candidate, os.access(path, os.R_OK | os.W_OK)
        except OSError:
            continue
    return None, False
