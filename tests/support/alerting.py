"""Settings for end-to-end alert tests: a hub that evaluates and tells at once."""

from __future__ import annotations

from pathlib import Path

from unity.settings import Settings


def prompt_settings(tmp_path: Path, database_url: str) -> Settings:
    """The test hub, with the alert tick every second, notifications polled every
    0.2 s and no group wait: a condition reaches a channel within about a second."""
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        hostname="test-host",
        autoenable=[],
        bootstrap_token=False,
        scheduler_jitter=0.0,
        auth_failure_burst=1_000_000,
        auth_failure_limit=1_000_000,
        alert_eval_seconds=1,
        notify_poll_seconds=0.2,
        notify_group_wait_seconds=0,
    )
