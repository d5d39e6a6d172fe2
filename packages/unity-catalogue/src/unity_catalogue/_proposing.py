"""How the built-ins word their proposals, so every ``discover`` reads alike.

Only the shape lives here; what each plugin looks for (ports, process names,
commands) and the config it suggests stay in the plugin's own module, next
to the config model they must fit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from unity_sdk import HostFacts, ListeningSocket, PluginBase, Proposal

__all__ = ["bound", "one_proposal", "plugin_id", "seen", "service_proposals"]


def plugin_id(cls: type[PluginBase[Any]]) -> str:
    """The id the plugin declares, so a proposal names it the same way everywhere."""
    return cls().get_metadata().id


def bound(socket: ListeningSocket) -> str:
    """``"127.0.0.1:5432"`` / ``"[::1]:6379"``: where the socket is bound."""
    address = f"[{socket.address}]" if socket.ipv6 else socket.address
    return f"{address}:{socket.port}"


def seen(socket: ListeningSocket) -> str:
    """What discovery saw, for a proposal's ``reason``."""
    owner = (
        f"{socket.process} (pid {socket.pid})"
        if socket.process
        else "a process this user may not inspect"
    )
    return f"{owner} listens on {socket.protocol.upper()} {bound(socket)}"


def service_proposals(
    cls: type[PluginBase[Any]],
    facts: HostFacts,
    *,
    service: str,
    ports: Collection[int],
    processes: Collection[str] = (),
    config: Callable[[ListeningSocket], dict[str, Any]],
    credential: Callable[[ListeningSocket], str | None] = lambda socket: None,
    advice: str = "",
) -> list[Proposal]:
    """One proposal per port a service listens on, keyed ``"{plugin}:{port}"``."""
    plugin = plugin_id(cls)
    return [
        Proposal(
            key=f"{plugin}:{socket.port}",
            plugin=plugin,
            title=f"{service} on port {socket.port}",
            reason=" ".join(part for part in (f"{seen(socket)}.", advice) if part),
            config=config(socket),
            credential=credential(socket),
        )
        for socket in facts.listening(ports=ports, processes=processes)
    ]


def one_proposal(
    cls: type[PluginBase[Any]], *, title: str, reason: str, config: dict[str, Any] | None = None
) -> list[Proposal]:
    """The single proposal of a plugin that watches a whole host (disks, GPUs, units)."""
    plugin = plugin_id(cls)
    return [Proposal(key=plugin, plugin=plugin, title=title, reason=reason, config=config or {})]
