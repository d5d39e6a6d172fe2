"""``PATCH /api/plugins/v2/{id}/config``: a JSON Merge Patch (RFC 7396) of the config."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from tests.api.helpers import API, MASK, plugin_row, stored_config
from unity.api.body import merge_patch

MERGE = {"Content-Type": "application/merge-patch+json"}


def test_merge_patch_follows_rfc_7396_examples() -> None:
    # The examples of RFC 7396, appendix A.
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": "b", "b": "c"}, {"a": None}) == {"b": "c"}
    assert merge_patch({"a": ["b"]}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch([1, 2], {"a": "b", "c": None}) == {"a": "b"}


async def test_patch_changes_only_the_fields_it_sends(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    put = await client.put(
        f"{API}/configured/config",
        json={"url": "http://nas", "password": "s3cret", "interval": 30, "port": 81},
    )
    assert put.status_code == 200, put.text
    patched = await client.patch(
        f"{API}/configured/config", json={"mode": "slow", "port": None}, headers=MERGE
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["interval"] == 30, "a patch without interval keeps it"
    assert body["config"]["password"] == MASK
    assert body["config"]["mode"] == "slow"
    stored = await stored_config(app, "configured")
    assert stored["password"] == "s3cret", "the secret is kept, not reset"
    assert stored["url"] == "http://nas"
    assert "port" not in stored or stored["port"] == 8080, "null removes: back to the default"
    # Plain application/json is accepted as a merge patch too.
    again = await client.patch(f"{API}/configured/config", json={"interval": 45})
    assert again.status_code == 200
    assert again.json()["interval"] == 45
    assert (await plugin_row(app, "configured")).config["mode"] == "slow"


async def test_an_invalid_patch_saves_nothing(client: httpx.AsyncClient, app: FastAPI) -> None:
    await client.put(f"{API}/configured/config", json={"url": "http://nas", "interval": 30})
    before = (await plugin_row(app, "configured")).config
    bad = await client.patch(
        f"{API}/configured/config", json={"port": 99999, "interval": 30}, headers=MERGE
    )
    assert bad.status_code == 422
    assert "port" in bad.text
    not_object = await client.patch(f"{API}/configured/config", json=[1], headers=MERGE)
    assert not_object.status_code == 422
    assert (await plugin_row(app, "configured")).config == before


async def test_patch_needs_an_admin(reader: httpx.AsyncClient) -> None:
    answer = await reader.patch(f"{API}/configured/config", json={"interval": 30})
    assert answer.status_code == 403
