"""The dashboard applies the API's authorization rule: what the API refuses a token,
the dashboard does not show to a session of that token."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.support.authz import PLUGIN, World, asgi_client, populate


@pytest.fixture
async def world(app: FastAPI) -> World:
    return await populate(app)


def _admin_only_markers(world: World) -> dict[str, str]:
    """Text that appears only where admin-only data is shown."""
    return {
        "credential audit log": world.audit_actor,
        "enrollment token": world.enrollment_id,
        "plugin key": world.victim_key_id,
    }


async def _page(app: FastAPI, world: World, kind: str, path: str) -> httpx.Response:
    async with asgi_client(app) as c:
        return await c.get(path, headers=world.headers(kind, "GET"))


async def test_the_api_refuses_the_read_token_what_the_pages_must_hide(
    app: FastAPI, world: World
) -> None:
    async with asgi_client(app) as c:
        for path in [
            "/api/credentials/audit",
            "/api/enrollment-tokens",
            f"/api/plugins/v2/{PLUGIN}/keys",
        ]:
            answer = await c.get(path, headers=world.headers("read", "GET"))
            assert answer.status_code == 403, path


@pytest.mark.parametrize("path", ["/credentials", "/servers", "/external", f"/plugins/{PLUGIN}"])
async def test_a_read_only_session_sees_no_admin_only_data(
    app: FastAPI, world: World, path: str
) -> None:
    markers = _admin_only_markers(world)
    shown = await _page(app, world, "read session", path)
    assert shown.status_code == 200, shown.text[:300]
    leaked = [what for what, marker in markers.items() if marker in shown.text]
    assert leaked == [], f"{path} shows a read-only session: {leaked}"


async def test_an_admin_session_sees_the_admin_only_data(app: FastAPI, world: World) -> None:
    markers = _admin_only_markers(world)
    pages = {
        "credential audit log": "/credentials",
        "enrollment token": "/external",
        "plugin key": f"/plugins/{PLUGIN}",
    }
    for what, path in pages.items():
        shown = await _page(app, world, "admin session", path)
        assert shown.status_code == 200, path
        assert markers[what] in shown.text, (what, path)
    external = (await _page(app, world, "admin session", "/external")).text
    assert world.victim_key_id in external
    assert 'id="enroll-title"' in external
    read_external = (await _page(app, world, "read session", "/external")).text
    assert 'id="enroll-title"' not in read_external, "the section itself is hidden"
    assert PLUGIN.upper() in read_external, "the registered plugins are still listed"
