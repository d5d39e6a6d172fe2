"""How the built-ins word their proposals, so every ``discover`` reads alike.

Only the shape lives here; what each plugin looks for (ports, process names,
commands) and the config it suggests stay in the plugin's own module, next
to the config model they must fit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from unity_sdk import HostFacts, ListeningSocket, PluginBase, Proposal

__all__ = ["bound", "one_proposal", "plugin_id", "propose", "seen", "service_proposals"]

# Proposal's own limits on these fields: a host with forty disks still gets
# its proposal, with a shortened description, instead of a refused one.
_MAX_TITLE = 200
_MAX_REASON = 1000


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


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def propose(
    cls: type[PluginBase[Any]],
    *,
    what: str = "",
    title: str,
    reason: str,
    config: dict[str, Any] | None = None,
    credential: str | None = None,
) -> Proposal:
    """A proposal of ``cls`` keyed ``"{plugin}:{what}"`` (just the id without ``what``)."""
    plugin = plugin_id(cls)
    return Proposal(
        key=f"{plugin}:{what}" if what else plugin,
        plugin=plugin,
        title=_fit(title, _MAX_TITLE),
        reason=_fit(reason, _MAX_REASON),
        config=config or {},
        credential=credential,
    )


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
    return [
        propose(
            cls,
            what=str(socket.port),
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
    return [propose(cls, title=title, reason=reason, config=config)]
