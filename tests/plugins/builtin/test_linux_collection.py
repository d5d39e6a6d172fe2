"""network-monitor and process-monitor read Linux directly: the same numbers psutil and ss give.

Sockets and processes come and go while a test runs (other suites share the
machine), so live comparisons bracket the reading between two of the
reference's and allow a little churn; the parsers are also checked exactly
against recorded ``/proc`` files.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from services_support import require_command

from unity_catalogue._linux import (
    PAGE_SIZE,
    ProcStat,
    full_name,
    netlink_socket_states,
    proc_socket_states,
    read_stat,
)
from unity_catalogue.network_monitor import NetworkMonitorPlugin
from unity_catalogue.process_monitor import ProcessMonitorPlugin

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")

# ss's state names, as psutil (and so the document) names them.
SS_STATES = {
    "ESTAB": "established",
    "LISTEN": "listen",
    "TIME-WAIT": "time_wait",
    "SYN-SENT": "syn_sent",
    "SYN-RECV": "syn_recv",
    "FIN-WAIT-1": "fin_wait1",
    "FIN-WAIT-2": "fin_wait2",
    "CLOSE-WAIT": "close_wait",
    "LAST-ACK": "last_ack",
    "CLOSING": "closing",
    "UNCONN": "close",
}
CHURN = 5  # sockets that may open or close between two listings


def ss_states(ss: str) -> Counter[str]:
    def lines(option: str) -> list[str]:
        done = subprocess.run([ss, option, "-H"], capture_output=True, text=True, check=True)
        return [line for line in done.stdout.splitlines() if line.strip()]

    states = Counter(SS_STATES[line.split()[0]] for line in lines("-tan"))
    udp = len(lines("-uan"))
    if udp:
        states["none"] = udp
    return states


@pytest.fixture
def known_sockets() -> Iterator[None]:
    """Three connected loopback TCP pairs, a listener and two UDP sockets held open."""
    opened: list[socket.socket] = []
    listener = socket.create_server(("127.0.0.1", 0))
    opened.append(listener)
    for _ in range(3):
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        opened += [client, server]
    for _ in range(2):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        opened.append(udp)
    try:
        yield
    finally:
        for sock in opened:
            sock.close()


def assert_bracketed(ours: dict[str, int], before: Counter[str], after: Counter[str]) -> None:
    for state in set(ours) | set(before) | set(after):
        low = min(before[state], after[state]) - CHURN
        high = max(before[state], after[state]) + CHURN
        # TIME_WAIT sockets of other test suites appear and expire by the hundred.
        if state == "time_wait":
            low, high = low - low // 5, high + high // 5
        assert low <= ours.get(state, 0) <= high, (state, ours, before, after)


@pytest.mark.parametrize("count", [netlink_socket_states, proc_socket_states])
def test_socket_states_match_ss(
    count: Callable[[], dict[str, int] | None], known_sockets: None
) -> None:
    ss = require_command("ss")
    before = ss_states(ss)
    ours = count()
    after = ss_states(ss)
    assert ours is not None
    assert ours["established"] >= 6
    assert ours["listen"] >= 1
    assert ours["none"] >= 2
    assert_bracketed(ours, before, after)


def test_socket_states_match_psutil(known_sockets: None) -> None:
    def psutil_states() -> Counter[str]:
        return Counter(c.status.lower() for c in psutil.net_connections(kind="inet"))

    before = psutil_states()
    ours = netlink_socket_states()
    after = psutil_states()
    assert_bracketed(ours, before, after)


async def test_the_document_counts_connections_as_before(known_sockets: None) -> None:
    document = await NetworkMonitorPlugin().collect_data()
    assert set(document) == {"totals", "connections"}
    assert all(isinstance(n, int) and n > 0 for n in document["connections"].values())
    assert set(document["connections"]) <= {state.lower() for state in SS_STATES.values()} | {
        "none"
    }
    assert document["connections"]["established"] >= 6


RECORDED_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000   999        0 2301 1
   1: 0100007F:9C40 0100007F:0CEA 01 00000000:00000000 00:00000000 00000000     0        0 2402 1
   2: 0100007F:0CEA 0100007F:9C40 01 00000000:00000000 00:00000000 00000000   999        0 2403 1
   3: 0100007F:9C42 0100007F:0CEA 06 00000000:00000000 03:00000F9A 00000000     0        0 0 3
   4: 0100007F:9C44 0100007F:0CEA 08 00000000:00000000 00:00000000 00000000     0        0 2405 1
"""
RECORDED_UDP = """\
   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
  551: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000 101 0 1888 2 0 0
"""


def test_proc_tables_are_counted_per_state(tmp_path: Path) -> None:
    net = tmp_path / "net"
    net.mkdir()
    (net / "tcp").write_text(RECORDED_TCP)
    (net / "udp").write_text(RECORDED_UDP)
    (net / "udp6").write_text(RECORDED_UDP.splitlines()[0] + "\n")
    # No tcp6: a kernel without IPv6.
    assert proc_socket_states(tmp_path) == {
        "listen": 1,
        "established": 2,
        "time_wait": 1,
        "close_wait": 1,
        "none": 1,
    }
    assert proc_socket_states(tmp_path / "missing") is None


def test_stat_line_with_an_awkward_name(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    fields = "S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 3 0 123456 10000000 2048"
    (tmp_path / "4242" / "stat").write_text(f"4242 (my (odd) name) {fields} 0 0\n")
    stat = read_stat(4242, tmp_path)
    assert stat == ProcStat(
        name="my (odd) name",
        status=psutil.STATUS_SLEEPING,
        cpu_seconds=300 / os.sysconf("SC_CLK_TCK"),
        threads=3,
        started=123456,
        rss=2048 * PAGE_SIZE,
    )
    assert read_stat(4243, tmp_path) is None


@pytest.mark.parametrize(
    ("cmdline", "expected"),
    [
        ("/usr/bin/gnome-keyring-daemon\x00--start\x00", "gnome-keyring-daemon"),
        ("gnome-keyring-daemon: retitled by setproctitle", "gnome-keyring-daemon:"),
        ("/usr/bin/something-else\x00", "gnome-keyring-d"),
        ("", "gnome-keyring-d"),  # a kernel thread or a zombie has no command line
    ],
)
def test_cut_names_are_completed_as_psutil_does(
    tmp_path: Path, cmdline: str, expected: str
) -> None:
    (tmp_path / "77").mkdir()
    (tmp_path / "77" / "cmdline").write_text(cmdline)
    stat = ProcStat("gnome-keyring-d", psutil.STATUS_SLEEPING, 0.0, 1, 1, 0)
    assert full_name(77, stat, tmp_path) == expected


def test_read_stat_agrees_with_psutil_for_every_process() -> None:
    compared = agreed = close = 0
    for process in psutil.process_iter():
        try:
            with process.oneshot():
                name, status, threads = process.name(), process.status(), process.num_threads()
                rss = process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
        stat = read_stat(process.pid)
        if stat is None:
            continue  # exited in between
        assert full_name(process.pid, stat) == name, (process.pid, stat, name)
        # Between the two reads a process may wake, sleep, start a thread or touch
        # memory: most must agree exactly (state, threads), nearly (resident memory).
        compared += 1
        agreed += (stat.status, stat.threads) == (status, threads)
        close += abs(stat.rss - rss) <= max(64 * PAGE_SIZE, rss // 10)
    assert compared >= 5
    assert agreed >= 0.8 * compared
    assert close >= 0.9 * compared


async def test_process_monitor_reads_proc_and_gives_psutils_document() -> None:
    assert ProcessMonitorPlugin()._use_proc
    ours = ProcessMonitorPlugin({"top_n": 50})
    theirs = ProcessMonitorPlugin({"top_n": 50})
    theirs._use_proc = False
    # A busy child: both must see its CPU use, measured from the first run.
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy_name = psutil.Process(busy.pid).name()
        await ours.collect_data()
        await theirs.collect_data()
        await asyncio.sleep(0.6)
        document, reference = await ours.collect_data(), await theirs.collect_data()
    finally:
        busy.kill()
        busy.wait()
    assert set(document) == set(reference)
    assert abs(document["total"] - reference["total"]) <= CHURN
    assert abs(document["threads"] - reference["threads"]) <= 4 * CHURN
    ours_busy = next(p for p in document["top_cpu"] if p["pid"] == busy.pid)
    theirs_busy = next(p for p in reference["top_cpu"] if p["pid"] == busy.pid)
    assert ours_busy["name"] == theirs_busy["name"] == busy_name
    # Both see it spinning; on a loaded machine it gets less than a whole core.
    assert ours_busy["cpu_percent"] > 5
    assert theirs_busy["cpu_percent"] > 5
