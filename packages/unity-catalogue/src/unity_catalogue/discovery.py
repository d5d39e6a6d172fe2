"""Discovery on a Linux host: what runs here, and which plugins could watch it.

:func:`gather_facts` reads a :class:`unity_sdk.HostFacts` from the host:
listening sockets and their owners (``/proc/net`` and ``/proc/<pid>/fd``),
disks (``/sys/block``), md arrays (``/proc/mdstat``), ZFS pools
(``zpool list -H``), GPUs (``/sys/class/drm``, ``/dev/nvidia*``), hardware
monitors (``/sys/class/hwmon``), systemd, the Docker socket and the commands
plugins need on ``PATH``. It takes a few milliseconds to tens of them, and a
source that is missing or unreadable leaves its fact empty instead of failing.

:func:`discover` asks every plugin class (the built-ins by default) through
``PluginBase.discover`` and keeps what :func:`unity_sdk.collect_proposals`
accepts: proposals, never actions. The agent runs it on every host and the hub
on its own machine; ``python -m unity_catalogue.discovery`` prints this host's
proposals as the JSON the agent sends (a ``ProposalReport``), ``--facts`` what
the scan saw.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from unity_sdk import HostFacts, PluginBase, Proposal, ProposalReport, collect_proposals

from . import BUILTIN_PLUGINS
from ._facts import block_devices, docker_socket, gpus, hwmon_chips, md_arrays, zfs_pools
from ._sockets import listening_sockets

__all__ = ["discover", "gather_facts", "main", "needed_commands"]

_logger = logging.getLogger("unity_catalogue.discovery")
_T = TypeVar("_T")


def needed_commands(plugins: Iterable[type[PluginBase[Any]]]) -> list[str]:
    """The commands the ``plugins`` declare they run (``Requirements.commands``), sorted."""
    commands: set[str] = set()
    for cls in plugins:
        try:
            commands.update(cls().get_metadata().requires.commands)
        except Exception:
            _logger.warning("cannot read the metadata of %s", cls.__name__, exc_info=True)
    return sorted(commands)


def _safely(read: Callable[[], _T], empty: _T, what: str) -> _T:
    """``read()``, or ``empty`` when it fails: a fact we cannot read is a fact absent."""
    try:
        return read()
    except Exception:
        _logger.debug("discovery could not read %s", what, exc_info=True)
        return empty


def gather_facts(
    *,
    root: Path = Path("/"),
    commands: Iterable[str] | None = None,
    search_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> HostFacts:
    """What runs on this host, read from ``root`` (``/``; a recorded tree in tests).

    ``commands`` are looked up on ``search_path`` (``PATH``; default: those
    the built-ins need); ``environ`` supplies ``DOCKER_HOST``.
    """
    wanted = needed_commands(BUILTIN_PLUGINS) if commands is None else sorted(set(commands))
    found = tuple(c for c in wanted if shutil.which(c, path=search_path))
    no_socket: tuple[str | None, bool] = (None, False)
    socket, socket_readable = _safely(
        lambda: docker_socket(root, os.environ if environ is None else environ),
        no_socket,
        "the Docker socket",
    )
    zpool = shutil.which("zpool", path=search_path)
    return HostFacts(
        listeners=_safely(lambda: listening_sockets(root / "proc"), (), "listening sockets"),
        docker_socket=socket,
        docker_socket_readable=socket_readable,
        block_devices=_safely(lambda: block_devices(root), (), "block devices"),
        md_arrays=_safely(lambda: md_arrays(root), (), "md arrays"),
        zfs_pools=_safely(lambda: zfs_pools(root, zpool), (), "ZFS pools"),
        gpus=_safely(lambda: gpus(root), (), "GPUs"),
        hwmon=_safely(lambda: hwmon_chips(root), (), "hardware monitors"),
        systemd=_safely(lambda: (root / "run" / "systemd" / "system").is_dir(), False, "systemd"),
        executables=found,
    )


def discover(
    plugins: Sequence[type[PluginBase[Any]]] | None = None, facts: HostFacts | None = None
) -> list[Proposal]:
    """The proposals of ``plugins`` (default ``BUILTIN_PLUGINS``) for ``facts``
    (default: this host, now), sorted and one per key."""
    classes = list(BUILTIN_PLUGINS if plugins is None else plugins)
    if facts is None:
        facts = gather_facts(commands=needed_commands(classes))
    return collect_proposals(classes, facts)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m unity_catalogue.discovery``: this host's proposals (or facts) as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m unity_catalogue.discovery",
        description="Print what the built-in plugins propose to monitor on this host, as JSON "
        "(the body an agent sends to PUT /api/agents/v1/proposals). Nothing is enabled.",
    )
    parser.add_argument(
        "--facts", action="store_true", help="print what the scan saw instead of the proposals"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    facts = gather_facts()
    if args.facts:
        print(json.dumps(dataclasses.asdict(facts), indent=2))
    else:
        print(ProposalReport(proposals=discover(facts=facts)).model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
