"""The hub's timing settings default to the SDK's rules, which the agent applies too."""

from __future__ import annotations

from unity.settings import Settings
from unity_sdk import (
    DEFAULT_CPU_SHARE,
    DEFAULT_DISCOVERY_SECONDS,
    DEFAULT_JITTER,
    DEFAULT_MAX_BACKOFF,
)


def test_the_hub_and_the_agent_time_plugins_alike_by_default() -> None:
    fields = Settings.model_fields
    assert fields["scheduler_jitter"].default == DEFAULT_JITTER
    assert fields["max_backoff_seconds"].default == DEFAULT_MAX_BACKOFF
    assert fields["plugin_cpu_share"].default == DEFAULT_CPU_SHARE


def test_the_hub_and_the_agent_scan_for_proposals_alike_by_default() -> None:
    assert Settings.model_fields["discovery_seconds"].default == DEFAULT_DISCOVERY_SECONDS
