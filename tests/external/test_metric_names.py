"""Registration refuses metadata whose metrics would share a Prometheus name."""

from __future__ import annotations

import httpx
from tests.api.helpers import error_of

CLASHING = {
    "id": "nas-clash",
    "name": "NAS",
    "version": "1.0.0",
    "metrics": [
        {"name": "endpoint_up", "unit": "count"},
        {"name": "endpoints.*.up", "unit": "bool"},
    ],
}


async def test_registration_refuses_two_metrics_with_one_prometheus_name(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    enrollment = (await client.post("/api/enrollment-tokens", json={"max_uses": 1})).json()
    headers = {"Authorization": f"Bearer {enrollment['token']}"}
    refused = await anon.post(
        "/api/plugins/v2/register", json={"metadata": CLASHING, "hostname": "nas"}, headers=headers
    )
    error = error_of(refused, 422)
    problem = (
        "metrics 'endpoint_up' (gauge) and 'endpoints.*.up' (gauge) map to "
        "the same Prometheus name 'unity_nas_clash_endpoint_up'; rename one of them"
    )
    assert error["message"] == f"metadata of plugin 'nas-clash' is not valid: {problem}"
    assert error["details"] == [{"loc": ["metadata", "metrics"], "msg": problem}]
    assert (await client.get("/api/plugins/v2/nas-clash")).status_code == 404
    # Nothing was used up: the single-use token still registers the fixed metadata.
    fixed = {**CLASHING, "metrics": CLASHING["metrics"][1:]}
    accepted = await anon.post(
        "/api/plugins/v2/register", json={"metadata": fixed, "hostname": "nas"}, headers=headers
    )
    assert accepted.status_code == 201, accepted.text
