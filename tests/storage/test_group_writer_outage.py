"""The group writer through a PostgreSQL outage, in process against the real app.

While the database is down every batch and every "run now" waiting for the
writer is answered 503 ``unavailable``; once it is back the same writer stores
again, and nothing answered 503 was stored.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select
from tests.support import sample_plugins
from tests.support.postgres import PrivatePostgres

from unity.app import create_app
from unity.auth.tokens import Scope, create_token
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database
from unity.storage.models import BatchReceipt, PluginMetric

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

METADATA = {
    "id": "pusher",
    "name": "Pusher",
    "version": "1.0.0",
    "metrics": [{"name": "load", "unit": "%"}],
    "default_interval": 10,
}
METRICS = "/api/plugins/v2/pusher/metrics"


def _batch(name: str, start: int) -> dict[str, Any]:
    base = datetime(2026, 11, 1, tzinfo=UTC)
    return {
        "batch_id": f"batch-{name}",
        "samples": [
            {"host": "box", "timestamp": (base + timedelta(seconds=start)).isoformat(), "data": {}}
        ],
    }


async def _count(db: Database, model: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_an_outage_answers_waiting_writes_503_and_the_writer_recovers(
    tmp_path: Path, private_postgres: PrivatePostgres
) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url=private_postgres.url,
        hostname="test-host",
        autoenable=[],
        bootstrap_token=False,
        discovery_seconds=0,
        retention_check_seconds=3600,
    )
    loader = PluginLoader(sample_plugins.ALL, group="unity.plugins.none-in-tests")
    app = create_app(settings, loader=loader)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=60):
        db: Database = app.state.db
        async with db.session() as session:
            admin = (await create_token(session, name="admin", scope=Scope.ADMIN)).value
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
            token = {"Authorization": f"Bearer {admin}"}
            enrollment = await http.post("/api/enrollment-tokens", json={}, headers=token)
            registered = await http.post(
                "/api/plugins/v2/register",
                json={"metadata": METADATA, "hostname": "box"},
                headers={"Authorization": f"Bearer {enrollment.json()['token']}"},
            )
            key = {"Authorization": f"Bearer {registered.json()['api_key']}"}
            assert (await http.post(METRICS, json=_batch("before", 0), headers=key)).is_success

            await asyncio.to_thread(private_postgres.stop)
            batches = [_batch(f"down-{n}", 10 + n) for n in range(4)]
            during = await asyncio.gather(
                *(http.post(METRICS, json=batch, headers=key) for batch in batches),
                http.post("/api/plugins/v2/counter/execute", headers=token),
            )
            for response in during:
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "unavailable"
            assert db.outage.active

            await asyncio.to_thread(private_postgres.start)
            answer: httpx.Response | None = None
            for attempt in range(100):
                answer = await http.post(METRICS, json=_batch(f"after-{attempt}", 100), headers=key)
                if answer.status_code == 200:
                    break
                assert answer.status_code == 503
                await asyncio.sleep(0.1)
            assert answer is not None
            assert answer.json() == {"stored": 1, "duplicate": False}
            run = await http.post("/api/plugins/v2/counter/execute", headers=token)
            assert run.status_code == 200, run.text
            assert not db.outage.active
            # The batches answered 503 were not stored: the agent sends them again.
            assert await _count(db, BatchReceipt) == 2
            assert await _count(db, PluginMetric) == 3
