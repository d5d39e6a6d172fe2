"""The ``fail2ban`` plugin: a real fail2ban server with two jails, and recorded output."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from services_support import (
    FakeRunner,
    Recorded,
    UnprivilegedRunner,
    check_class,
    collect_checked,
    make,
    require_command,
)

from unity_catalogue.fail2ban import Fail2banPlugin
from unity_sdk import DependencyMissingError, HealthState, PluginNotReadyError

RECORDED = {
    "fail2ban-client status": Recorded("status.txt"),
    "fail2ban-client status sshd": Recorded("status-sshd.txt"),
    "fail2ban-client status nginx-http-auth": Recorded("status-nginx-http-auth.txt"),
}
SERVER_CONF = """[Definition]
loglevel = INFO
logtarget = {base}/server.log
socket = {base}/fail2ban.sock
pidfile = {base}/fail2ban.pid
dbfile = :memory:
"""
# Jails without actions: fail2ban counts and "bans" without touching the firewall.
JAIL_CONF = """[DEFAULT]
backend = polling
maxretry = 2
findtime = 600
bantime = 600
action =

[sshd]
enabled = true
filter = sshd
logpath = {base}/auth.log

[nginx-http-auth]
enabled = true
filter = nginx-http-auth
logpath = {base}/nginx-error.log
"""


@dataclass
class Server:
    base: Path
    socket: str

    def log(self, name: str, line: str) -> None:
        with (self.base / name).open("a") as log:
            log.write(line + "\n")


def _client(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["fail2ban-client", "-s", socket, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def server() -> Iterator[Server]:
    """A real fail2ban server (foreground child process) with the sshd and nginx-http-auth jails."""
    require_command("fail2ban-server")
    base = Path(tempfile.mkdtemp(prefix="unity-fail2ban-"))
    base.chmod(0o755)
    conf = base / "conf"
    conf.mkdir()
    for shared in ("filter.d", "action.d"):
        (conf / shared).symlink_to(Path("/etc/fail2ban") / shared)
    (conf / "fail2ban.conf").write_text(SERVER_CONF.format(base=base))
    (conf / "jail.conf").write_text(JAIL_CONF.format(base=base))
    for log in ("auth.log", "nginx-error.log"):
        (base / log).touch()
    socket = str(base / "fail2ban.sock")
    argv = ["fail2ban-server", "-f", "-x", "-c", str(conf), "-s", socket]
    proc = subprocess.Popen([*argv, "-p", str(base / "fail2ban.pid"), "start"])
    try:
        deadline = time.monotonic() + 20
        while _client(socket, "ping").returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"fail2ban-server did not start: {(base / 'server.log').read_text()}")
            time.sleep(0.1)
        yield Server(base, socket)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        shutil.rmtree(base)


def test_metadata() -> None:
    metadata = check_class(Fail2banPlugin, "fail2ban", "security")
    assert metadata.supports_remote
    assert metadata.requires.root
    assert metadata.requires.commands == ["fail2ban-client"]


async def test_real_server_counts_failures_and_bans(server: Server) -> None:
    plugin = make(Fail2banPlugin, socket=server.socket)
    quiet = await collect_checked(plugin)
    assert quiet["jails"] == 2
    assert set(quiet["per_jail"]) == {"sshd", "nginx-http-auth"}
    assert quiet["total_failed"] == quiet["total_banned"] == 0

    stamp = time.strftime("%b %e %H:%M:%S")
    for port in (40001, 40002, 40003):
        server.log(
            "auth.log",
            f"{stamp} nas sshd[{port}]: Failed password for invalid user admin "
            f"from 203.0.113.5 port {port} ssh2",
        )
    server.log(
        "nginx-error.log",
        f'{time.strftime("%Y/%m/%d %H:%M:%S")} [error] 1422#1422: *5 user "admin": '
        'password mismatch, client: 198.51.100.9, server: example.org, request: "GET / '
        'HTTP/1.1", host: "example.org"',
    )
    deadline = time.monotonic() + 20
    document = await collect_checked(plugin)
    while (
        document["total_banned"] < 1 or document["per_jail"]["nginx-http-auth"]["total_failed"] < 1
    ):
        assert time.monotonic() < deadline, f"fail2ban never caught up: {document}"
        await asyncio.sleep(0.2)
        document = await collect_checked(plugin)
    sshd = document["per_jail"]["sshd"]
    assert sshd["total_failed"] == 3
    assert sshd["currently_banned"] == sshd["total_banned"] == sshd["banned_ips"] == 1
    nginx = document["per_jail"]["nginx-http-auth"]
    assert nginx == {
        "currently_failed": 1,
        "total_failed": 1,
        "currently_banned": 0,
        "total_banned": 0,
        "banned_ips": 0,
    }
    assert document["total_failed"] == 4
    assert document["currently_banned"] == 1
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == "2 jail(s) running"


async def test_real_server_chosen_jails(server: Server) -> None:
    plugin = make(Fail2banPlugin, socket=server.socket, jails=["sshd", "postfix"])
    document = await collect_checked(plugin)
    assert list(document["per_jail"]) == ["sshd"]
    health = await plugin.health_check()
    assert health.status is HealthState.DEGRADED
    assert health.message == "jail(s) not running: postfix"


async def test_real_server_refuses_a_non_root_user(server: Server) -> None:
    require_command("setpriv")
    plugin = make(Fail2banPlugin, runner=UnprivilegedRunner(), socket=server.socket)
    with pytest.raises(DependencyMissingError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        f"fail2ban-client: Permission denied to socket: {server.socket}, (you must be root)"
    )
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_real_server_not_running(tmp_path: Path) -> None:
    require_command("fail2ban-client")
    socket = str(tmp_path / "fail2ban.sock")
    plugin = make(Fail2banPlugin, socket=socket)
    with pytest.raises(PluginNotReadyError) as caught:
        await plugin.collect_data()
    assert str(caught.value) == (
        f"fail2ban server is not running: Failed to access socket path: {socket}. "
        "Is fail2ban running?"
    )
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert health.message == str(caught.value)


async def test_recorded_two_jails() -> None:
    runner = FakeRunner("fail2ban", RECORDED)
    document = await collect_checked(make(Fail2banPlugin, runner=runner))
    assert document == {
        "jails": 2,
        "currently_failed": 5,
        "total_failed": 1406,
        "currently_banned": 3,
        "total_banned": 214,
        "per_jail": {
            "nginx-http-auth": {
                "currently_failed": 1,
                "total_failed": 19,
                "currently_banned": 0,
                "total_banned": 2,
                "banned_ips": 0,
            },
            "sshd": {
                "currently_failed": 4,
                "total_failed": 1387,
                "currently_banned": 3,
                "total_banned": 212,
                "banned_ips": 3,
            },
        },
    }


async def test_recorded_no_jails() -> None:
    runner = FakeRunner("fail2ban", {"fail2ban-client status": Recorded("status-no-jails.txt")})
    document = await collect_checked(make(Fail2banPlugin, runner=runner))
    assert document["jails"] == 0
    assert document["per_jail"] == {}


@pytest.mark.parametrize(
    ("stderr", "error", "message"),
    [
        ("not-running.stderr", PluginNotReadyError, "fail2ban server is not running"),
        ("permission-denied.stderr", DependencyMissingError, r"\(you must be root\)$"),
    ],
)
async def test_recorded_errors(stderr: str, error: type[Exception], message: str) -> None:
    runner = FakeRunner("fail2ban", {"fail2ban-client status": Recorded("", stderr, 255)})
    plugin = make(Fail2banPlugin, runner=runner)
    with pytest.raises(error, match=message):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_fail2ban_missing() -> None:
    plugin = make(Fail2banPlugin, runner=FakeRunner("fail2ban", {}))
    with pytest.raises(DependencyMissingError, match="fail2ban-client is not installed"):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY
