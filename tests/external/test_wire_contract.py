"""One wire rule, two receivers: the real hub and the SDK's FakeHub refuse the same
unstorable inputs (numbers JSON allows but a double or BIGINT cannot hold,
timestamps outside years 1-9999 in UTC or too far ahead) with the same 422."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from unity.storage.models import BatchReceipt, PluginMetric
from unity_sdk.testing import FakeHub

API = "/api/plugins/v2"
METADATA = {
    "id": "nas-temp",
    "name": "NAS temperature",
    "version": "1.0.0",
    "metrics": [{"name": "cpu.temp", "unit": "C"}],
}
GOOD = '{"host": "nas", "timestamp": "2026-11-01T00:00:00Z", "data": {"cpu": {"temp": 40}}}'


def _batch(bad_sample: str) -> bytes:
    """A batch whose sample 2 is ``bad_sample`` (raw JSON, so 1e309 stays 1e309)."""
    return f'{{"batch_id": "contract-1", "samples": [{GOOD}, {GOOD}, {bad_sample}]}}'.encode()


def _sample(data: str, timestamp: str = "2026-11-01T00:00:00Z") -> str:
    return f'{{"host": "nas", "timestamp": "{timestamp}", "data": {data}}}'


FUTURE = (datetime.now(UTC) + timedelta(hours=1)).isoformat()

# (case id, bad sample, what the 422 detail's loc ends with, words its msg must hold)
BAD_SAMPLES = [
    ("overflowing-float", _sample('{"cpu": {"temp": 1e309}}'), "data", "data.cpu.temp"),
    ("negative-overflow", _sample('{"cpu": {"temp": -1e309}}'), "data", "data.cpu.temp"),
    ("400-digit-integer", _sample('{"cpu": {"temp": ' + "9" * 400 + "}}"), "data", "data.cpu.temp"),
    ("beyond-bigint", _sample('{"disks": [1, ' + str(2**63) + "]}"), "data", "data.disks.1"),
    ("nan-undeclared", _sample('{"note": NaN}'), "data", "data.note"),
    ("year-0", _sample("{}", "0001-01-01T00:30:00+01:00"), "timestamp", "outside years"),
    ("year-10000", _sample("{}", "9999-12-31T23:30:00-01:00"), "timestamp", "outside years"),
    ("future", _sample("{}", FUTURE), "timestamp", "ahead"),
]
BAD_HEALTH = [
    ("nan", b'{"status": "healthy", "details": {"fan": NaN}}', "details.fan"),
    ("infinity", b'{"status": "healthy", "details": {"fan": Infinity}}', "details.fan"),
    ("overflow", b'{"status": "healthy", "details": {"fans": [1e309]}}', "details.fans.0"),
    ("huge-int", b'{"status": "healthy", "details": {"n": ' + b"1" * 400 + b"}}", "details.n"),
]


@dataclass
class Receiver:
    """One side of the contract: a client with the plugin's key on a hub."""

    name: str
    http: httpx.AsyncClient
    stored: Callable[[], Awaitable[int]]


@pytest.fixture(params=["hub", "fake-hub"])
async def receiver(
    request: pytest.FixtureRequest, app: FastAPI, client: httpx.AsyncClient
) -> AsyncIterator[Receiver]:
    if request.param == "fake-hub":
        hub = FakeHub()
        async with httpx.AsyncClient(transport=hub.transport, base_url="http://hub") as http:
            answer = await http.post(
                f"{API}/register",
                json={"metadata": METADATA, "hostname": "nas"},
                headers={"Authorization": f"Bearer {hub.enrollment_token}"},
            )
            assert answer.status_code == 201, answer.text
            http.headers["Authorization"] = f"Bearer {answer.json()['api_key']}"

            async def fake_stored() -> int:
                return len(hub.samples("nas-temp"))

            yield Receiver("fake-hub", http, fake_stored)
        return
    enrollment = (await client.post("/api/enrollment-tokens", json={})).json()["token"]
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as http:
        answer = await http.post(
            f"{API}/register",
            json={"metadata": METADATA, "hostname": "nas"},
            headers={"Authorization": f"Bearer {enrollment}"},
        )
        assert answer.status_code == 201, answer.text
        http.headers["Authorization"] = f"Bearer {answer.json()['api_key']}"

        async def hub_stored() -> int:
            async with app.state.db.session() as session:
                metrics = await session.scalar(select(func.count()).select_from(PluginMetric))
                receipts = await session.scalar(select(func.count()).select_from(BatchReceipt))
            return int(metrics or 0) + int(receipts or 0)

        yield Receiver("hub", http, hub_stored)


@pytest.mark.parametrize(
    ("case", "sample", "field", "words"), BAD_SAMPLES, ids=[c[0] for c in BAD_SAMPLES]
)
async def test_an_unstorable_sample_is_422_naming_sample_and_field(
    receiver: Receiver, case: str, sample: str, field: str, words: str
) -> None:
    response = await receiver.http.post(
        f"{API}/nas-temp/metrics",
        content=_batch(sample),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422, (receiver.name, case, response.status_code, response.text)
    error = response.json()["error"]
    assert error["message"] == "sample 2 is invalid; nothing was stored"
    [detail] = error["details"]
    assert detail["loc"] == ["samples", 2, field], detail
    assert words in detail["msg"], detail
    assert await receiver.stored() == 0


@pytest.mark.parametrize(("case", "body", "words"), BAD_HEALTH, ids=[c[0] for c in BAD_HEALTH])
async def test_unstorable_health_details_are_422_naming_the_field(
    receiver: Receiver, case: str, body: bytes, words: str
) -> None:
    response = await receiver.http.post(
        f"{API}/nas-temp/health", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422, (receiver.name, case, response.status_code, response.text)
    [detail] = response.json()["error"]["details"]
    assert detail["loc"][-1] == "details", detail
    assert words in detail["msg"], detail


async def test_a_sample_within_the_allowed_skew_is_stored(receiver: Receiver) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()
    response = await receiver.http.post(
        f"{API}/nas-temp/metrics",
        content=_batch(_sample('{"cpu": {"temp": 41.5}, "big": ' + str(2**63 - 1) + "}", soon)),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 3, "duplicate": False}


async def test_after_a_refused_batch_the_plugin_reads_keep_working(
    app: FastAPI, client: httpx.AsyncClient, receiver: Receiver
) -> None:
    """What the accepted 1e309 used to break: series queries, the plugin page, the overview."""
    if receiver.name != "hub":
        pytest.skip("reads are the hub's")
    for _, sample, _, _ in BAD_SAMPLES:
        await receiver.http.post(
            f"{API}/nas-temp/metrics",
            content=_batch(sample),
            headers={"content-type": "application/json"},
        )
    await receiver.http.post(
        f"{API}/nas-temp/health",
        content=BAD_HEALTH[0][1],
        headers={"content-type": "application/json"},
    )
    series = await client.get(
        f"{API}/nas-temp/metrics",
        params={
            "field": "cpu.temp",
            "start": "2026-10-31T00:00:00Z",
            "end": "2026-11-02T00:00:00Z",
        },
    )
    assert series.status_code == 200, series.text
    assert (await client.get(f"{API}/nas-temp")).status_code == 200
    assert (await client.get("/metrics")).status_code == 200
