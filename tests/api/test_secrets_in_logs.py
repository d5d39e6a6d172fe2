"""A plugin-config secret never reaches the log, not even at DEBUG level.

The hub is driven through every path that handles a config (set, read back,
read by the plugin's own key, enable, run, health, a refused update) with
the root logger at DEBUG, as ``UNITY_LOG_LEVEL=DEBUG`` runs it.
"""

from __future__ import annotations

import logging

import httpx
import pytest
from fastapi import FastAPI

API = "/api/plugins/v2"
SECRET = "hunter2-c0rrect-h0rse-b4ttery"
EXTERNAL = {
    "id": "nas-temp",
    "name": "NAS temperature",
    "version": "1.0.0",
    "metrics": [{"name": "celsius"}],
    "config_schema": {
        "type": "object",
        "properties": {
            "sensor": {"type": "string"},
            "password": {"type": "string", "writeOnly": True, "maxLength": 64},
        },
        "additionalProperties": False,
    },
}


def _leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    handler = logging.Handler()
    found = []
    for record in caplog.records:
        text = handler.format(record) if record.exc_info else record.getMessage()
        if SECRET in text or SECRET in repr(record.args) or SECRET in str(record.__dict__):
            found.append(f"{record.name}: {text[:200]}")
    return found


async def test_secrets_stay_out_of_debug_logs(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    # An in-hub plugin with a SecretStr field: set, read, enable, run, health.
    saved = await client.put(
        f"{API}/configured/config", json={"url": "http://127.0.0.1:9", "password": SECRET}
    )
    assert saved.status_code == 200, saved.text
    assert (await client.get(f"{API}/configured/config")).status_code == 200
    assert (await client.post(f"{API}/configured/enable")).status_code == 200
    assert (await client.post(f"{API}/configured/execute")).status_code == 200
    assert (await client.get(f"{API}/configured/health")).status_code == 200
    refused = await client.put(
        f"{API}/configured/config", json={"url": 5, "password": SECRET, "port": 0}
    )
    assert refused.status_code == 422
    # An external plugin with a writeOnly JSON Schema field.
    enrollment = (await client.post("/api/enrollment-tokens", json={})).json()["token"]
    registered = await anon.post(
        f"{API}/register",
        json={"metadata": EXTERNAL, "hostname": "nas"},
        headers={"Authorization": f"Bearer {enrollment}"},
    )
    assert registered.status_code == 201, registered.text
    own = {"Authorization": f"Bearer {registered.json()['api_key']}"}
    saved = await client.put(f"{API}/nas-temp/config", json={"sensor": "a", "password": SECRET})
    assert saved.status_code == 200, saved.text
    mine = await anon.get(f"{API}/nas-temp/config", headers=own)
    assert mine.json()["config"]["password"] == SECRET
    too_long = await client.put(f"{API}/nas-temp/config", json={"password": SECRET * 3})
    assert too_long.status_code == 422
    assert SECRET not in too_long.text
    assert (await client.get(f"{API}/nas-temp")).status_code == 200

    assert logging.getLogger("unity.plugins.manager").isEnabledFor(logging.DEBUG)
    assert caplog.records, "nothing was logged at all"
    assert _leaks(caplog) == []
