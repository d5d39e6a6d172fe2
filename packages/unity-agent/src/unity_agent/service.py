"""``unity-agent install-service``: a systemd unit that runs the agent unprivileged.

The unit runs ``unity-agent run`` as a plain user, with the groups of the
capability table (:mod:`unity_agent.capabilities`) that exist on this machine
as ``SupplementaryGroups=`` and, only when asked, its capabilities as
``AmbientCapabilities=``. It is hardened the usual way (read-only system and
homes, private /tmp, no new privileges) with the data directory the one
writable place. It writes the file and says what to do next; it starts
nothing unless ``--enable`` is given.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from unity_agent import __version__
from unity_agent.capabilities import NEEDS, Subject, existing_groups, report
from unity_agent.errors import CommandError
from unity_agent.identity import IDENTITY_FILE

__all__ = [
    "UNIT_NAME",
    "ServiceOptions",
    "agent_command",
    "blocked_path",
    "install_service",
    "render_unit",
]

UNIT_NAME = "unity-agent.service"
DEFAULT_USER = "unity-agent"
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Exit status 1 is a refusal a restart cannot fix (key revoked, certificate
# changed, no identity), 2 a usage error: systemd stops there instead of looping.
_FINAL_EXIT_STATUSES = "1 2"
# Groups that give what root has: worth saying out loud.
_AS_GOOD_AS_ROOT = {
    "disk": "it reads and writes every disk, raw",
    "docker": "it can start a privileged container",
}


@dataclass(frozen=True)
class ServiceOptions:
    data_dir: Path
    user: str = DEFAULT_USER
    unit_dir: Path = Path("/etc/systemd/system")
    dry_run: bool = False
    enable: bool = False
    capabilities: bool = False
    without_groups: tuple[str, ...] = ()


def agent_command() -> list[str]:
    """How systemd starts this very agent: the ``unity-agent`` script next to
    the running Python (its virtual environment), else the one on PATH, else
    ``python -m unity_agent``. The venv's python is kept as it is: resolving
    its symlink would leave the environment."""
    beside = Path(sys.executable).absolute().parent / "unity-agent"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("unity-agent")
    if found:
        return [str(Path(found).absolute())]
    return [str(Path(sys.executable).absolute()), "-m", "unity_agent"]


def _quote(word: str) -> str:
    """One word of a systemd command line: ``%`` and ``$`` escaped (specifiers,
    variables), quoted when it holds a space, a quote or a backslash."""
    if any(char in word for char in "\n\r\0"):
        raise CommandError(f"a path in the unit contains a line break or NUL: {word!r}")
    word = word.replace("%", "%%").replace("$", "$$")
    if any(char.isspace() or char in "\"'\\;" for char in word):
        return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return word


def render_unit(
    *,
    command: Sequence[str],
    data_dir: Path,
    user: str,
    groups: Sequence[str],
    capabilities: Sequence[str] = (),
) -> str:
    """The text of ``unity-agent.service``."""
    data = _quote(str(data_dir))
    exec_start = " ".join(_quote(word) for word in [*command, "run", "--data-dir", str(data_dir)])
    lines = [
        f"# Written by `unity-agent install-service` (unity-agent {__version__}).",
        "[Unit]",
        "Description=Unity agent: runs the plugin catalogue on this host for the hub",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={exec_start}",
        f"User={user}",
    ]
    if groups:
        lines.append(f"SupplementaryGroups={' '.join(groups)}")
    if capabilities:
        lines.append(f"AmbientCapabilities={' '.join(capabilities)}")
    lines += [
        "Environment=PYTHONUNBUFFERED=1",
        "Restart=on-failure",
        "RestartSec=10",
        f"RestartPreventExitStatus={_FINAL_EXIT_STATUSES}",
        # Hardening that leaves every plugin working: no PrivateDevices (smartctl
        # reads /dev/sd*), no ProtectProc (process-monitor sees every process).
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=read-only",
        f"ReadWritePaths={data}",
        "PrivateTmp=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "RestrictSUIDSGID=yes",
        "RestrictRealtime=yes",
        "LockPersonality=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "UMask=0077",
    ]
    if data_dir.parent == Path("/var/lib"):
        # systemd makes the directory and hands it to the user on every start.
        lines += [f"StateDirectory={_quote(data_dir.name)}", "StateDirectoryMode=0700"]
    lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
    return "\n".join(lines)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _hand_over(data_dir: Path, user: pwd.struct_passwd) -> None:
    """Give the agent's data directory to the service user (it was joined as root)."""
    for root, directories, files in os.walk(data_dir):
        os.chown(root, user.pw_uid, user.pw_gid)
        for name in [*directories, *files]:
            os.chown(os.path.join(root, name), user.pw_uid, user.pw_gid, follow_symlinks=False)


def install_service(options: ServiceOptions, out: TextIO | None = None) -> Path:
    """Write the unit (or print it with ``dry_run``); returns its path."""
    out = out or sys.stdout
    if not _USER_NAME.fullmatch(options.user):
        raise CommandError(f"--user {options.user!r} is not a user name")
    data_dir = options.data_dir.absolute()
    joined = (data_dir / IDENTITY_FILE).is_file()
    if not joined and not options.dry_run:
        raise CommandError(
            f"{data_dir / IDENTITY_FILE} does not exist: join the hub first "
            "(unity-agent join URL TOKEN --no-start --data-dir ...)"
        )
    try:
        account = pwd.getpwnam(options.user)
    except KeyError:
        account = None
    if account is None and options.enable:
        raise CommandError(
            f"user {options.user!r} does not exist: create it first "
            f"(useradd --system --home-dir {data_dir} --shell /usr/sbin/nologin {options.user})"
        )
    root = options.user == "root"
    groups = [] if root else existing_groups()
    groups = [group for group in groups if group not in options.without_groups]
    capabilities = (
        sorted({c for need in NEEDS for c in need.capabilities})
        if options.capabilities and not root
        else []
    )
    service = _service_subject(options.user, groups, capabilities)
    blocked = blocked_path(agent_command(), service) if service is not None else None
    if blocked is not None:
        message = (
            f"{options.user} cannot reach {blocked}, on the way to the agent's executable: "
            "install the agent where it can (PIPX_HOME=/opt/pipx PIPX_BIN_DIR=/usr/local/bin "
            "pipx install unity-agent), then install-service again"
        )
        if options.enable:
            raise CommandError(message)
        print(f"warning: {message}", file=sys.stderr)
    text = render_unit(
        command=agent_command(),
        data_dir=data_dir,
        user=options.user,
        groups=groups,
        capabilities=capabilities,
    )
    path = options.unit_dir / UNIT_NAME
    if options.dry_run:
        print(f"# {path} (dry run: nothing written)", file=out)
        print(text, file=out)
    else:
        try:
            _write(path, text)
        except OSError as exc:
            raise CommandError(f"cannot write {path}: {exc.strerror or exc}") from None
        print(f"Wrote {path}: runs the agent as {options.user}", file=out)
        if groups:
            print(f"  with the groups {', '.join(groups)}", file=out)
        if capabilities:
            print(f"  with the capabilities {', '.join(capabilities)}", file=out)
        if account is not None and os.geteuid() == 0 and joined:
            _hand_over(data_dir, account)
            print(f"Gave {data_dir} to {options.user}.", file=out)
    _explain(options, service, groups, out)
    if options.enable and not options.dry_run:
        for argv in (["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", UNIT_NAME]):
            print(f"$ {' '.join(argv)}", file=out)
            completed = subprocess.run(argv, check=False)
            if completed.returncode != 0:
                raise CommandError(
                    f"{' '.join(argv)} failed with exit status {completed.returncode}"
                )
    return path


def _service_subject(user: str, groups: list[str], capabilities: list[str]) -> Subject | None:
    """The service's user as systemd will run it: with the unit's groups and
    capabilities. ``None`` when there is no such user yet."""
    subject = Subject.user(user)
    if subject is None:
        return None
    granted = frozenset(gid for gid in (_gid(group) for group in groups) if gid is not None)
    return dataclasses.replace(
        subject, gids=subject.gids | granted, capabilities=frozenset(capabilities)
    )


def _explain(
    options: ServiceOptions, service: Subject | None, groups: list[str], out: TextIO
) -> None:
    """What the service will see, and the commands that are left to run."""
    steps: list[str] = []
    if service is None:
        steps.append(
            f"useradd --system --home-dir {options.data_dir.absolute()} "
            f"--shell /usr/sbin/nologin {options.user}"
        )
        steps.append(f"chown -R {options.user}: {options.data_dir.absolute()}")
    else:
        print("", file=out)
        for line in report(service):
            print(line, file=out)
    for group in groups:
        if group in _AS_GOOD_AS_ROOT:
            print(
                f"Note: the {group} group is as good as root ({_AS_GOOD_AS_ROOT[group]}); "
                f"--without-group {group} leaves it out.",
                file=out,
            )
    if not options.capabilities and any(need.capabilities for need in NEEDS):
        print("Note: --capabilities grants CAP_SYS_RAWIO, for smartctl.", file=out)
    if options.dry_run:
        steps.append("unity-agent install-service (without --dry-run) to write it")
    if not options.enable:
        steps.append(f"systemctl daemon-reload && systemctl enable --now {UNIT_NAME}")
    if steps:
        print("\nNext:", file=out)
        for step in steps:
            print(f"  {step}", file=out)


def blocked_path(command: Sequence[str], who: Subject) -> Path | None:
    """The first path on the way to the agent's executable (or to the
    interpreter its ``#!`` line names, through symlinks) that ``who`` cannot
    pass: a root-only home (``/root``) is the usual one. ``None`` when the
    service user can start the agent."""
    executable = Path(command[0])
    targets = _hops(executable)
    try:
        with executable.open("rb") as script:
            first = script.readline(512)
    except OSError:
        first = b""
    if first.startswith(b"#!"):
        words = first[2:].decode(errors="replace").split()
        if words:
            targets += _hops(Path(words[0]))
    for target in targets:
        for directory in reversed(target.parents):
            if who.may(directory, "x") is False:
                return directory
        if who.may(target, "rx") is False:
            return target
    return None


def _hops(path: Path) -> list[Path]:
    """``path``, each link of its symlink chain, and where it ends: the kernel
    passes through the directory of every one of them."""
    hops = [path.absolute()]
    while hops[-1].is_symlink() and len(hops) < 40:
        hops.append(hops[-1].parent / os.readlink(hops[-1]))
    hops.append(path.resolve())
    return hops


def _gid(group: str) -> int | None:
    import grp

    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        return None
