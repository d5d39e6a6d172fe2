"""The hub's own counters, exported on ``/metrics`` next to the plugin metrics.

Each manager owns its registry, so several hubs in one process (tests,
benchmarks) do not share counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

__all__ = ["HubStats"]

_RUN_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class HubStats:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.runs = Counter(
            "unity_plugin_runs",
            "Plugin runs by outcome (success, failed, timed_out, skipped).",
            ["plugin", "status"],
            registry=self.registry,
        )
        self.run_duration = Histogram(
            "unity_plugin_run_duration_seconds",
            "Wall time of plugin collections.",
            ["plugin"],
            buckets=_RUN_BUCKETS,
            registry=self.registry,
        )
        self.lateness = Histogram(
            "unity_scheduler_lateness_seconds",
            "How late scheduled runs start compared to their due time.",
            buckets=_LATENESS_BUCKETS,
            registry=self.registry,
        )
        self.load_failures = Counter(
            "unity_plugin_load_failures",
            "Plugins that failed to import or validate.",
            registry=self.registry,
        )
