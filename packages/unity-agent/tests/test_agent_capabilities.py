"""The capability table: complete for the catalogue, and true for a real process."""

from __future__ import annotations

import grp
import os
import subprocess
import sys

import pytest

from unity_agent.capabilities import NEEDS, NEEDS_NOTHING, Subject, existing_groups, report
from unity_agent.cli import main
from unity_catalogue import BUILTIN_PLUGINS

# Debian has these groups on every install.
DISK = grp.getgrnam("disk").gr_gid


def test_every_catalogue_plugin_is_in_the_table_once() -> None:
    catalogue = {cls().get_metadata().id for cls in BUILTIN_PLUGINS}
    needing = [plugin for need in NEEDS for plugin in need.plugins]
    assert len(needing) == len(set(needing))
    assert set(needing).isdisjoint(NEEDS_NOTHING)
    assert set(needing) | set(NEEDS_NOTHING) == catalogue


def test_every_plugin_that_declares_root_says_what_else_would_do() -> None:
    declared = {
        metadata.id
        for metadata in (cls().get_metadata() for cls in BUILTIN_PLUGINS)
        if metadata.requires.root
    }
    listed = {plugin for need in NEEDS for plugin in need.plugins}
    assert declared <= listed
    for need in NEEDS:
        assert need.groups or need.capabilities or need.path or need.root_only, need


def test_a_user_is_checked_by_its_groups() -> None:
    plain = Subject("svc", 4242, frozenset({4242}), None, current=False)
    lines = report(plain)
    smart = next(line for line in lines if line.lstrip().startswith("smartctl"))
    assert smart.endswith("svc is in disk: no")
    fail2ban = next(line for line in lines if line.lstrip().startswith("fail2ban"))
    assert fail2ban.endswith("svc is root: no")

    in_disk = Subject("svc", 4242, frozenset({4242, DISK}), frozenset({"CAP_SYS_RAWIO"}), False)
    smart = next(line for line in report(in_disk) if line.lstrip().startswith("smartctl"))
    assert smart.endswith("svc is in disk: yes; CAP_SYS_RAWIO: yes")


def test_a_group_this_machine_lacks_is_said_so() -> None:
    plain = Subject("svc", 4242, frozenset({4242}), None, current=False)
    groups = {group.gr_name for group in grp.getgrall()}
    virsh = next(line for line in report(plain) if line.lstrip().startswith("virsh"))
    if "libvirt" in groups:
        assert virsh.endswith("svc is in libvirt: no")
    else:
        assert virsh.endswith("no libvirt group on this machine")
    assert "disk" in existing_groups()
    assert set(existing_groups()) <= groups


def test_a_socket_is_checked_by_its_mode(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "docker.sock")
    with open(path, "w"):
        pass
    os.chmod(path, 0o660)
    os.chown(path, 0, DISK)
    outsider = Subject("svc", 4242, frozenset({4242}), None, current=False)
    member = Subject("svc", 4242, frozenset({4242, DISK}), None, current=False)
    assert outsider.can_use(path) is False
    assert member.can_use(path) is True
    assert outsider.can_use(os.path.join(tmp_path, "absent.sock")) is None


def _capabilities_as(uid: int, groups: list[int]) -> subprocess.CompletedProcess[str]:
    """``unity-agent capabilities`` in a process that dropped to ``uid`` with
    ``groups``. Python and the agent are imported first (the interpreter lives
    under root's home here), then the process is that user, for real."""
    probe = (
        "import os, sys\n"
        "from unity_agent.cli import main\n"
        "import unity_agent.capabilities\n"
        f"os.setgroups({groups!r}); os.setgid({uid}); os.setuid({uid})\n"
        "sys.exit(main(['capabilities']))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_the_running_process_is_checked_for_real() -> None:
    nobody = 65534
    outside = _capabilities_as(nobody, [])
    assert outside.returncode == 0, outside.stderr
    assert "What the agent can see as nobody" in outside.stdout
    assert "you are in disk: no; CAP_SYS_RAWIO: no" in outside.stdout
    assert "you are root: no" in outside.stdout

    inside = _capabilities_as(nobody, [DISK])
    assert "you are in disk: yes; CAP_SYS_RAWIO: no" in inside.stdout


def test_root_sees_everything() -> None:
    root = Subject("root", 0, frozenset({0}), None, current=True)
    lines = report(root)
    assert lines[0].startswith("What the agent can see as root")
    assert all(line.endswith("yes (root)") for line in lines[1 : 1 + len(NEEDS)])


def test_the_command_checks_a_named_user(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["capabilities", "--user", "nobody"]) == 0
    out = capsys.readouterr().out
    assert "What the agent can see as nobody" in out
    assert "nobody is in disk: no" in out

    assert main(["capabilities", "--user", "no-such-user"]) == 1
    assert capsys.readouterr().err == "unity-agent: no user 'no-such-user' on this machine\n"
