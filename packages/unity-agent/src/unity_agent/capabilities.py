"""Which catalogue plugins need more than a plain user, and whether a user has it.

The agent runs as an unprivileged user (``install-service``). Most plugins see
everything from there; a few need a group (the Docker socket, the journal),
a Linux capability (SMART) or root. This table is the one place that says
which: ``join`` and ``capabilities`` print it for the current user,
``install-service`` turns its groups into ``SupplementaryGroups=`` and its
capabilities into ``AmbientCapabilities=``. Every catalogue plugin is either
in :data:`NEEDS` or in :data:`NEEDS_NOTHING` (a test holds the two to the
catalogue).
"""

from __future__ import annotations

import grp
import os
import pwd
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CAPABILITY_BITS",
    "NEEDS",
    "NEEDS_NOTHING",
    "Need",
    "Subject",
    "existing_groups",
    "report",
]


@dataclass(frozen=True)
class Need:
    """What ``plugins`` need to see everything: one of ``groups``, or all of
    ``capabilities``, or read-write access to ``path``; ``root_only`` when
    nothing but root will do."""

    plugins: tuple[str, ...]
    what: str
    groups: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    path: str | None = None
    root_only: bool = False


NEEDS: tuple[Need, ...] = (
    Need(
        ("smartctl",),
        "disk group and CAP_SYS_RAWIO (NVMe: CAP_SYS_ADMIN), or root",
        groups=("disk",),
        capabilities=("CAP_SYS_RAWIO",),
    ),
    Need(
        ("docker", "docker-stats"),
        "docker group, for /var/run/docker.sock (as good as root)",
        groups=("docker",),
        path="/var/run/docker.sock",
    ),
    Need(("ipmitool",), "root, or read-write access to /dev/ipmi0", path="/dev/ipmi0"),
    Need(("journalctl",), "systemd-journal or adm group", groups=("systemd-journal", "adm")),
    Need(("lxc-list",), "lxd or incus-admin group", groups=("lxd", "incus-admin")),
    Need(("virsh",), "libvirt group, for qemu:///system", groups=("libvirt",)),
    Need(("fail2ban",), "root (fail2ban's socket is root-only)", root_only=True),
    Need(("mdadm",), "root for detail: true (/proc/mdstat needs nothing)", root_only=True),
    Need(("ss",), "root to name other users' listening processes", root_only=True),
)

# Plugins that see everything as any user.
NEEDS_NOTHING: tuple[str, ...] = (
    "system-info",
    "process-monitor",
    "disk-monitor",
    "network-monitor",
    "lm-sensors",
    "upsc",
    "iostat",
    "lsblk",
    "zpool-status",
    "nvidia-smi",
    "gpu",
    "systemctl",
    "iperf3",
    "ollama",
    "http-check",
    "tls-certificate",
    "dns-check",
    "postgres",
    "mysql",
    "redis",
    "mqtt-broker",
)

# Bit numbers in /proc/<pid>/status' capability masks (linux/capability.h).
CAPABILITY_BITS = {"CAP_SYS_RAWIO": 17, "CAP_SYS_ADMIN": 21}


@dataclass(frozen=True)
class Subject:
    """Who is checked: the running process, or the user a service will run as."""

    name: str
    uid: int
    gids: frozenset[int]
    # The effective capabilities when known (the running process), else None.
    capabilities: frozenset[str] | None
    current: bool

    @classmethod
    def this_process(cls) -> Subject:
        uid = os.geteuid()
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        gids = frozenset({os.getegid(), *os.getgroups()})
        return cls(name, uid, gids, _effective_capabilities(), current=True)

    @classmethod
    def user(cls, name: str) -> Subject | None:
        """The user ``name`` as a login would make it (primary and supplementary
        groups); ``None`` when there is no such user."""
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            return None
        gids = frozenset(
            {entry.pw_gid, *(group.gr_gid for group in grp.getgrall() if name in group.gr_mem)}
        )
        return cls(name, entry.pw_uid, gids, None, current=False)

    def in_group(self, group: str) -> bool | None:
        """Membership of ``group``; ``None`` when this machine has no such group."""
        try:
            return grp.getgrnam(group).gr_gid in self.gids
        except KeyError:
            return None

    def can_use(self, path: str) -> bool | None:
        """Read-write access to ``path`` by its mode bits; ``None`` when it does not exist."""
        return self.may(path, "rw")

    def may(self, path: str | os.PathLike[str], access: str) -> bool | None:
        """Whether the mode bits of ``path`` give this subject ``access`` (letters
        of ``"rwx"``); ``None`` when it does not exist. Root may do anything."""
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        except PermissionError:
            return False
        if self.uid == 0:
            return True
        if info.st_uid == self.uid:
            shift = 6
        elif info.st_gid in self.gids:
            shift = 3
        else:
            shift = 0
        mask = sum({"r": 4, "w": 2, "x": 1}[letter] for letter in access) << shift
        return info.st_mode & mask == mask


def _effective_capabilities() -> frozenset[str] | None:
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("CapEff:"):
            mask = int(line.split(":", 1)[1], 16)
            return frozenset(name for name, bit in CAPABILITY_BITS.items() if mask >> bit & 1)
    return None


def existing_groups(needs: Iterable[Need] = NEEDS) -> list[str]:
    """The groups of the table that exist here, one per need (the first that exists)."""
    found: list[str] = []
    for need in needs:
        for group in need.groups:
            try:
                grp.getgrnam(group)
            except KeyError:
                continue
            if group not in found:
                found.append(group)
            break
    return found


def _verdict(need: Need, who: Subject) -> str:
    """One short answer: does ``who`` have what ``need`` asks for, here?"""
    if who.uid == 0:
        return "yes (root)"
    subject = "you are" if who.current else f"{who.name} is"
    parts: list[str] = []
    present = {group: who.in_group(group) for group in need.groups}
    members = [group for group, member in present.items() if member]
    for group in members or [group for group, member in present.items() if member is not None]:
        parts.append(f"{subject} in {group}: {'yes' if members else 'no'}")
    if need.groups and not parts:
        parts.append(f"no {' or '.join(need.groups)} group on this machine")
    if need.capabilities and who.capabilities is not None:
        for capability in need.capabilities:
            parts.append(f"{capability}: {'yes' if capability in who.capabilities else 'no'}")
    if need.path is not None:
        access = who.can_use(need.path)
        if access is None:
            parts.append(f"no {need.path} here")
        elif not need.groups:
            parts.append(f"{need.path}: {'yes' if access else 'no'}")
    if need.root_only:
        parts.append(f"{subject} root: no")
    return "; ".join(parts)


def report(who: Subject | None = None) -> list[str]:
    """The table as lines for a terminal, checked for ``who`` (default: this process)."""
    who = who or Subject.this_process()
    rows = [(", ".join(need.plugins), need.what, _verdict(need, who)) for need in NEEDS]
    first = max(len(row[0]) for row in rows)
    second = max(len(row[1]) for row in rows)
    lines = [f"What the agent can see as {who.name}: plugins that need a group or capability"]
    lines += [f"  {a:<{first}}  {b:<{second}}  {c}" for a, b, c in rows]
    lines.append(
        "Everything else needs no group: "
        + ", ".join(NEEDS_NOTHING[:6])
        + f" and {len(NEEDS_NOTHING) - 6} more."
    )
    return lines
