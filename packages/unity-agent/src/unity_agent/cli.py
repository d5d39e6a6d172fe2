"""The ``unity-agent`` command: join a hub, run, install the service, status.

stdlib ``argparse`` on purpose: the agent stays small. Every problem the user
must fix is a :class:`~unity_agent.errors.CommandError`: one line on stderr
and exit status 1 (2 is argparse's usage error). ``run`` exits 0 on SIGTERM
or SIGINT, 1 when the hub refuses its key or its certificate changed (the
service does not restart: a person must act), 70 when it crashed (the
service restarts).

    unity-agent join https://hub.lan:8443 unitye_...   # enroll, then run
    unity-agent install-service                         # a systemd unit
    unity-agent status
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from unity_agent import __version__
from unity_agent.capabilities import Subject, report
from unity_agent.errors import CommandError
from unity_agent.identity import (
    AgentIdentity,
    IdentityError,
    default_data_dir,
    load_identity,
    ssl_context,
)
from unity_agent.service import DEFAULT_USER, ServiceOptions, install_service
from unity_agent.supervisor import REFUSED_KEY
from unity_agent.tls import check_pin
from unity_sdk import DEFAULT_DISCOVERY_SECONDS, HubAuthError, HubClient, HubError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="unity-agent",
        description="Runs the Unity plugin catalogue on this host and reports to a hub.",
    )
    parser.add_argument("--version", action="version", version=f"unity-agent {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_data_dir(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--data-dir",
            type=Path,
            default=None,
            metavar="DIR",
            help="where the agent keeps its identity and buffer (default: $UNITY_AGENT_DIR, "
            "/var/lib/unity-agent for root, ~/.local/state/unity-agent otherwise)",
        )
        return sub

    join = with_data_dir(commands.add_parser("join", help="enroll this host with a hub, then run"))
    join.add_argument("url", metavar="URL", help="the hub's address, e.g. https://hub.lan:8443")
    join.add_argument(
        "token",
        metavar="ENROLLMENT_TOKEN",
        help="from `unity token create --enroll`; - reads it from stdin (out of ps and history)",
    )
    join.add_argument(
        "--hostname", metavar="NAME", help="the name the hub shows (default: this machine's)"
    )
    join.add_argument(
        "--host-id", metavar="ID", help="the id to ask for (default: from the hostname)"
    )
    join.add_argument(
        "--fingerprint",
        metavar="SHA256",
        help="refuse a hub whose certificate is not this sha256:... fingerprint",
    )
    join.add_argument(
        "--no-pin",
        action="store_true",
        help="trust the system's CAs (and check the name) instead of pinning the certificate "
        "shown now; for a hub with a publicly trusted certificate that renews",
    )
    join.add_argument("--no-start", action="store_true", help="join only; do not start running")
    join.add_argument("--force", action="store_true", help="join again over an existing identity")

    run = with_data_dir(
        commands.add_parser("run", help="run until SIGTERM (what the service runs)")
    )
    run.add_argument(
        "--discovery-seconds",
        type=_seconds,
        default=DEFAULT_DISCOVERY_SECONDS,
        metavar="N",
        help="look for services to propose at start and every N seconds "
        "(default: %(default)g; 0: never)",
    )
    with_data_dir(commands.add_parser("status", help="the hub, this host's id and the pin"))

    service = with_data_dir(
        commands.add_parser("install-service", help="write a systemd unit for the agent")
    )
    service.add_argument(
        "--user", metavar="NAME", default=DEFAULT_USER, help="run as (default: %(default)s)"
    )
    service.add_argument(
        "--unit-dir",
        type=Path,
        metavar="DIR",
        default=Path("/etc/systemd/system"),
        help="where the unit goes (default: %(default)s)",
    )
    service.add_argument("--dry-run", action="store_true", help="print the unit, write nothing")
    service.add_argument(
        "--enable", action="store_true", help="also run systemctl daemon-reload, enable --now"
    )
    service.add_argument(
        "--capabilities",
        action="store_true",
        help="grant the capabilities of the table (CAP_SYS_RAWIO for smartctl)",
    )
    service.add_argument(
        "--without-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="leave this group out of SupplementaryGroups (repeatable)",
    )

    capabilities = commands.add_parser(
        "capabilities", help="which plugins need which group or capability, checked here"
    )
    capabilities.add_argument(
        "--user", metavar="NAME", help="check this user instead of the current one"
    )
    return parser


def _seconds(text: str) -> float:
    """A number of seconds, 0 or more; anything else is a usage error (exit 2)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):  # also refuses nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds (0 or more)")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    """The console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    data_dir: Path = (getattr(args, "data_dir", None) or default_data_dir()).absolute()
    try:
        if args.command == "join":
            return _join(args, data_dir)
        if args.command == "run":
            return _run(_identity(data_dir), data_dir, discovery_seconds=args.discovery_seconds)
        if args.command == "status":
            return _status(_identity(data_dir), data_dir)
        if args.command == "install-service":
            return _install(args, data_dir)
        return _capabilities(args.user)
    except CommandError as exc:
        print(f"unity-agent: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        # Ctrl-C during a join or a status: nothing was written, say no more.
        print("unity-agent: interrupted", file=sys.stderr)
        return 130


def _configure_logging(verbose: bool) -> None:
    """Log to stderr (journald under systemd), unless the host program already
    logs somewhere (a test, an embedding). httpx's line per request is debug detail."""
    root = logging.getLogger()
    if root.handlers:
        return
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not verbose:
        logging.getLogger("httpx").setLevel(logging.WARNING)


@contextlib.contextmanager
def _quiet_client(verbose: bool) -> Iterator[None]:
    """Hold back the client's retry notices: join and status answer in one line."""
    client = logging.getLogger("unity_sdk._client")
    level = client.level
    if not verbose:
        client.setLevel(logging.ERROR)
    try:
        yield
    finally:
        client.setLevel(level)


def _identity(data_dir: Path) -> AgentIdentity:
    try:
        return load_identity(data_dir)
    except IdentityError as exc:
        raise CommandError(str(exc)) from None


def _join(args: argparse.Namespace, data_dir: Path) -> int:
    from unity_agent.join import JoinRequestOptions, join

    token = sys.stdin.readline().strip() if args.token == "-" else args.token
    if not token:
        raise CommandError("no enrollment token (stdin was empty)")
    options = JoinRequestOptions(
        url=args.url,
        token=token,
        data_dir=data_dir,
        hostname=args.hostname,
        host_id=args.host_id,
        fingerprint=args.fingerprint,
        force=args.force,
        pin=not args.no_pin,
    )
    with _quiet_client(args.verbose):
        identity = asyncio.run(join(options))
    print("")
    for line in report():
        print(line)
    if args.no_start:
        print(
            f"\nNot started (--no-start). As a service: unity-agent install-service "
            f"--data-dir {data_dir}; in the foreground: unity-agent run --data-dir {data_dir}"
        )
        return 0
    print("\nRunning; stop with Ctrl-C. To run it as a service: unity-agent install-service")
    return _run(identity, data_dir)


def _run(
    identity: AgentIdentity,
    data_dir: Path,
    *,
    discovery_seconds: float = DEFAULT_DISCOVERY_SECONDS,
) -> int:
    """Run the agent until SIGTERM or SIGINT: exit 0. A changed certificate or
    a refused key is final (exit 1): restarting cannot fix either."""
    from unity_agent.supervisor import CRASHED, run_until_stopped

    try:
        return asyncio.run(
            run_until_stopped(identity, data_dir, discovery_seconds=discovery_seconds)
        )
    except CommandError:
        raise
    except Exception:
        # Not 1: the service restarts after a crash, never after a refusal.
        logging.getLogger("unity_agent").exception("the agent stopped on an unexpected error")
        return CRASHED


def _status(identity: AgentIdentity, data_dir: Path) -> int:
    """What this agent is joined to, and whether the hub answers it now (exit 1
    when not). Never the key."""
    print(f"hub:          {identity.hub_url}")
    print(f"host id:      {identity.host_id}")
    print(f"key id:       {identity.key_id}")
    print(f"data dir:     {data_dir}")
    if identity.fingerprint:
        print(f"certificate:  pinned {identity.fingerprint}")
    elif identity.hub_url.startswith("https://"):
        print("certificate:  not pinned (the system's CAs)")
    problem = check_pin(identity)
    if problem is not None:
        print(f"hub answers:  no: {problem}")
        return 1
    try:
        with _quiet_client(False):
            answer = asyncio.run(_assignments(identity))
    except HubAuthError:
        print(f"hub answers:  no: {REFUSED_KEY}")
        return 1
    except HubError as exc:
        print(f"hub answers:  no: {exc}")
        return 1
    print(f"hub answers:  yes ({answer} plugin instance(s) assigned to this host)")
    return 0


async def _assignments(identity: AgentIdentity) -> int:
    async with HubClient(
        identity.hub_url, identity.api_key, max_retries=0, timeout=10, verify=ssl_context(identity)
    ) as hub:
        return len((await hub.get_assignments()).instances)


def _install(args: argparse.Namespace, data_dir: Path) -> int:
    options = ServiceOptions(
        data_dir=data_dir,
        user=args.user,
        unit_dir=args.unit_dir,
        dry_run=args.dry_run,
        enable=args.enable,
        capabilities=args.capabilities,
        without_groups=tuple(args.without_group),
    )
    install_service(options)
    return 0


def _capabilities(user: str | None) -> int:
    who = Subject.this_process() if user is None else Subject.user(user)
    if who is None:
        raise CommandError(f"no user {user!r} on this machine")
    for line in report(who):
        print(line)
    return 0
