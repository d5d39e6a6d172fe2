"""End to end: ``kill -9`` of the hub under ingest loses nothing it acknowledged.

The feeder keeps sending across the crash and the restart, retrying each
refused batch with the same id, so a batch stored just before the kill but
never acknowledged must not be stored a second time either.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import pytest
from tests.e2e.ingest import Ingest, register, stored_sequence_numbers
from tests.support.processes import Hub, hub_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_kill_9_under_ingest_loses_no_acknowledged_sample(
    tmp_path: Path, database_url: str
) -> None:
    hub = Hub(hub_env(tmp_path, database_url), tmp_path / "hub.log")
    hub.start()
    try:
        with hub.client() as admin:
            ingest = Ingest(hub.url, register(hub.url, admin))
        ingest.start()
        for _ in range(2):
            wait_until(partial(ingest.has_acknowledged, len(ingest.acknowledged) + 200))
            hub.kill()
            acknowledged_before_kill = set(ingest.acknowledged)
            hub.start()
            restarted = time.monotonic()
            wait_until(partial(ingest.answered_since, restarted, 200))
            assert acknowledged_before_kill <= ingest.acknowledged
        ingest.stop()
        assert any(a.status is None for a in ingest.answers), "the kill was not noticed"
        with hub.client() as admin:
            stored = stored_sequence_numbers(admin)
    finally:
        if hub.proc is not None:
            hub.kill()
    assert len(stored) == len(set(stored)), "a sample was stored twice"
    assert ingest.acknowledged <= set(stored), "an acknowledged sample was lost"
