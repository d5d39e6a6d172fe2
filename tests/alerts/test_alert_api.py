"""``/api/alerts``: rules (with the 422s), active alerts, history, ack, silences."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.alerts.support import ProbePlugin, enable
from tests.api.helpers import error_of
from unity.plugins.observe import RunObserved
from unity.storage.types import utcnow
from unity_sdk import PluginState, RunStatus


@pytest.fixture
def plugin_classes() -> list[type[Any]]:
    return [ProbePlugin]


def _rule(**extra: Any) -> dict[str, Any]:
    return {"plugin_id": "probe", "id": "load-warn", "metric": "load", "threshold": 70} | extra


async def test_rules_list_defaults_and_user_rules(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/api/alerts/rules", params={"plugin_id": "probe"})).json()
    defaults = [r["rule"]["id"] for r in listed["items"] if r["source"] == "default"]
    assert defaults[:3] == ["load-high", "disk-full", "disk-hot"]
    made = await client.post("/api/alerts/rules", json=_rule(severity="info", for_seconds=120))
    assert made.status_code == 201, made.text
    listed = (await client.get("/api/alerts/rules")).json()["items"]
    mine = [r for r in listed if r["source"] == "user"]
    assert [(r["plugin_id"], r["rule"]["id"], r["rule"]["for_seconds"]) for r in mine] == [
        ("probe", "load-warn", 120)
    ]
    again = await client.post("/api/alerts/rules", json=_rule())
    assert error_of(again, 409)["message"] == "plugin 'probe' already has a rule 'load-warn'"
    body = _rule(threshold=75)
    del body["plugin_id"]
    replaced = await client.put("/api/alerts/rules/probe/load-warn", json=body)
    assert replaced.json()["rule"]["threshold"] == 75
    assert (await client.delete("/api/alerts/rules/probe/load-warn")).status_code == 204
    error_of(await client.delete("/api/alerts/rules/probe/load-warn"), 404)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (_rule(metric="cpu"), "metric", "the plugin declares no metric 'cpu'"),
        (_rule(metric="name"), "metric", "metric 'name' is not numeric (info)"),
        (_rule(unit="bytes"), "unit", "'bytes' does not convert to the metric's '%'"),
        (_rule(op="<", threshold=-1), "threshold", "'%' is never negative: < -1 is never true"),
        (_rule(clear=95), "clear", "clear (95) must not be above threshold (70)"),
        (_rule(summary="{bogus}"), "summary", "unknown placeholders: bogus"),
        (_rule(kind="rate", unit="%/fortnight"), "unit", "'%/fortnight' is not a rate of '%'"),
    ],
)
async def test_a_rule_that_cannot_work_is_refused_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, message: str
) -> None:
    error = error_of(await client.post("/api/alerts/rules", json=body), 422)
    assert error["message"] == f"{field}: {message}"
    assert error["details"][0]["loc"] == [field]
    listed = (await client.get("/api/alerts/rules")).json()["items"]
    assert all(r["source"] == "default" for r in listed)


async def test_bad_bodies_and_unknown_plugins(client: httpx.AsyncClient) -> None:
    error = error_of(await client.post("/api/alerts/rules", json=_rule(threshold="hot")), 422)
    assert error["details"][0]["loc"] == ["threshold"]
    error_of(await client.post("/api/alerts/rules", json=_rule(plugin_id="nope")), 404)
    clash = await client.post("/api/alerts/rules", json=_rule(id="load-high"))
    assert "override it instead" in error_of(clash, 409)["message"]


async def test_override_switches_off_and_changes_a_default_rule(
    client: httpx.AsyncClient,
) -> None:
    url = "/api/alerts/rules/probe/load-high/override"
    off = await client.put(url, json={"enabled": False})
    assert off.json()["enabled"] is False
    changed = await client.put(url, json={"changes": {"threshold": 95, "clear": 90}})
    assert changed.json()["rule"]["threshold"] == 95
    listed = (await client.get("/api/alerts/rules", params={"plugin_id": "probe"})).json()
    load = next(r for r in listed["items"] if r["rule"]["id"] == "load-high")
    assert load["overridden"] is True
    assert load["enabled"] is True
    assert load["rule"]["clear"] == 90
    bad = await client.put(url, json={"changes": {"clear": 99}})
    assert (
        error_of(bad, 422)["message"]
        == "changes.clear: clear (99) must not be above threshold (90)"
    )
    bad = await client.put(url, json={"changes": {"metric": "errors"}})
    assert error_of(bad, 422)["details"][0]["loc"] == ["changes", "metric"]
    assert (await client.delete(url)).status_code == 204
    error_of(await client.put("/api/alerts/rules/probe/nope/override", json={}), 404)


async def test_active_alerts_history_and_acknowledgement(
    app: FastAPI, client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    await enable(app)
    engine = app.state.alerts
    doc = {"load": 99.0, "disks": {"sda": {"percent": 97.0}}}
    now = utcnow()
    event = RunObserved("probe", now, RunStatus.SUCCESS, PluginState.HEALTHY, [("web1", doc)])
    await engine.observe(event)
    alerts = (await reader.get("/api/alerts")).json()["items"]
    assert [(a["rule_id"], a["state"], a["item"]) for a in alerts] == [
        ("load-high", "firing", ""),
        ("disk-full", "pending", "sda"),
    ]
    assert alerts[0]["summary"] == "load on web1 is 99% (limit 90%)"
    assert alerts[1]["summary"] == "probe on web1: disks.sda.percent 97% (limit 90%)"
    history = (await reader.get("/api/alerts/history", params={"limit": 1})).json()
    assert len(history["items"]) == 1
    assert history["next_cursor"] is not None
    older = await reader.get("/api/alerts/history", params={"before": history["next_cursor"]})
    assert [h["to_state"] for h in older.json()["items"]] == ["firing"]
    fp = alerts[0]["fingerprint"]
    error_of(await reader.post(f"/api/alerts/{fp}/ack", json={"note": "x"}), 403)
    acked = await client.post(f"/api/alerts/{fp}/ack", json={"note": "replacing the fan"})
    assert acked.status_code == 200, acked.text
    assert acked.json()["ack_note"] == "replacing the fan"
    assert acked.json()["ack_by"].startswith("token:")
    error_of(await client.post("/api/alerts/0000/ack", json={}), 404)


async def test_silences_and_maintenance_windows(
    client: httpx.AsyncClient, reader: httpx.AsyncClient
) -> None:
    none = await client.post("/api/alerts/silences", json={"matchers": {}, "duration_seconds": 60})
    assert error_of(none, 422)["message"] == "matchers: give at least one"
    backwards = {
        "matchers": {"host": "web1"},
        "starts_at": "2026-12-01T10:00:00Z",
        "ends_at": "2026-12-01T09:00:00Z",
    }
    error_of(await client.post("/api/alerts/silences", json=backwards), 422)
    body = {"matchers": {"plugin_id": "probe", "labels": {"team": "ops"}}, "duration_seconds": 600}
    made = await client.post("/api/alerts/silences", json=body)
    assert made.status_code == 201, made.text
    assert made.json()["active"] is True
    error_of(await reader.post("/api/alerts/silences", json=body), 403)
    listed = (await reader.get("/api/alerts/silences")).json()["items"]
    assert [s["matchers"] for s in listed] == [{"plugin_id": "probe", "labels": {"team": "ops"}}]
    assert (await client.delete(f"/api/alerts/silences/{listed[0]['id']}")).status_code == 204
    assert (await reader.get("/api/alerts/silences")).json()["items"] == []
    window = {"host": "nas", "duration_seconds": 3600, "comment": "disk swap"}
    made = await client.post("/api/alerts/maintenance", json=window)
    assert made.status_code == 201, made.text
    listed = (await reader.get("/api/alerts/maintenance")).json()["items"]
    assert [(w["host"], w["comment"]) for w in listed] == [("nas", "disk swap")]
    assert (await client.delete(f"/api/alerts/maintenance/{listed[0]['id']}")).status_code == 204
    error_of(await client.delete(f"/api/alerts/maintenance/{listed[0]['id']}"), 404)
