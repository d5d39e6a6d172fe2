"""Discovery: what a scan saw on a host, and the rule that turns it into proposals.

Discovery looks at what runs on a host and *proposes* plugins to watch it
("PostgreSQL on port 5432 - monitor it?"); it never enables anything. It has
three parts, so a third-party plugin takes part exactly as a built-in does:

- :class:`HostFacts`: what one scan saw, as plain frozen values. The
  catalogue's ``unity_catalogue.discovery.gather_facts()`` reads them from
  Linux (``/proc``, ``/sys``, ``PATH``); a source it cannot read leaves its
  fact empty, so "nothing seen" and "not allowed to look" read the same.
- ``PluginBase.discover(facts)``: a classmethod each plugin may implement,
  returning the :class:`~unity_sdk.Proposal` s for itself (none by default).
- :func:`collect_proposals`: asks plugin classes and keeps only the
  proposals the hub would accept (:func:`proposal_problems`), one per key,
  sorted by key. A plugin whose ``discover`` raises is skipped with a
  warning: one broken plugin never hides what the others found.

Example::

    class Memcached(PluginBase[MemcachedConfig]):
        @classmethod
        def discover(cls, facts: HostFacts) -> list[Proposal]:
            return [
                Proposal(
                    key=f"memcached:{socket.port}",
                    plugin="memcached",
                    title=f"Memcached on port {socket.port}",
                    config={"host": socket.host, "port": socket.port},
                )
                for socket in facts.listening(ports=[11211], processes=["memcached"])
            ]
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from unity_sdk._agent_wire import Proposal
from unity_sdk._config import secret_fields, validate_config
from unity_sdk.errors import ConfigError, error_lines
from unity_sdk.metadata import PluginMetadata

if TYPE_CHECKING:
    from unity_sdk.plugin import PluginBase

__all__ = [
    "DEFAULT_DISCOVERY_SECONDS",
    "BlockDevice",
    "GpuDevice",
    "HostFacts",
    "ListeningSocket",
    "MdArray",
    "ZfsPool",
    "collect_proposals",
    "proposal_problems",
]

_logger = logging.getLogger("unity_sdk.discovery")
# How often a host is scanned by default, by its agent or (its own machine) the hub.
DEFAULT_DISCOVERY_SECONDS = 600.0
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


@dataclass(frozen=True, slots=True)
class ListeningSocket:
    """A TCP socket in LISTEN state, or a bound, unconnected UDP socket."""

    protocol: Literal["tcp", "udp"]
    address: str  # as bound: "0.0.0.0", "127.0.0.1", "::", "::1", "192.168.1.5"
    port: int
    process: str = ""  # the owning process's name; "" when it could not be read
    pid: int | None = None

    @property
    def ipv6(self) -> bool:
        return ":" in self.address

    @property
    def host(self) -> str:
        """Where a plugin on the same host connects: loopback for a socket bound
        to every address, else the address it is bound to."""
        return _WILDCARDS.get(self.address, self.address)

    @property
    def loopback_only(self) -> bool:
        """Reachable from this host alone (bound to 127.0.0.0/8 or ::1)."""
        try:
            return ipaddress.ip_address(self.address).is_loopback
        except ValueError:
            return False

    @property
    def endpoint(self) -> str:
        """``host:port`` to connect to, IPv6 in brackets: ``"[::1]:443"``."""
        return f"[{self.host}]:{self.port}" if self.ipv6 else f"{self.host}:{self.port}"

    def url(self, scheme: str = "http", path: str = "/") -> str:
        """``http://127.0.0.1:8080/``: a URL of this socket for a plugin on the same host."""
        return f"{scheme}://{self.endpoint}{path}"

    @property
    def _rank(self) -> tuple[int, int]:
        # Loopback (or everything) before one interface, IPv4 before IPv6.
        reachable = self.address in _WILDCARDS or self.loopback_only
        return (0 if reachable else 1, 1 if self.ipv6 else 0)


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """A disk (``/sys/block``), without the virtual ones (loop, zram, dm, md)."""

    name: str  # "sda", "nvme0n1", "vda"
    size_bytes: int
    rotational: bool | None = None  # None: the kernel does not say
    model: str = ""
    readable: bool = False  # this user may open /dev/<name> (smartctl needs that)


@dataclass(frozen=True, slots=True)
class MdArray:
    """A Linux software RAID array from ``/proc/mdstat``."""

    name: str  # "md0"
    state: str  # "active", "inactive"
    level: str = ""  # "raid1"; "" for an inactive array
    devices: tuple[str, ...] = ()  # member partitions: ("sda1", "sdb1")
    readable: bool = False  # this user may open /dev/<name> (mdadm --detail needs that)


@dataclass(frozen=True, slots=True)
class ZfsPool:
    """A ZFS pool as ``zpool list -H`` shows it."""

    name: str
    health: str = ""  # "ONLINE", "DEGRADED"...


@dataclass(frozen=True, slots=True)
class GpuDevice:
    """A GPU: a DRM card (``/sys/class/drm/cardN``) or an NVIDIA device node."""

    name: str  # "card0", "nvidia0"
    vendor: str  # "nvidia", "amd", "intel", or the PCI vendor id ("0x1a03")
    driver: str = ""  # "nvidia", "amdgpu", "i915"


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What one discovery scan saw on a host. Every field defaults to "nothing seen"."""

    listeners: tuple[ListeningSocket, ...] = ()
    docker_socket: str | None = None  # the Docker Engine's unix socket, when it exists
    docker_socket_readable: bool = False  # this user may talk to it
    block_devices: tuple[BlockDevice, ...] = ()
    md_arrays: tuple[MdArray, ...] = ()
    zfs_pools: tuple[ZfsPool, ...] = ()
    gpus: tuple[GpuDevice, ...] = ()
    hwmon: tuple[str, ...] = ()  # hardware monitor chips (/sys/class/hwmon/*/name)
    systemd: bool = False  # systemd is the running init (/run/systemd/system)
    executables: tuple[str, ...] = ()  # commands plugins need that are on PATH

    def has(self, command: str) -> bool:
        """Whether ``command`` was found on PATH (among those plugins need)."""
        return command in self.executables

    def listening(
        self,
        *,
        ports: Collection[int] = (),
        processes: Collection[str] = (),
        protocol: Literal["tcp", "udp"] = "tcp",
    ) -> list[ListeningSocket]:
        """The sockets of a service, one per port, sorted by port.

        A socket matches when its port is one of ``ports`` (whoever owns it: a
        ``docker-proxy`` in front of a container counts) or its process is one
        of ``processes`` and that process listens on none of ``ports``: then
        only on its lowest port (MySQL's X protocol on 33060 is not a second
        server). Of the sockets on one port, the one a local plugin reaches
        best is kept: bound to loopback or to everything, IPv4 first.
        """
        mine = [s for s in self.listeners if s.protocol == protocol]
        chosen = [s for s in mine if s.port in ports]
        served = {s.pid for s in chosen if s.pid is not None}
        owners: dict[int, ListeningSocket] = {}
        for socket in mine:
            if socket.pid is None or socket.pid in served or socket.process not in processes:
                continue
            if socket.pid not in owners or socket.port < owners[socket.pid].port:
                owners[socket.pid] = socket
        picked = {(owner.pid, owner.port) for owner in owners.values()}
        chosen += [s for s in mine if (s.pid, s.port) in picked]
        best: dict[int, ListeningSocket] = {}
        for socket in chosen:
            if socket.port not in best or socket._rank < best[socket.port]._rank:
                best[socket.port] = socket
        return [best[port] for port in sorted(best)]


def proposal_problems(metadata: PluginMetadata, proposal: Proposal) -> list[str]:
    """Why the hub would refuse ``proposal`` from the plugin ``metadata`` describes.

    A plugin proposes itself only; its keys are its id or start with
    ``"{id}:"`` (so two plugins never claim one key); the suggested config
    validates against the plugin's schema; ``credential`` names one of its
    secret fields, which the config leaves out (a stored credential fills it).
    """
    problems = []
    if proposal.plugin != metadata.id:
        problems.append(f"plugin {proposal.plugin!r} is not {metadata.id!r}")
    prefix = f"{metadata.id}:"
    if proposal.key != metadata.id and not proposal.key.startswith(prefix):
        problems.append(f"key {proposal.key!r} must be {metadata.id!r} or start with {prefix!r}")
    if proposal.credential is not None:
        if proposal.credential not in secret_fields(metadata):
            problems.append(f"credential {proposal.credential!r} is not a secret config field")
        if proposal.credential in proposal.config:
            problems.append(f"config holds {proposal.credential!r}: a stored credential fills it")
    try:
        validate_config(metadata, proposal.config)
    except ConfigError as exc:
        lines = error_lines(exc.errors, whole="config")
        problems.append(f"config is not valid: {'; '.join(lines)}")
    return problems


def collect_proposals(plugins: Iterable[type[PluginBase[Any]]], facts: HostFacts) -> list[Proposal]:
    """Every valid proposal the ``plugins`` make for ``facts``, one per key, sorted by key.

    A plugin whose ``discover`` raises, or a proposal with problems
    (:func:`proposal_problems`), is left out with a warning naming it; when
    two proposals share a key, the first plugin's wins.
    """
    found: dict[str, Proposal] = {}
    for cls in plugins:
        try:
            proposals = list(cls.discover(facts))
            metadata = cls().get_metadata() if proposals else None
        except Exception:
            _logger.warning("discovery by %s failed", cls.__name__, exc_info=True)
            continue
        for proposal in proposals:
            problems = (
                proposal_problems(metadata, proposal)
                if isinstance(proposal, Proposal) and metadata is not None
                else [f"{proposal!r} is not a Proposal"]
            )
            if problems:
                _logger.warning(
                    "%s proposed something the hub would refuse: %s",
                    cls.__name__,
                    "; ".join(problems),
                )
                continue
            found.setdefault(proposal.key, proposal)
    return [found[key] for key in sorted(found)]
