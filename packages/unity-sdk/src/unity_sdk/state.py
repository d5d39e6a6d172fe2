"""One state model, shared by the SDK, the hub, its API, CLI and dashboard.

Three enums, each with one meaning:

- :class:`RunStatus`: how one run ended (``success``, ``failed``,
  ``timed_out``, ``skipped``). Stored with every execution.
- :class:`HealthState` (in :mod:`unity_sdk.metadata`): what a plugin says
  about the thing it watches, from ``health_check()`` or ``assess(document)``.
  ``not_applicable`` means "nothing to monitor here" (no md arrays, no SMART
  disks) and is never an error.
- :class:`PluginState`: the one state shown for a plugin, everywhere. It is
  derived by :func:`plugin_state` from whether the plugin is loaded and
  enabled, whether it still reports, its recent runs and its health.

The runs alone give :func:`run_state` (unknown, healthy, degraded, failing):
consecutive failures move a plugin to degraded and then failing; a success
brings it back.
"""

from __future__ import annotations

from enum import StrEnum

from unity_sdk.metadata import HealthState

__all__ = ["RUN_STATES", "PluginState", "RunStatus", "plugin_state", "run_state"]


class RunStatus(StrEnum):
    """How one run of a plugin ended."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"  # the previous run was still going


class PluginState(StrEnum):
    """The state of a plugin as the hub shows it (see :func:`plugin_state`)."""

    UNKNOWN = "unknown"  # enabled, but no run (or report) yet
    HEALTHY = "healthy"
    DEGRADED = "degraded"  # some runs failed, or its health says degraded
    UNHEALTHY = "unhealthy"  # runs succeed, but what it watches is not well
    FAILING = "failing"  # runs keep failing
    STALE = "stale"  # enabled, but stopped reporting
    NOT_APPLICABLE = "not_applicable"  # nothing to monitor on this host
    DISABLED = "disabled"
    NOT_LOADED = "not_loaded"  # registered, but its code is not installed

    @property
    def problem(self) -> bool:
        """True for the states that need the owner's attention."""
        return self in _PROBLEMS


_PROBLEMS = frozenset(
    {PluginState.DEGRADED, PluginState.UNHEALTHY, PluginState.FAILING, PluginState.STALE}
)

# The states :func:`run_state` gives: what is stored with the plugin after each run.
RUN_STATES = (PluginState.UNKNOWN, PluginState.HEALTHY, PluginState.DEGRADED, PluginState.FAILING)

_FROM_HEALTH = {
    HealthState.HEALTHY: PluginState.HEALTHY,
    HealthState.DEGRADED: PluginState.DEGRADED,
    HealthState.UNHEALTHY: PluginState.UNHEALTHY,
    HealthState.NOT_APPLICABLE: PluginState.NOT_APPLICABLE,
    HealthState.UNKNOWN: PluginState.HEALTHY,
}


def run_state(
    consecutive_failures: int,
    *,
    unrecoverable: bool = False,
    degraded_after: int = 1,
    failing_after: int = 3,
) -> PluginState:
    """The state the recent runs give: healthy after a success, degraded after
    ``degraded_after`` failures in a row, failing after ``failing_after`` (or at
    once when the error says it cannot recover)."""
    if consecutive_failures <= 0:
        return PluginState.HEALTHY
    if unrecoverable or consecutive_failures >= failing_after:
        return PluginState.FAILING
    if consecutive_failures >= degraded_after:
        return PluginState.DEGRADED
    return PluginState.HEALTHY


def plugin_state(
    *,
    loaded: bool = True,
    enabled: bool,
    runs: PluginState | str = PluginState.UNKNOWN,
    health: HealthState | str | None = None,
    stale: bool = False,
) -> PluginState:
    """The one state of a plugin.

    In order: code not loaded, disabled, stale, then what its runs say when
    they fail (failing, degraded) or have not happened (unknown), then its
    health (not applicable, unhealthy, degraded), else healthy.
    """
    if not loaded:
        return PluginState.NOT_LOADED
    if not enabled:
        return PluginState.DISABLED
    if stale:
        return PluginState.STALE
    runs = PluginState(runs)
    if runs in (PluginState.FAILING, PluginState.DEGRADED, PluginState.UNKNOWN):
        return runs
    if health is None:
        return PluginState.HEALTHY
    return _FROM_HEALTH[HealthState(health)]
