"""``GET /api/plugins/v2/{id}``: everything about one plugin."""

from __future__ import annotations

import httpx

from tests.api.helpers import API, error_of


async def test_unknown_plugin_is_a_json_404(client: httpx.AsyncClient) -> None:
    error = error_of(await client.get(f"{API}/no-such-plugin"), 404)
    assert error["code"] == "not_found"
    assert "no-such-plugin" in error["message"]


async def test_detail_has_metadata_with_the_declared_metrics(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/counter")
    assert response.status_code == 200
    detail = response.json()
    assert detail["id"] == "counter"
    assert detail["author"] == "tests"
    assert detail["loaded"] is True
    assert detail["enabled"] is False
    assert detail["state"] == "disabled"
    assert detail["interval"] == 60
    assert detail["config"] == {}
    assert detail["consecutive_failures"] == 0
    assert detail["reload_error"] is None
    metadata = detail["metadata"]
    assert metadata["id"] == "counter"
    assert metadata["version"] == "1.0.0"
    assert metadata["timeout"] == 5
    metrics = {m["name"]: (m["unit"], m["kind"]) for m in metadata["metrics"]}
    assert metrics == {
        "runs": ("count", "counter"),
        "value": ("%", "gauge"),
        "disks.*.used": ("bytes", "gauge"),
        "label": ("", "info"),
    }
    assert metadata["config_schema"] == {"type": "object", "properties": {}}


async def test_detail_has_the_config_schema_as_json_schema(client: httpx.AsyncClient) -> None:
    schema = (await client.get(f"{API}/configured")).json()["metadata"]["config_schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["url"]
    assert set(schema["properties"]) == {"url", "port", "password", "mode"}
    assert schema["properties"]["port"]["maximum"] == 65535
    assert schema["properties"]["url"]["description"] == "Where the service answers"
    assert schema["additionalProperties"] is False


async def test_detail_shows_the_last_run(client: httpx.AsyncClient) -> None:
    await client.post(f"{API}/failing/execute")
    detail = (await client.get(f"{API}/failing")).json()
    assert detail["run_count"] == 1
    assert detail["last_run_at"] is not None
    assert detail["last_success_at"] is None
    assert detail["last_error"] == "CollectionError: the service answered 500"
    assert detail["consecutive_failures"] == 1
