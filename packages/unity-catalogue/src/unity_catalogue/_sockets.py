"""The listening sockets of a Linux host and the processes that own them, from ``/proc``.

``psutil.net_connections()`` does this too, but it resolves the owner of
every socket, connected ones included; discovery needs only the listeners,
so it reads the tables itself and stops walking ``/proc/<pid>/fd`` once every
listener has an owner.

The tables (``/proc/net/{tcp,tcp6,udp,udp6}``) are in the kernel's
proc_net_tcp format (Documentation/networking/proc_net_tcp.rst; udp uses the
same columns): after a header line, one socket a line::

    sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
     0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000 106 0 23041 ...

Addresses are the kernel's 32-bit words printed as hex in the host's byte
order (``0100007F`` is 127.0.0.1 on a little-endian machine), four words for
IPv6; ports are hex in network order. ``st`` is the TCP state: ``0A`` LISTEN.
An unconnected UDP socket is ``07`` (CLOSE) with remote port 0: it receives
from anyone, the UDP meaning of listening.

A socket's owner is the process one of whose ``/proc/<pid>/fd/*`` links reads
``socket:[<inode>]``. Those links are readable only for one's own processes
(or as root): any other owner is left unknown.
"""

from __future__ import annotations

import ipaddress
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from unity_sdk import ListeningSocket

from ._linux import PROC, full_name, read_stat

__all__ = ["listening_sockets", "parse_table", "socket_owners"]

Protocol = Literal["tcp", "udp"]

_TABLES: dict[str, Protocol] = {"tcp": "tcp", "tcp6": "tcp", "udp": "udp", "udp6": "udp"}
_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_IPV4_WORD = struct.Struct("=I")
_IPV6_WORDS = struct.Struct("=4I")


def listening_sockets(proc: Path = PROC) -> tuple[ListeningSocket, ...]:
    """Every listening socket of this network namespace, with its owner where readable.

    A table that is missing (no IPv6) or unreadable adds nothing.
    """
    found: list[tuple[Protocol, str, int, int]] = []
    for table, protocol in _TABLES.items():
        try:
            text = (proc / "net" / table).read_text()
        except OSError:
            continue
        found += [(protocol, address, port, inode) for address, port, inode in parse_table(text)]
    owners = socket_owners({inode for *_, inode in found if inode}, proc)
    names: dict[int, str] = {}
    sockets = set()
    for protocol, address, port, inode in found:
        pid = owners.get(inode)
        if pid is not None and pid not in names:
            stat = read_stat(pid, proc)
            names[pid] = full_name(pid, stat, proc) if stat else ""
        process = names.get(pid, "") if pid is not None else ""
        sockets.add(ListeningSocket(protocol, address, port, process, pid))
    return tuple(sorted(sockets, key=lambda s: (s.protocol, s.port, s.address)))


def parse_table(text: str) -> Iterator[tuple[str, int, int]]:
    """``(address, port, inode)`` of each listening socket of one ``/proc/net`` table.

    Lines that do not parse are skipped: the tables are the kernel's, but a
    truncated read must not end the scan.
    """
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        local, remote, state = fields[1], fields[2], fields[3]
        if state not in (_TCP_LISTEN, _UDP_UNCONNECTED) or not remote.endswith(":0000"):
            continue
        try:
            address, port = _endpoint(local)
            inode = int(fields[9])
        except ValueError:
            continue
        if port:
            yield address, port, inode


def _endpoint(text: str) -> tuple[str, int]:
    """``"0100007F:1538"`` -> ``("127.0.0.1", 5432)``; ValueError when it is not one."""
    hex_address, _, hex_port = text.partition(":")
    if len(hex_address) == 8:
        packed = _IPV4_WORD.pack(int(hex_address, 16))
    elif len(hex_address) == 32:
        words = [int(hex_address[i : i + 8], 16) for i in range(0, 32, 8)]
        packed = _IPV6_WORDS.pack(*words)
    else:
        raise ValueError(f"not an address: {text!r}")
    address = ipaddress.ip_address(packed)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(hex_port, 16)


def socket_owners(inodes: set[int], proc: Path = PROC) -> dict[int, int]:
    """Socket inode -> the lowest pid holding it, for the processes whose fds we may read.

    Shared sockets (a master and its workers) go to the lowest pid, usually
    the master. Processes that vanish or refuse mid-walk are passed over.
    """
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, int] = {}
    if not wanted:
        return owners
    try:
        pids = sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return owners
    for pid in pids:
        fd_dir = f"{proc}/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:  # not ours to read, gone, or hidden (hidepid)
            continue
        for fd in fds:
            try:
                inode = wanted.get(os.readlink(f"{fd_dir}/{fd}"))
            except OSError:
                continue
            if inode is not None:
                owners.setdefault(inode, pid)
        if len(owners) == len(wanted):
            break
    return owners
