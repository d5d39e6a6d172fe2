"""The one authorization rule of the hub, for the API and the dashboard alike.

Every API operation and every dashboard page declares one :class:`Requirement`
through its route dependency: ``ReadToken``, ``AdminToken``, ``PluginKey``,
``PluginKeyOrReadToken`` or ``AgentKeyDep`` (:mod:`unity.api.deps`), ``WebDep`` or
``session_guard(...)`` (:mod:`unity.web.common`). :func:`requirement_of` reads
it back from the route function. A dashboard page that shows the data of an API
operation shows it only when the session meets that operation's requirement,
so a dashboard session is shown exactly what the API gives the token it was
opened with.

Authentication (who is calling) is settled before this: a caller without a
live credential never reaches a requirement and gets 401.

An agent's key speaks for its host: it passes the agent API's requirement and,
where a plugin's own key would, the endpoints of that host's plugin instances
(ids ``{plugin}@{host_id}``, :func:`unity_sdk.instance_id`) -- never another's.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from unity.auth.tokens import Scope
from unity_sdk import split_instance_id

__all__ = [
    "ADMIN",
    "AGENT_KEY",
    "OWN_PLUGIN_KEY",
    "OWN_PLUGIN_KEY_OR_READ",
    "READ",
    "Principal",
    "Requirement",
    "declare",
    "requirement_of",
]

_Dependency = TypeVar("_Dependency", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    """Who is calling: a hub token (people, scripts, dashboard sessions), an
    external plugin's key or an agent's key (``host_id``: the host it speaks for)."""

    kind: Literal["token", "plugin", "agent"]
    id: str
    scope: Scope | None = None
    plugin_id: str | None = None
    host_id: str | None = None


@dataclass(frozen=True)
class Requirement:
    """What an operation needs: a hub token of at least ``scope`` (None: no hub
    token will do), and/or, with ``plugin_key``, the key of the plugin the
    operation's ``plugin_id`` names (or of the agent whose instance it is), or,
    with ``agent_key``, any agent's key (the agent API)."""

    name: str
    scope: Scope | None
    plugin_key: bool = False
    agent_key: bool = False

    def refusal(self, principal: Principal, plugin_id: str | None = None) -> str | None:
        """Why ``principal`` may not perform the operation (None: it may)."""
        if principal.kind == "agent":
            return self._agent_refusal(principal, plugin_id)
        if self.agent_key:
            return "only an agent's own key (unitya_...) can call the agent API"
        if principal.kind == "plugin":
            if not self.plugin_key:
                return "a plugin API key can only be used on its own plugin's endpoints"
            if principal.plugin_id != plugin_id:
                return "this API key belongs to another plugin"
            return None
        if self.scope is None:
            return "only the plugin's own API key can report for it"
        assert principal.scope is not None
        if not principal.scope.allows(self.scope):
            return f"this token's scope is {principal.scope.value!r}; {self.scope.value!r} needed"
        return None

    def _agent_refusal(self, principal: Principal, plugin_id: str | None) -> str | None:
        if self.agent_key:
            return None
        if not self.plugin_key:
            return (
                "an agent key can only be used on the agent API and its own host's plugin instances"
            )
        instance = split_instance_id(plugin_id) if plugin_id is not None else None
        if instance is None or instance[1] != principal.host_id:
            return (
                f"this agent key belongs to host {principal.host_id!r}: it reports only for "
                "that host's plugin instances"
            )
        return None

    def permits(self, principal: Principal, plugin_id: str | None = None) -> bool:
        return self.refusal(principal, plugin_id) is None


READ = Requirement("read", Scope.READ)
ADMIN = Requirement("admin", Scope.ADMIN)
OWN_PLUGIN_KEY = Requirement("own plugin key", None, plugin_key=True)
OWN_PLUGIN_KEY_OR_READ = Requirement("own plugin key or read", Scope.READ, plugin_key=True)
AGENT_KEY = Requirement("agent key", None, agent_key=True)


# Which requirement each guard dependency enforces, so requirement_of can read a route.
_DECLARED: dict[Callable[..., Any], Requirement] = {}


def declare(dependency: _Dependency, requirement: Requirement) -> _Dependency:
    """Record that the route dependency ``dependency`` enforces ``requirement``."""
    _DECLARED[dependency] = requirement
    return dependency


def requirement_of(endpoint: Callable[..., Any]) -> Requirement | None:
    """The requirement a route function (API operation or dashboard page) declares
    through its parameters' dependencies; None for a public one."""
    found = {
        _DECLARED[meta.dependency]
        for hint in typing.get_type_hints(endpoint, include_extras=True).values()
        for meta in getattr(hint, "__metadata__", ())
        if getattr(meta, "dependency", None) in _DECLARED
    }
    if len(found) > 1:
        raise TypeError(f"{endpoint.__qualname__} declares more than one requirement")
    return next(iter(found), None)
