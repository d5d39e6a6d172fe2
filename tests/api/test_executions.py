"""``GET /api/plugins/v2/{id}/executions``: run history, newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import API, error_locs, error_of
from unity.storage import metrics as metric_store

BASE = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
STATUSES = ["success", "failed", "timed_out", "skipped"]


@pytest.fixture
async def history(app: FastAPI) -> list[dict[str, Any]]:
    """23 recorded runs of ``counter``: statuses in rotation, three sharing one start."""
    runs = []
    for i in range(23):
        started = BASE + timedelta(seconds=10 * min(i, 20))
        runs.append(
            {
                "started_at": started,
                "completed_at": started + timedelta(milliseconds=5 * i),
                "status": STATUSES[i % 4],
                "duration_ms": 5.0 * i,
                "error": None if i % 4 == 0 else f"problem {i}",
                "metrics_count": 1 if i % 4 == 0 else 0,
                "trigger": "schedule" if i % 2 else "manual",
            }
        )
    async with app.state.db.session() as session:
        for run in runs:
            await metric_store.record_execution(session, plugin_id="counter", **run)
        await metric_store.record_execution(
            session,
            plugin_id="failing",
            started_at=BASE,
            completed_at=BASE,
            status="failed",
            duration_ms=1.0,
        )
    return runs


async def listing(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(f"{API}/counter/executions", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["plugin_id"] == "counter"
    return body


def order_key(item: dict[str, Any]) -> tuple[datetime, int]:
    return datetime.fromisoformat(item["started_at"]), item["id"]


async def test_newest_first_with_durations(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    items = (await listing(client))["items"]
    assert len(items) == len(history)
    keys = [order_key(i) for i in items]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    by_duration = {i["duration_ms"]: i for i in items}
    for run in history:
        item = by_duration[run["duration_ms"]]
        assert datetime.fromisoformat(item["started_at"]) == run["started_at"]
        assert datetime.fromisoformat(item["completed_at"]) == run["completed_at"]
        assert (item["status"], item["error"], item["trigger"], item["metrics_count"]) == (
            run["status"],
            run["error"],
            run["trigger"],
            run["metrics_count"],
        )
    # The three runs sharing the last start come first, the latest-recorded first.
    assert [i["duration_ms"] for i in items[:3]] == [110.0, 105.0, 100.0]


async def test_status_filter(client: httpx.AsyncClient, history: list[dict[str, Any]]) -> None:
    for status in STATUSES:
        items = (await listing(client, status=status))["items"]
        assert {i["status"] for i in items} == {status}
        assert len(items) == len([r for r in history if r["status"] == status])


async def test_invalid_status_is_422(client: httpx.AsyncClient) -> None:
    for status in ("ok", "SUCCESS", "", "success,failed"):
        response = await client.get(f"{API}/counter/executions", params={"status": status})
        error = error_of(response, 422)
        assert "timed_out" in error["message"], status


@pytest.mark.parametrize("limit", [1, 4, 10])
async def test_cursor_walks_every_run_once(
    client: httpx.AsyncClient, history: list[dict[str, Any]], limit: int
) -> None:
    everything = (await listing(client))["items"]
    walked: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        if cursor:
            params["cursor"] = cursor
        body = await listing(client, **params)
        walked += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert len(body["items"]) == limit
    assert [i["id"] for i in walked] == [i["id"] for i in everything]


async def test_cursor_walks_within_a_status(
    client: httpx.AsyncClient, history: list[dict[str, Any]]
) -> None:
    first = await listing(client, status="failed", limit=2)
    second = await listing(client, status="failed", limit=2, cursor=first["next_cursor"])
    third = await listing(client, status="failed", limit=2, cursor=second["next_cursor"])
    ids = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert len(ids) == len(set(ids)) == len([r for r in history if r["status"] == "failed"])
    assert third["next_cursor"] is None


async def test_paging_errors(app: FastAPI, client: httpx.AsyncClient) -> None:
    cap = app.state.settings.max_page_size
    error_of(await client.get(f"{API}/counter/executions", params={"limit": cap + 1}), 422)
    locs = error_locs(await client.get(f"{API}/counter/executions", params={"limit": 0}))
    assert locs == {("query", "limit")}
    bad_cursor = await client.get(f"{API}/counter/executions", params={"cursor": "nope"})
    assert error_of(bad_cursor, 400)["code"] == "bad_request"
    error_of(await client.get(f"{API}/nope/executions"), 404)


async def test_real_runs_are_listed(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/failing/execute")
    await client.post(f"{API}/counter/execute")
    await client.post(f"{API}/counter/execute")
    items = (await listing(client))["items"]
    assert [i["status"] for i in items] == ["success", "success"]
    assert all(i["trigger"] == "manual" for i in items)
    assert all(i["duration_ms"] is not None and i["duration_ms"] >= 0 for i in items)
    assert all(
        datetime.fromisoformat(i["completed_at"]) >= datetime.fromisoformat(i["started_at"])
        for i in items
    )
    assert items[0]["id"] > items[1]["id"]
    failing = (await client.get(f"{API}/failing/executions")).json()["items"]
    assert [(i["status"], i["error"]) for i in failing] == [
        ("failed", "CollectionError: the service answered 500")
    ]
