"""``unity-agent install-service``: the unit it writes passes ``systemd-analyze verify``.

``scripts/test`` installs systemd; without ``systemd-analyze`` these tests skip
with the reason, except under CI, where they fail. ``systemctl`` is never run
for real here: a recorder on PATH shows whether the command ran it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from unity_agent.capabilities import Subject, existing_groups
from unity_agent.cli import main
from unity_agent.identity import AgentIdentity, save_identity
from unity_agent.service import blocked_path, render_unit

AGENT = str(Path(sys.executable).parent / "unity-agent")
IDENTITY = AgentIdentity(
    hub_url="https://hub.lan:8443", host_id="nas", key_id="k1", api_key="unitya_secret"
)


def systemd_verify(unit: Path) -> None:
    """Assert systemd accepts the unit: exit 0 and not a word of warning."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        reason = "systemd-analyze is not installed (apt-get install systemd; scripts/test does)"
        if os.environ.get("CI"):
            pytest.fail(f"CI checks the agent's unit with systemd-analyze: {reason}")
        pytest.skip(reason)
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"systemd-analyze verify exited {result.returncode}:\n{output}"
    assert output == "", f"systemd-analyze verify found problems:\n{output}"


@pytest.fixture
def systemctl_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``systemctl`` first on PATH that records its arguments, one call a line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "systemctl-calls"
    recorder = bin_dir / "systemctl"
    recorder.write_text(f'#!/bin/sh\necho "$*" >> {record}\n')
    recorder.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


@pytest.fixture
def data(tmp_path: Path) -> Path:
    directory = tmp_path / "agent data"
    save_identity(directory, IDENTITY)
    return directory


def install(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["install-service", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_unit_runs_the_agent_unprivileged_and_hardened(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    units = tmp_path / "units"
    code, out, err = install(capsys, "--data-dir", str(data), "--unit-dir", str(units))
    assert (code, err) == (0, "")
    unit = units / "unity-agent.service"
    systemd_verify(unit)
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    lines = unit.read_text().splitlines()
    assert f'ExecStart={AGENT} run --data-dir "{data}"' in lines
    assert "User=unity-agent" in lines
    groups = existing_groups()
    assert "disk" in groups
    assert f"SupplementaryGroups={' '.join(groups)}" in lines
    for setting in (
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        f'ReadWritePaths="{data}"',
        "PrivateTmp=yes",
        "WantedBy=multi-user.target",
    ):
        assert setting in lines
    assert not any(line.startswith("AmbientCapabilities=") for line in lines)
    # Outside /var/lib the data directory is not systemd's to make.
    assert not any(line.startswith("StateDirectory=") for line in lines)

    assert f"Wrote {unit}: runs the agent as unity-agent" in out
    assert "useradd --system" in out
    assert "systemctl daemon-reload && systemctl enable --now unity-agent.service" in out
    assert not systemctl_calls.exists()


def test_a_dry_run_prints_the_unit_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    units = tmp_path / "units"
    code, out, _ = install(capsys, "--data-dir", str(data), "--unit-dir", str(units), "--dry-run")
    assert code == 0
    assert not units.exists()
    first, _, rest = out.partition("\n")
    assert first == f"# {units / 'unity-agent.service'} (dry run: nothing written)"
    text = rest.split("\n\nNote:", 1)[0].split("\n\nNext:", 1)[0]
    printed = tmp_path / "printed" / "unity-agent.service"
    printed.parent.mkdir()
    printed.write_text(text + "\n")
    systemd_verify(printed)
    assert not systemctl_calls.exists()


def test_capabilities_and_left_out_groups(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path
) -> None:
    units = tmp_path / "units"
    argv = ["--data-dir", str(data), "--unit-dir", str(units), "--capabilities"]
    code, out, _ = install(capsys, *argv, "--without-group", "disk")
    assert code == 0
    unit = units / "unity-agent.service"
    systemd_verify(unit)
    lines = unit.read_text().splitlines()
    assert "AmbientCapabilities=CAP_SYS_RAWIO" in lines
    kept = [group for group in existing_groups() if group != "disk"]
    assert f"SupplementaryGroups={' '.join(kept)}" in lines
    assert "with the capabilities CAP_SYS_RAWIO" in out


def test_a_data_dir_under_var_lib_is_a_state_directory(tmp_path: Path) -> None:
    text = render_unit(
        command=[AGENT], data_dir=Path("/var/lib/unity-agent"), user="unity-agent", groups=[]
    )
    unit = tmp_path / "unity-agent.service"
    unit.write_text(text)
    systemd_verify(unit)
    lines = text.splitlines()
    assert "StateDirectory=unity-agent" in lines
    assert "StateDirectoryMode=0700" in lines
    assert not any(line.startswith("SupplementaryGroups=") for line in lines)


def test_odd_characters_in_paths_are_quoted_for_systemd(tmp_path: Path) -> None:
    text = render_unit(
        command=[AGENT], data_dir=Path("/srv/100% agent $HOME"), user="unity-agent", groups=[]
    )
    assert "ExecStart=" + AGENT + ' run --data-dir "/srv/100%% agent $$HOME"' in text
    unit = tmp_path / "unity-agent.service"
    unit.write_text(text)
    systemd_verify(unit)


def _reach_warning(user: str) -> str | None:
    """What install-service says when ``user`` cannot start this very agent
    (the interpreter may live under a root-only home), or None."""
    blocked = blocked_path([AGENT], Subject.user(user) or pytest.fail(f"no user {user}"))
    if blocked is None:
        return None
    return (
        f"{user} cannot reach {blocked}, on the way to the agent's executable: install the "
        "agent where it can (PIPX_HOME=/opt/pipx PIPX_BIN_DIR=/usr/local/bin pipx install "
        "unity-agent), then install-service again"
    )


def test_an_existing_user_gets_the_data_dir_and_is_checked(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("handing the data directory to another user needs root")
    daemon = pwd.getpwnam("daemon")
    units = tmp_path / "units"
    argv = ["--data-dir", str(data), "--unit-dir", str(units), "--user", "daemon"]
    code, out, err = install(capsys, *argv)
    assert code == 0
    warning = _reach_warning("daemon")
    assert err == ("" if warning is None else f"warning: {warning}\n")
    systemd_verify(units / "unity-agent.service")
    assert (data.stat().st_uid, (data / "agent.json").stat().st_uid) == (daemon.pw_uid,) * 2
    assert f"Gave {data} to daemon." in out
    assert "What the agent can see as daemon" in out
    assert "daemon is in disk: yes" in out  # SupplementaryGroups counts
    assert not systemctl_calls.exists()


def test_enable_runs_systemctl_once_the_unit_is_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    units = tmp_path / "units"
    argv = ["--data-dir", str(data), "--unit-dir", str(units), "--user", "root", "--enable"]
    code, out, err = install(capsys, *argv)
    assert (code, err) == (0, "")
    lines = (units / "unity-agent.service").read_text().splitlines()
    assert "User=root" in lines
    assert not any(line.startswith("SupplementaryGroups=") for line in lines)
    assert systemctl_calls.read_text().splitlines() == [
        "daemon-reload",
        "enable --now unity-agent.service",
    ]
    assert "$ systemctl enable --now unity-agent.service" in out
    assert "Next:" not in out


def test_enable_refuses_a_user_that_cannot_start_the_agent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    units = tmp_path / "units"
    argv = ["--data-dir", str(data), "--unit-dir", str(units), "--user", "daemon", "--enable"]
    code, _, err = install(capsys, *argv)
    warning = _reach_warning("daemon")
    if warning is None:  # an agent installed where every user can reach it
        assert (code, err) == (0, "")
        assert systemctl_calls.exists()
    else:
        assert (code, err) == (1, f"unity-agent: {warning}\n")
        assert not units.exists()
        assert not systemctl_calls.exists()


def test_enable_with_a_missing_user_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path, systemctl_calls: Path
) -> None:
    units = tmp_path / "units"
    argv = ["--data-dir", str(data), "--unit-dir", str(units), "--user", "no-such-agent"]
    code, _, err = install(capsys, *argv, "--enable")
    assert code == 1
    assert err.startswith("unity-agent: user 'no-such-agent' does not exist: create it first")
    assert not units.exists()
    assert not systemctl_calls.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--user", "bad\nname"], "unity-agent: --user 'bad\\nname' is not a user name\n"),
        (["--data-dir", "NOT-JOINED"], "does not exist: join the hub first"),
    ],
)
def test_bad_input_writes_no_unit(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    data: Path,
    argv: list[str],
    message: str,
) -> None:
    argv = [str(tmp_path / "empty") if word == "NOT-JOINED" else word for word in argv]
    if "--data-dir" not in argv:
        argv += ["--data-dir", str(data)]
    units = tmp_path / "units"
    code, _, err = install(capsys, *argv, "--unit-dir", str(units))
    assert code == 1
    assert message in err
    assert not units.exists()


def test_a_unit_dir_that_cannot_be_written_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, data: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = install(capsys, "--data-dir", str(data), "--unit-dir", str(blocker / "units"))
    assert code == 1
    assert err.startswith(f"unity-agent: cannot write {blocker / 'units' / 'unity-agent.service'}")
    assert err.count("\n") == 1


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory everyone may enter (pytest's tmp_path sits under a root-only one)."""
    directory = Path(tempfile.mkdtemp(prefix="unity-agent-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


def test_an_executable_behind_a_private_directory_is_found(open_dir: Path) -> None:
    user = Subject("svc", 4242, frozenset({4242}), None, current=False)
    home = open_dir / "home"
    (home / "bin").mkdir(parents=True)
    script = home / "bin" / "unity-agent"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    home.chmod(0o700)
    assert blocked_path([str(script)], user) == home

    home.chmod(0o755)
    assert blocked_path([str(script)], user) is None

    # The interpreter of the #! line counts too, through its symlink.
    private = open_dir / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    interpreter = private / "python"
    interpreter.symlink_to("/bin/sh")
    shared = open_dir / "python"
    shared.symlink_to(interpreter)
    script.write_text(f"#!{shared}\nexit 0\n")
    assert blocked_path([str(script)], user) == private
