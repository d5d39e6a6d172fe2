"""End to end: the hub's PostgreSQL goes away under ingest, twice, and comes back.

While it is down every batch is answered 503 with ``Retry-After`` in the JSON
envelope, ``/readyz`` says 503 and ``/healthz`` stays 200; the outage is
logged once, without tracebacks. Once the database is back, writes succeed
within seconds and every acknowledged sample is stored exactly once.
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import httpx
import pytest
from tests.e2e.ingest import Ingest, register, stored_sequence_numbers
from tests.support.postgres import PrivatePostgres
from tests.support.processes import Hub, hub_env, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.postgres]

OUTAGES = 2
OUTAGE_SECONDS = 6
RECOVERY_SECONDS = 5


def test_a_database_outage_is_503_with_retry_after_and_loses_nothing(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    hub = Hub(hub_env(tmp_path, private_postgres.url), tmp_path / "hub.log")
    hub.start()
    try:
        with hub.client() as admin:
            # A scheduled plugin writes too: its failed runs must not flood the log either.
            assert admin.put("/api/plugins/v2/system-info/config", json={"interval": 1}).is_success
            assert admin.post("/api/plugins/v2/system-info/enable").is_success
            ingest = Ingest(hub.url, register(hub.url, admin))
            ingest.start()
            wait_until(lambda: len(ingest.acknowledged) >= 50)
            for _ in range(OUTAGES):
                private_postgres.stop()
                down = time.monotonic()
                wait_until(partial(ingest.answered_since, down, 503))
                assert httpx.get(f"{hub.url}/healthz", timeout=10).status_code == 200
                listed = admin.get("/api/plugins/v2")
                assert (listed.status_code, listed.headers.get("retry-after")) == (503, "5")
                ready = httpx.get(f"{hub.url}/readyz", timeout=30)
                assert ready.status_code == 503
                assert ready.headers["retry-after"].isdigit()
                assert ready.json()["error"]["code"] == "unavailable"
                time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down)))

                private_postgres.start()
                back = time.monotonic()
                wait_until(partial(ingest.answered_since, back, 200), timeout=RECOVERY_SECONDS)
                assert httpx.get(f"{hub.url}/readyz", timeout=10).status_code == 200
                time.sleep(1)
            ingest.stop()

            refused = [a for a in ingest.answers if a.status != 200]
            assert refused, "the outages were not noticed"
            assert {(a.status, a.code) for a in refused} == {(503, "unavailable")}
            assert all(a.retry_after and a.retry_after.isdigit() for a in refused)

            stored = stored_sequence_numbers(admin)
            assert len(stored) == len(set(stored)), "a sample was stored twice"
            assert ingest.acknowledged <= set(stored), "an acknowledged sample was lost"
    finally:
        hub.kill()
    log = hub.log.read_text()
    assert log.count("database unavailable") == OUTAGES, log
    assert "Traceback" not in log
