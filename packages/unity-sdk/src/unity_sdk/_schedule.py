"""When a plugin runs: the timing rules the hub and the agent both apply.

Pure functions, no clock and no randomness of their own: the caller passes
the time it read and a random ``draw`` in ``[0, 1)``, so the rules are tested
exactly and a scheduler keeps its own random generator. Both schedulers (the
hub's ``unity.plugins.scheduler`` and ``unity_agent.scheduler``) run one
timer per plugin that applies them:

1. The first run waits :func:`start_delay`: plugins with equal intervals are
   spread over the first interval (at most :data:`MAX_START_SPREAD` s) instead
   of firing together.
2. Ticks fall on a fixed-rate grid (a slow run does not push later ticks),
   each moved by :func:`tick_jitter`. A tick that finds the previous run of
   the same plugin still going is skipped, never queued: runs never overlap.
3. After each tick the delay to the next one is :func:`run_delay`: the
   interval, doubled per consecutive failure up to ``max_backoff``, or longer
   when the plugin used more than its share of a CPU core
   (:func:`cpu_share_delay`).
4. :func:`next_base` places the next tick on the grid, or restarts the grid
   from now when the timer fell behind (a suspended process): missed ticks are
   skipped, not fired in a burst.
5. A run may take :func:`run_timeout` seconds; the timer waits for it at most
   until the next tick (:func:`run_window`), so backoff sees its outcome.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_CPU_SHARE",
    "DEFAULT_JITTER",
    "DEFAULT_MAX_BACKOFF",
    "MAX_BACKOFF_EXPONENT",
    "MAX_START_SPREAD",
    "cpu_share_delay",
    "next_base",
    "run_delay",
    "run_timeout",
    "run_window",
    "start_delay",
    "tick_jitter",
]

# The share of one CPU core a plugin's code may use on average (cpu_share_delay).
DEFAULT_CPU_SHARE = 0.1
# The random spread of each tick, as a fraction of the interval.
DEFAULT_JITTER = 0.1
# The longest delay between failing runs, unless the interval itself is longer.
DEFAULT_MAX_BACKOFF = 900.0
# The first runs are spread over the first interval, but start within a minute.
MAX_START_SPREAD = 60.0
# 2**16 intervals is past any useful ceiling: the exponent stops there.
MAX_BACKOFF_EXPONENT = 16


def start_delay(
    interval: float, jitter: float, draw: float, *, spread: float = MAX_START_SPREAD
) -> float:
    """Seconds before a plugin's first run: somewhere in the first interval, at most
    ``spread`` (a hub with thousands of plugins spreads them over a minute; an agent
    with a handful starts them within seconds). 0 without jitter (tests, exact
    benchmarks)."""
    if not jitter:
        return 0.0
    return draw * min(interval, spread)


def tick_jitter(interval: float, jitter: float, draw: float) -> float:
    """How late a tick fires after its place on the grid."""
    return draw * interval * jitter


def run_delay(
    interval: float,
    consecutive_failures: int,
    *,
    max_backoff: float = DEFAULT_MAX_BACKOFF,
    cpu_delay: float = 0.0,
) -> float:
    """Seconds from one tick to the next: the interval, exponential backoff after
    consecutive failures (capped at ``max_backoff``, or the interval when longer),
    and never less than ``cpu_delay``."""
    if consecutive_failures <= 0:
        return max(interval, cpu_delay)
    exponent = min(consecutive_failures, MAX_BACKOFF_EXPONENT)
    ceiling = max(max_backoff, interval)
    return max(float(min(interval * 2.0**exponent, ceiling)), cpu_delay)


def cpu_share_delay(cpu_seconds: float, share: float) -> float:
    """The shortest delay after a run whose code used ``cpu_seconds`` of CPU, so
    the plugin keeps to ``share`` of one core on average (``share`` 0: no limit)."""
    if share <= 0:
        return 0.0
    return max(0.0, cpu_seconds) / share


def next_base(base: float, interval: float, delay: float, now: float) -> float:
    """The grid point of the next tick, given the current one and :func:`run_delay`.

    On the grid while the delay is the interval; ``delay`` from now when it is
    longer (backoff). A grid point already past (the timer fell behind) moves
    to now: the missed ticks are skipped.
    """
    following = base + interval if delay <= interval else now + delay
    return max(following, now)


def run_window(base: float, interval: float, now: float) -> float:
    """How long the timer waits for the run it started at ``base``: until the next tick."""
    return max(0.0, base + interval - now)


def run_timeout(declared: float, assigned: float | None = None) -> float:
    """Seconds a run may take: what the hub assigned (an agent's instance), else
    what the plugin's metadata declares."""
    return assigned if assigned is not None and assigned > 0 else declared
