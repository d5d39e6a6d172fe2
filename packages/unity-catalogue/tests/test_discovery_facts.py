"""What ``gather_facts`` reads from a host: recorded ``/proc`` and ``/sys`` trees, then this one.

The socket tables below are real ``/proc/net/{tcp,tcp6,udp,udp6}`` lines,
recorded on Linux 6.x on x86-64 (little-endian: the kernel prints each 32-bit
address word in host byte order). Their format is the kernel's proc_net_tcp
format (Documentation/networking/proc_net_tcp.rst); udp uses the same columns.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import stat
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from unity_catalogue._sockets import listening_sockets, parse_table
from unity_catalogue.discovery import gather_facts
from unity_sdk import BlockDevice, GpuDevice, HostFacts, ListeningSocket, MdArray, ZfsPool

pytestmark = pytest.mark.skipif(
    sys.byteorder != "little" or not sys.platform.startswith("linux"),
    reason="the recorded tables are a little-endian Linux's",
)

HEADER = (
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
    "timeout inode\n"
)
TCP = HEADER + (
    # 127.0.0.1:5432 LISTEN (inode 4872), 0.0.0.0:2024 LISTEN (640), 127.0.0.1:6379 LISTEN (3979)
    "   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 "
    "4872 1 00000000b14f8950 100 0 0 10 0\n"
    "   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "640 1 000000007567e206 100 0 0 10 0\n"
    "   2: 0100007F:18EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
    "3979 1 00000000fcbde7cb 100 0 0 10 0\n"
    # TIME_WAIT (inode 0), then both ends of an ESTABLISHED connection to 5432
    "   9: 0100007F:1538 0100007F:C586 06 00000000:00000000 03:000001FC 00000000     0        0 "
    "0 3 000000000db44b72\n"
    "  20: 0100007F:CDDE 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 "
    "45299 2 0000000093b890e4 20 0 0 10 -1\n"
    "  33: 0100007F:1538 0100007F:CDDE 01 00000000:00000000 02:000AFC80 00000000   101        0 "
    "45300 2 00000000fe7779f7 20 0 0 10 -1\n"
    # a line cut short (a read that raced the kernel) is skipped, not fatal
    "  34: 0100007F:1538 00000000:0000 0A 0000\n"
)
TCP6 = HEADER + (
    # [::1]:6379 (3980), [::ffff:127.0.0.1]:57943 (45295), [::]:42489 (45294)
    "   0: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 3980 1 000000005c3fe047 100 0 0 10 0\n"
    "   1: 0000000000000000FFFF00000100007F:E257 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 45295 1 00000000adcf02e6 100 0 0 10 0\n"
    "   3: 00000000000000000000000000000000:A5F9 00000000000000000000000000000000:0000 0A "
    "00000000:00000000 00:00000000 00000000     0        0 45294 1 00000000a4b21330 100 0 0 10 0\n"
)
UDP = HEADER + (
    # a connected socket (not listening), then 0.0.0.0:60619 unconnected (45296)
    " 1576: 0100007F:D646 0100007F:0035 01 00000000:00000000 00:00000000 00000000     0        0 "
    "45297 2 00000000fe94e668 0\n"
    " 7341: 00000000:ECCB 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 "
    "45296 2 0000000083053cca 0\n"
)
UDP6 = HEADER + (
    # [::1]:40840 unconnected (45298)
    " 3946: 00000000000000000000000001000000:9F88 00000000000000000000000000000000:0000 07 "
    "00000000:00000000 00:00000000 00000000     0        0 45298 2 00000000c8c8b643 0\n"
)
# /proc/<pid>/stat of a sleeping process; {name} and {pid} filled in.
STAT = (
    "{pid} ({name}) S 1 {pid} {pid} 0 -1 4194560 2512 0 0 0 12 7 0 0 20 0 1 0 1934 "
    "221184000 5120 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n"
)


def test_parse_table_keeps_listeners_only() -> None:
    assert list(parse_table(TCP)) == [
        ("127.0.0.1", 5432, 4872),
        ("0.0.0.0", 2024, 640),
        ("127.0.0.1", 6379, 3979),
    ]


def test_parse_table_reads_ipv6_and_ipv4_mapped_addresses() -> None:
    assert list(parse_table(TCP6)) == [
        ("::1", 6379, 3980),
        ("127.0.0.1", 57943, 45295),
        ("::", 42489, 45294),
    ]


def test_parse_table_takes_unconnected_udp_sockets() -> None:
    assert list(parse_table(UDP)) == [("0.0.0.0", 60619, 45296)]
    assert list(parse_table(UDP6)) == [("::1", 40840, 45298)]


def _process(proc: Path, pid: int, name: str, fds: dict[str, str]) -> None:
    folder = proc / str(pid)
    (folder / "fd").mkdir(parents=True)
    (folder / "stat").write_text(STAT.format(pid=pid, name=name))
    for fd, target in fds.items():
        (folder / "fd" / fd).symlink_to(target)  # fd links point at "socket:[inode]"


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    """A /proc with the recorded tables and the processes behind them."""
    proc = tmp_path / "proc"
    (proc / "net").mkdir(parents=True)
    for name, text in {"tcp": TCP, "tcp6": TCP6, "udp": UDP, "udp6": UDP6}.items():
        (proc / "net" / name).write_text(text)
    _process(proc, 2206, "postgres", {"0": "/dev/null", "5": "socket:[4872]", "7": "pipe:[9]"})
    _process(proc, 2226, "redis-server", {"6": "socket:[3979]", "7": "socket:[3980]"})
    _process(proc, 2300, "postgres", {"5": "socket:[4872]"})  # a worker sharing the socket
    # pid 999 holds 0.0.0.0:2024, but its fd folder cannot be listed (not ours to read)
    (proc / "999").mkdir()
    (proc / "999" / "fd").write_text("")
    (proc / "self").mkdir()  # not a pid: passed over
    return proc


def test_owners_come_from_the_fd_links_and_unreadable_ones_stay_unknown(proc: Path) -> None:
    sockets = listening_sockets(proc)
    assert ListeningSocket("tcp", "127.0.0.1", 5432, "postgres", 2206) in sockets
    assert ListeningSocket("tcp", "127.0.0.1", 6379, "redis-server", 2226) in sockets
    assert ListeningSocket("tcp", "::1", 6379, "redis-server", 2226) in sockets
    assert ListeningSocket("tcp", "0.0.0.0", 2024, "", None) in sockets
    assert ListeningSocket("udp", "0.0.0.0", 60619, "", None) in sockets
    assert len(sockets) == 8
    # sorted by protocol, port, address
    assert [s.port for s in sockets] == [2024, 5432, 6379, 6379, 42489, 57943, 40840, 60619]


def test_missing_tables_add_nothing(proc: Path) -> None:
    for name in ("tcp6", "udp", "udp6"):
        (proc / "net" / name).unlink()
    assert {s.port for s in listening_sockets(proc)} == {5432, 2024, 6379}
    (proc / "net" / "tcp").unlink()
    assert listening_sockets(proc) == ()


def _as_nobody(read: Callable[[], Any], keep_away: socket.socket) -> Any:
    """``read()`` in a forked child that dropped root for nobody; its JSON result.

    The child closes its copy of ``keep_away`` first, so the socket belongs to
    this (root) process alone, whose fds nobody may not list.
    """
    nobody = 65534
    out, into = os.pipe()
    with warnings.catch_warnings():
        # Python 3.12+ warns about fork() with threads; the child only reads /proc and exits.
        warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            os.close(out)
            keep_away.close()
            os.setgroups([])
            os.setresgid(nobody, nobody, nobody)
            os.setresuid(nobody, nobody, nobody)
            with os.fdopen(into, "w") as pipe:
                json.dump(read(), pipe)
            code = 0
        finally:
            os._exit(code)
    os.close(into)
    with os.fdopen(out) as pipe:
        text = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged scan failed"
    return json.loads(text)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_a_listener_whose_owner_we_may_not_read_keeps_an_empty_process() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        as_root = [s for s in gather_facts(commands=[]).listeners if s.port == port]
        as_nobody = _as_nobody(
            lambda: [
                dataclasses.asdict(s) for s in gather_facts(commands=[]).listeners if s.port == port
            ],
            server,
        )
    assert as_root == [
        ListeningSocket("tcp", "127.0.0.1", port, psutil.Process().name(), os.getpid())
    ]
    assert as_nobody == [
        {"protocol": "tcp", "address": "127.0.0.1", "port": port, "process": "", "pid": None}
    ]


def test_this_host_in_well_under_a_second() -> None:
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        udp.bind(("127.0.0.1", 0))
        ports = tcp.getsockname()[1], udp.getsockname()[1]
        gather_facts()  # imports and caches warm
        started = time.perf_counter()
        facts = gather_facts()
        seconds = time.perf_counter() - started
    me, pid = psutil.Process().name(), os.getpid()
    assert ListeningSocket("tcp", "127.0.0.1", ports[0], me, pid) in facts.listeners
    assert ListeningSocket("udp", "127.0.0.1", ports[1], me, pid) in facts.listeners
    assert seconds < 0.5, f"gather_facts took {seconds:.3f} s"
    print(f"gather_facts: {seconds * 1000:.1f} ms, {len(facts.listeners)} listening sockets")


def test_an_empty_host_is_no_error(tmp_path: Path) -> None:
    facts = gather_facts(root=tmp_path, search_path=str(tmp_path), environ={})
    assert facts == HostFacts()


MDSTAT = """\
Personalities : [raid1] [raid6] [raid5] [raid4]
md1 : active raid5 sdd1[3] sdc1[1] sdb1[0]
      1953258496 blocks super 1.2 level 5, 512k chunk, algorithm 2 [3/3] [UUU]
      bitmap: 0/8 pages [0KB], 65536KB chunk

md0 : active (auto-read-only) raid1 sdb2[1] sda2[0](F)
      1047552 blocks super 1.2 [2/1] [_U]

md127 : inactive sde1[0](S)
      976630488 blocks super 1.2

unused devices: <none>
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _disk(root: Path, name: str, sectors: int, rotational: str, model: str | None) -> None:
    folder = root / "sys" / "block" / name
    _write(folder / "size", f"{sectors}\n")
    _write(folder / "queue" / "rotational", f"{rotational}\n")
    if model is not None:  # a device folder: a real disk; none: virtual (loop, zram)
        _write(folder / "device" / "model", f"{model}   \n")


def _command(folder: Path, name: str, script: str) -> None:
    path = folder / name
    _write(path, f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A recorded host: two disks and virtual devices, md arrays, ZFS, an NVIDIA card,
    hwmon chips, systemd and a Docker socket."""
    root = tmp_path / "root"
    _disk(root, "sda", 7814037168, "1", "WDC WD40EFRX-68N")
    _disk(root, "nvme0n1", 1953525168, "0", "Samsung SSD 970 EVO Plus 1TB")
    _disk(root, "sr0", 0, "1", "DVD-RW")  # an optical drive without a disc
    _disk(root, "loop0", 2048, "0", None)
    _write(root / "dev" / "sda", "")  # nvme0n1 has no node here: not readable
    _write(root / "proc" / "mdstat", MDSTAT)
    _write(root / "dev" / "md1", "")
    (root / "sys" / "module" / "zfs").mkdir(parents=True)
    drm = root / "sys" / "class" / "drm"
    _write(drm / "card0" / "device" / "vendor", "0x10de\n")
    (drm / "card0" / "device" / "driver").symlink_to("../../../bus/pci/drivers/nvidia")
    _write(drm / "card1" / "device" / "vendor", "0x1af4\n")  # virtio-gpu of a VM
    (drm / "card0-HDMI-A-1").mkdir()  # a connector, not a card
    (drm / "renderD128").mkdir()
    _write(root / "sys" / "class" / "hwmon" / "hwmon0" / "name", "coretemp\n")
    _write(root / "sys" / "class" / "hwmon" / "hwmon1" / "name", "nvme\n")
    (root / "sys" / "class" / "hwmon" / "hwmon2").mkdir()  # no name: passed over
    (root / "run" / "systemd" / "system").mkdir(parents=True)
    return root


def _unix_socket(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    return server


def test_the_hardware_of_a_recorded_host(host: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    _command(bin_dir, "zpool", "printf 'tank\\tONLINE\\nbackup\\tDEGRADED\\n'")
    _command(bin_dir, "smartctl", "exit 0")
    with _unix_socket(host / "var" / "run" / "docker.sock"):
        facts = gather_facts(
            root=host,
            commands=["smartctl", "sensors", "zpool"],
            search_path=str(bin_dir),
            environ={},
        )
    assert facts.block_devices == (
        BlockDevice("nvme0n1", 1953525168 * 512, False, "Samsung SSD 970 EVO Plus 1TB", False),
        BlockDevice("sda", 7814037168 * 512, True, "WDC WD40EFRX-68N", True),
    )
    assert facts.md_arrays == (
        MdArray("md1", "active", "raid5", ("sdd1", "sdc1", "sdb1"), True),
        MdArray("md0", "active", "raid1", ("sdb2", "sda2"), False),
        MdArray("md127", "inactive", "", ("sde1",), False),
    )
    assert facts.zfs_pools == (ZfsPool("tank", "ONLINE"), ZfsPool("backup", "DEGRADED"))
    assert facts.gpus == (GpuDevice("card0", "nvidia", "nvidia"), GpuDevice("card1", "0x1af4", ""))
    assert facts.hwmon == ("coretemp", "nvme")
    assert facts.systemd
    assert facts.docker_socket == "/var/run/docker.sock"
    assert facts.docker_socket_readable
    assert facts.executables == ("smartctl", "zpool")
    assert facts.has("zpool")
    assert not facts.has("sensors")


def test_docker_host_names_the_socket_and_a_failing_zpool_means_no_pools(
    host: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    _command(
        bin_dir, "zpool", "echo 'internal error: failed to initialize ZFS library' >&2; exit 1"
    )
    (host / "dev" / "nvidia0").touch()  # a node of the proprietary driver: one NVIDIA GPU
    _write(host / "sys" / "class" / "drm" / "card0" / "device" / "vendor", "0x8086\n")
    with _unix_socket(host / "srv" / "docker.sock"):
        facts = gather_facts(
            root=host,
            commands=[],
            search_path=str(bin_dir),
            environ={"DOCKER_HOST": "unix:///srv/docker.sock"},
        )
    assert facts.docker_socket == "/srv/docker.sock"
    assert facts.zfs_pools == ()
    assert [(g.name, g.vendor) for g in facts.gpus] == [
        ("card0", "intel"),
        ("card1", "0x1af4"),
        ("nvidia0", "nvidia"),
    ]


def test_a_file_where_the_docker_socket_should_be_is_no_socket(host: Path) -> None:
    _write(host / "var" / "run" / "docker.sock", "not a socket")
    facts = gather_facts(root=host, commands=[], search_path="", environ={})
    assert facts.docker_socket is None
    assert not facts.docker_socket_readable
