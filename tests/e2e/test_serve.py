"""End to end: the real `unity serve` process, over HTTP, across a restart."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.processes import TOKEN_RE, Hub, free_port

from unity_catalogue import BUILTIN_PLUGINS


@pytest.fixture
def hub(tmp_path: Path, database_url: str) -> Iterator[Hub]:
    env = {
        **os.environ,
        "UNITY_DATA_DIR": str(tmp_path / "data"),
        "UNITY_DATABASE_URL": database_url,
        "UNITY_PORT": str(free_port()),
        "UNITY_AUTOENABLE": "[]",
        "UNITY_HOSTNAME": "e2e-host",
        "UNITY_CONFIG_FILE": str(tmp_path / "absent.toml"),
    }
    instance = Hub(env, tmp_path / "hub.log")
    yield instance
    if instance.proc is not None:
        instance.proc.kill()
        instance.proc.wait()


def _wait_for_runs(client: httpx.Client, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = client.get("/api/plugins/v2/system-info/executions").json()["items"]
        scheduled = [e for e in items if e["trigger"] == "schedule" and e["status"] == "success"]
        if len(scheduled) >= count:
            return scheduled
        time.sleep(0.3)
    raise AssertionError(f"fewer than {count} scheduled runs in {timeout}s")


@pytest.mark.e2e
def test_serve_collects_and_survives_a_restart(hub: Hub) -> None:
    hub.start()
    tokens = sorted(set(TOKEN_RE.findall(hub.log.read_text())))
    assert len(tokens) == 1, "the first start prints exactly one admin token"
    headers = {"Authorization": f"Bearer {tokens[0]}"}
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as client:
        assert httpx.get(f"{hub.url}/api/plugins/v2").status_code == 401
        answer = client.get("/api/plugins/v2", params={"limit": 1000}).json()
        listed = {p["id"]: p for p in answer["items"]}
        assert answer["load_failures"] == []
        # The whole built-in catalogue is listed, each plugin in its category.
        catalogue = [cls().get_metadata() for cls in BUILTIN_PLUGINS]
        assert {m.id: m.category.value for m in catalogue} == {
            plugin_id: listed[plugin_id]["category"] for plugin_id in {m.id for m in catalogue}
        }
        assert not listed["system-info"]["enabled"]

        assert client.put("/api/plugins/v2/system-info/config", json={"interval": 1}).is_success
        assert client.post("/api/plugins/v2/system-info/enable").json()["enabled"]
        runs = _wait_for_runs(client, 2)
        assert all(r["duration_ms"] > 0 and r["metrics_count"] == 1 for r in runs)

        metrics = client.get("/api/plugins/v2/system-info/metrics").json()["items"]
        assert len(metrics) >= 2
        assert metrics[0]["host"] == "e2e-host"
        assert 0 <= metrics[0]["data"]["memory"]["percent"] <= 100
        before = {m["id"] for m in metrics}

    hub.stop()
    hub.start()
    assert set(TOKEN_RE.findall(hub.log.read_text())) == set(tokens), "no new token on restart"
    with httpx.Client(base_url=hub.url, headers=headers, timeout=30) as client:
        detail = client.get("/api/plugins/v2/system-info").json()
        assert detail["enabled"]
        assert detail["config"] == {"interval": 1}
        kept = {m["id"] for m in client.get("/api/plugins/v2/system-info/metrics").json()["items"]}
        assert before <= kept
        count = len(_wait_for_runs(client, 1))
        assert len(_wait_for_runs(client, count + 1)) > count
    hub.stop()
