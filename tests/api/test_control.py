"""Enable, disable and execute: the routes that change what the hub runs."""

from __future__ import annotations

import asyncio
import time

import httpx
from fastapi import FastAPI

from tests.api.helpers import API, error_locs, error_of, eventually, execution_rows, plugin_row
from tests.support.sample_plugins import CounterPlugin, HangingPlugin


async def test_enable_schedules_the_plugin(
    app: FastAPI, client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    response = await client.post(f"{API}/counter/enable")
    assert response.status_code == 200
    detail = response.json()
    assert detail["id"] == "counter"
    assert detail["enabled"] is True
    assert detail["state"] != "disabled"
    assert "counter" in app.state.manager.scheduler.scheduled
    assert counter.events[0] == "enable"
    assert (await plugin_row(app, "counter")).enabled is True
    listed = (await client.get(f"{API}", params={"enabled": "true"})).json()["items"]
    assert [item["id"] for item in listed] == ["counter"]


async def test_enable_runs_the_plugin_at_once(app: FastAPI, client: httpx.AsyncClient) -> None:
    assert (await client.post(f"{API}/counter/enable")).status_code == 200

    async def ran_on_schedule() -> bool:
        return any(e.trigger == "schedule" for e in await execution_rows(app, "counter"))

    await eventually(ran_on_schedule, timeout=2.0, message="a scheduled run after enabling")


async def test_enable_twice_is_harmless(
    app: FastAPI, client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    assert (await client.post(f"{API}/counter/enable")).status_code == 200
    assert (await client.post(f"{API}/counter/enable")).status_code == 200
    assert counter.events.count("enable") == 1
    assert app.state.manager.scheduler.scheduled.count("counter") == 1


async def test_disable_unschedules(
    app: FastAPI, client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    await client.post(f"{API}/counter/enable")
    response = await client.post(f"{API}/counter/disable")
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert response.json()["state"] == "disabled"
    assert "counter" not in app.state.manager.scheduler.scheduled
    assert counter.events[-1] == "disable"
    assert (await plugin_row(app, "counter")).enabled is False
    listed = (await client.get(f"{API}", params={"enabled": "true"})).json()["items"]
    assert listed == []


async def test_enabling_without_a_required_field_is_422_and_stays_disabled(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    response = await client.post(f"{API}/configured/enable")
    assert error_locs(response) == {("url",)}
    assert "configured" in response.json()["error"]["message"]
    assert (await client.get(f"{API}/configured")).json()["enabled"] is False
    assert "configured" not in app.state.manager.scheduler
    assert (await plugin_row(app, "configured")).enabled is False
    # Once the config is complete, the same request works.
    put = await client.put(f"{API}/configured/config", json={"url": "http://nas.lan"})
    assert put.status_code == 200
    assert (await client.post(f"{API}/configured/enable")).json()["enabled"] is True
    assert "configured" in app.state.manager.scheduler


async def test_control_of_an_unknown_plugin_is_404(client: httpx.AsyncClient) -> None:
    for action in ("enable", "disable", "execute"):
        error = error_of(await client.post(f"{API}/nope/{action}"), 404)
        assert "nope" in error["message"]


async def test_execute_returns_the_data_and_records_it(
    app: FastAPI, client: httpx.AsyncClient, counter: CounterPlugin
) -> None:
    response = await client.post(f"{API}/counter/execute")
    assert response.status_code == 200
    result = response.json()
    assert result["plugin_id"] == "counter"
    assert result["status"] == "success"
    assert result["error"] is None
    assert result["metrics_count"] == 1
    assert 0 <= result["duration_ms"] < 5000
    assert result["data"] == {
        "runs": 1,
        "value": 42.5,
        "disks": {"sda": {"used": 100}, "sdb": {"used": 200}},
        "label": "hello",
    }
    assert counter.runs == 1
    [execution] = await execution_rows(app, "counter")
    assert execution.status == "success"
    assert execution.trigger == "manual"
    assert execution.metrics_count == 1
    metrics = (await client.get(f"{API}/counter/metrics")).json()["items"]
    assert [m["data"] for m in metrics] == [result["data"]]
    assert metrics[0]["host"] == "test-host"
    executions = (await client.get(f"{API}/counter/executions")).json()["items"]
    assert [e["status"] for e in executions] == ["success"]
    detail = (await client.get(f"{API}/counter")).json()
    assert detail["run_count"] == 1
    assert detail["last_success_at"] is not None
    # Execute works on a disabled plugin and does not enable it.
    assert detail["enabled"] is False
    assert "counter" not in app.state.manager.scheduler


async def test_execute_a_failing_plugin(app: FastAPI, client: httpx.AsyncClient) -> None:
    result = (await client.post(f"{API}/failing/execute")).json()
    assert result["status"] == "failed"
    assert result["error"] == "CollectionError: the service answered 500"
    assert result["data"] is None
    assert result["metrics_count"] == 0
    [execution] = await execution_rows(app, "failing")
    assert execution.status == "failed"
    assert execution.error == "CollectionError: the service answered 500"
    assert (await client.get(f"{API}/failing/metrics")).json()["items"] == []


async def test_an_auth_failure_marks_an_enabled_plugin_failing_at_once(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(f"{API}/auth-failing/enable")).status_code == 200
    result = (await client.post(f"{API}/auth-failing/execute")).json()
    assert result["status"] == "failed"
    detail = (await client.get(f"{API}/auth-failing")).json()
    assert detail["state"] == "failing"
    assert detail["last_error"] == "PluginAuthError: password rejected"


async def test_one_recoverable_failure_degrades_an_enabled_plugin(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post(f"{API}/failing/enable")).status_code == 200
    await client.post(f"{API}/failing/execute")
    assert (await client.get(f"{API}/failing")).json()["state"] == "degraded"


async def test_execute_a_hanging_plugin_times_out(app: FastAPI, client: httpx.AsyncClient) -> None:
    cancelled_before = HangingPlugin.cancelled
    started = time.monotonic()
    response = await client.post(f"{API}/hanging/execute")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    result = response.json()
    assert result["status"] == "timed_out"
    assert result["error"] == "timed out after 0.5s"
    assert 0.4 <= elapsed < 2.0
    assert 400 <= result["duration_ms"] < 2000
    [execution] = await execution_rows(app, "hanging")
    assert execution.status == "timed_out"
    await eventually(
        lambda: HangingPlugin.cancelled > cancelled_before, message="the plugin's cancellation"
    )


async def test_execute_while_a_blocked_run_holds_the_worker_is_409(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    # Blocked well past its 0.5 s timeout, so the second request still finds it
    # busy on a loaded machine.
    put = await client.put(f"{API}/blocking/config", json={"seconds": 4.0})
    assert put.status_code == 200
    first = asyncio.create_task(client.post(f"{API}/blocking/execute"))

    async def timed_out() -> bool:
        return [e.status for e in await execution_rows(app, "blocking")] == ["timed_out"]

    await eventually(timed_out, message="the first run to time out")
    error = error_of(await client.post(f"{API}/blocking/execute"), 409)
    assert error["code"] == "conflict"
    assert "blocking" in error["message"]
    assert (await first).json()["status"] == "timed_out"
    assert len(await execution_rows(app, "blocking")) == 1
    managed = app.state.manager.plugins["blocking"]
    await eventually(lambda: not managed.busy, timeout=10, message="the blocked thread to return")


async def test_execute_of_a_thread_blocking_plugin_answers_within_its_timeout(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.put(f"{API}/blocking/config", json={"seconds": 2.0})
    managed = app.state.manager.plugins["blocking"]
    started = time.monotonic()
    try:
        result = (await client.post(f"{API}/blocking/execute")).json()
        elapsed = time.monotonic() - started
    finally:
        await eventually(lambda: not managed.busy, message="the blocked thread to return")
    assert result["status"] == "timed_out"
    assert elapsed < 1.2
