"""Asking Linux directly where psutil does far more than a plugin uses.

* :func:`socket_states` counts TCP and UDP sockets by state.
  ``psutil.net_connections()`` reads ``/proc/net/{tcp,tcp6,udp,udp6}`` and
  first walks every process's file descriptors to find who owns each socket,
  which ``network-monitor`` never reports. Counting needs neither: one
  sock_diag netlink dump per family and protocol (what ``ss`` uses) returns
  each socket's state, and costs well under a millisecond where reading the
  ``/proc/net`` tables costs ~10 ms (the kernel walks its whole connection
  hash for each of them). The ``/proc/net`` tables are the fallback.
* :func:`read_stat` reads one process's ``/proc/<pid>/stat``, which holds its
  name, state, CPU time, thread count, start time and resident pages: what
  ``process-monitor`` needs, in one read instead of psutil's three files plus
  a re-read to check the pid was not reused.

Both return None where ``/proc`` is not there (not Linux, or hidden), and the
plugins fall back to psutil. States and names are psutil's, so the documents
are the same either way.
"""

from __future__ import annotations

import os
import socket
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "CLOCK_TICKS",
    "PAGE_SIZE",
    "PROC",
    "ProcStat",
    "full_name",
    "netlink_socket_states",
    "proc_socket_states",
    "read_stat",
    "socket_states",
]

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# The kernel's TCP state numbers (include/net/tcp_states.h) as psutil names them.
_TCP_STATES = {
    "01": psutil.CONN_ESTABLISHED,
    "02": psutil.CONN_SYN_SENT,
    "03": psutil.CONN_SYN_RECV,
    "04": psutil.CONN_FIN_WAIT1,
    "05": psutil.CONN_FIN_WAIT2,
    "06": psutil.CONN_TIME_WAIT,
    "07": psutil.CONN_CLOSE,
    "08": psutil.CONN_CLOSE_WAIT,
    "09": psutil.CONN_LAST_ACK,
    "0A": psutil.CONN_LISTEN,
    "0B": psutil.CONN_CLOSING,
}
# The state letters of /proc/<pid>/stat as psutil names them.
_PROCESS_STATES = {
    "R": psutil.STATUS_RUNNING,
    "S": psutil.STATUS_SLEEPING,
    "D": psutil.STATUS_DISK_SLEEP,
    "T": psutil.STATUS_STOPPED,
    "t": psutil.STATUS_TRACING_STOP,
    "Z": psutil.STATUS_ZOMBIE,
    "X": psutil.STATUS_DEAD,
    "x": psutil.STATUS_DEAD,
    "K": "wake-kill",  # psutil names it, but has no constant for it
    "W": psutil.STATUS_WAKING,
    "I": psutil.STATUS_IDLE,
    "P": psutil.STATUS_PARKED,
}
# The kernel keeps 15 bytes of a process name (TASK_COMM_LEN - 1).
_COMM_LENGTH = 15


# sock_diag (linux/sock_diag.h, linux/inet_diag.h).
_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 0x1
_NLM_F_DUMP = 0x300
_NLMSG_ERROR = 2
_NLMSG_DONE = 3
_NLMSG_HEADER = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
# inet_diag_req_v2: family, protocol, extensions, pad, state mask, then a 48-byte socket id.
_DIAG_REQUEST = struct.Struct("=BBBBI48x")
_ALL_STATES = 0xFFFFFFFF
_NETLINK_TIMEOUT = 5.0


def socket_states(proc: Path = PROC) -> dict[str, int] | None:
    """Internet sockets per state (lower case, as psutil's; UDP sockets are ``none``).

    None when neither netlink nor ``/proc/net`` can tell (not Linux, or denied).
    """
    if hasattr(socket, "AF_NETLINK"):  # Linux
        try:
            return netlink_socket_states()
        except OSError:
            pass  # sock_diag refused (a locked-down kernel or container): read the tables
    return proc_socket_states(proc)


def netlink_socket_states() -> dict[str, int]:
    """:func:`socket_states` by sock_diag netlink dumps; OSError when the kernel refuses."""
    states: Counter[str] = Counter()
    for family in (socket.AF_INET, socket.AF_INET6):
        for state, count in _diag_dump(family, socket.IPPROTO_TCP).items():
            states[_TCP_STATES.get(f"{state:02X}", psutil.CONN_NONE).lower()] += count
        udp = sum(_diag_dump(family, socket.IPPROTO_UDP).values())
        if udp:
            states[psutil.CONN_NONE.lower()] += udp
    return dict(states)


def _diag_dump(family: int, protocol: int) -> Counter[int]:
    """How many sockets of ``family`` and ``protocol`` are in each kernel state number."""
    request = _DIAG_REQUEST.pack(family, protocol, 0, 0, _ALL_STATES)
    header = _NLMSG_HEADER.pack(
        _NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST | _NLM_F_DUMP, 1, 0
    )
    counts: Counter[int] = Counter()
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as link:
        link.settimeout(_NETLINK_TIMEOUT)
        link.sendall(header + request)
        while True:
            data = link.recv(1 << 16)
            if not data:
                raise OSError("the sock_diag dump ended without NLMSG_DONE")
            offset = 0
            while offset + _NLMSG_HEADER.size <= len(data):
                length, kind, _, _, _ = _NLMSG_HEADER.unpack_from(data, offset)
                if kind == _NLMSG_DONE:
                    return counts
                if kind == _NLMSG_ERROR or length < _NLMSG_HEADER.size + 2:
                    raise OSError(f"sock_diag refused the dump of family {family}")
                # inet_diag_msg starts with family, then state.
                counts[data[offset + _NLMSG_HEADER.size + 1]] += 1
                offset += (length + 3) & ~3


def proc_socket_states(proc: Path = PROC) -> dict[str, int] | None:
    """:func:`socket_states` from the ``/proc/net`` tables.

    None when ``/proc/net/tcp`` cannot be read. A missing ``tcp6``/``udp6``
    means the kernel has no IPv6: those count zero.
    """
    states: Counter[str] = Counter()
    for name in ("tcp", "tcp6", "udp", "udp6"):
        try:
            with open(proc / "net" / name, "rb") as table:
                lines = table.read().splitlines()[1:]  # the first line is the header
        except FileNotFoundError:
            if name == "tcp":
                return None
            continue
        except OSError:
            return None
        if name.startswith("udp"):
            if lines:
                states[psutil.CONN_NONE.lower()] += len(lines)
            continue
        for line in lines:
            # "  12: 0100007F:1F90 00000000:0000 0A ...": the fourth field is the state.
            fields = line.split(None, 4)
            if len(fields) > 3:
                states[_TCP_STATES.get(fields[3].decode(), psutil.CONN_NONE).lower()] += 1
    return dict(states)


@dataclass(frozen=True, slots=True)
class ProcStat:
    """What ``/proc/<pid>/stat`` says about one process."""

    name: str  # as the kernel keeps it: at most 15 bytes
    status: str  # psutil's name of the state
    cpu_seconds: float  # user + system
    threads: int
    started: int  # clock ticks after boot: with the pid, identifies the process
    rss: int  # bytes


def read_stat(pid: int, proc: Path = PROC) -> ProcStat | None:
    """One process's stat line; None when it is gone (or was never readable)."""
    try:
        with open(proc / str(pid) / "stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    # The name sits in parentheses and may itself hold spaces and parentheses.
    opening, closing = data.find(b"("), data.rfind(b")")
    fields = data[closing + 2 :].split()
    if opening < 0 or closing < 0 or len(fields) < 22:
        return None
    return ProcStat(
        name=os.fsdecode(data[opening + 1 : closing]),
        status=_PROCESS_STATES.get(fields[0].decode(), "?"),
        cpu_seconds=(int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
        threads=int(fields[17]),
        started=int(fields[19]),
        rss=int(fields[21]) * PAGE_SIZE,
    )


def full_name(pid: int, stat: ProcStat, proc: Path = PROC) -> str:
    """The name psutil reports: a 15-byte name completed from the command line.

    The kernel cuts names at 15 bytes; like psutil, when the command line's
    first word starts with the cut name, that word (without its folder) is it.
    """
    if len(stat.name) < _COMM_LENGTH:
        return stat.name
    try:
        with open(proc / str(pid) / "cmdline", "rb") as file:
            data = os.fsdecode(file.read())
    except OSError:
        return stat.name
    # Arguments end in NUL; a process that rewrote its title may use spaces.
    separator = "\x00" if data.endswith("\x00") else " "
    arguments = data.removesuffix(separator).split(separator)
    if separator == "\x00" and len(arguments) == 1 and " " in arguments[0]:
        arguments = arguments[0].split(" ")
    extended = os.path.basename(arguments[0]) if data else ""
    return extended if extended.startswith(stat.name) else stat.name
