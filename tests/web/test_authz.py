"""The dashboard applies the API's authorization rule: what the API refuses a token,
the dashboard does not show to a session of that token."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from tests.support.authz import (
    PLUGIN,
    UNAUTHENTICATED,
    Session,
    World,
    asgi_client,
    endpoints,
    login,
    populate,
)
from unity.auth.access import ADMIN, requirement_of
from unity.auth.sessions import WebSession, end_session
from unity.auth.tokens import Scope, create_token
from unity.web.common import render, session_guard

# Dashboard credentials are session cookies; anything else is a stranger to a page.
PAGE_KINDS = [*UNAUTHENTICATED, "admin", "dead session", "read session", "admin session"]
AdminPageSession = Annotated[WebSession, Depends(session_guard(ADMIN))]
PAGE_RULE = {
    "read": {"read session": 200, "admin session": 200},
    "admin": {"read session": 403, "admin session": 200},
}


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


# Served to anyone: browsers fetch these without a session.
PUBLIC_PAGES = {"/login", "/manifest.webmanifest"}


def pages(app: FastAPI) -> list[tuple[str, Callable[..., Any]]]:
    """Every page and fragment the dashboard serves (GET routes of unity.web but the
    public ones)."""
    return sorted(
        (template, endpoint)
        for (method, template), endpoint in endpoints(app).items()
        if method == "GET"
        and endpoint.__module__.startswith("unity.web.")
        and template not in PUBLIC_PAGES
    )


async def test_public_pages_carry_no_data(app: FastAPI) -> None:
    async with asgi_client(app) as stranger:
        manifest = await stranger.get("/manifest.webmanifest")
    assert manifest.status_code == 200
    assert set(manifest.json()) <= {
        "name",
        "short_name",
        "description",
        "start_url",
        "scope",
        "display",
        "background_color",
        "theme_color",
        "icons",
        "id",
        "orientation",
    }


async def _dead_session(app: FastAPI, world: World) -> Session:
    async with app.state.db.session() as session:
        token = await create_token(session, name="matrix-dead", scope=Scope.ADMIN)
    async with asgi_client(app) as browser:
        assert (await login(browser, token.value)).status_code == 303
        cookie = browser.cookies["unity_session"]
    await end_session(app.state.db, cookie)
    return Session(cookie, "")


async def test_the_page_matrix(app: FastAPI, world: World) -> None:
    """Every page, for strangers and for sessions of each scope, against the one rule;
    a read-only session's pages never carry admin-only data."""
    world.sessions["dead session"] = await _dead_session(app, world)
    markers = _admin_only_markers(world)
    walked = pages(app)
    assert {"/", "/external", "/credentials", "/servers", "/plugins/{plugin_id}"} <= {
        template for template, _ in walked
    }
    mismatches = []
    for template, endpoint in walked:
        requirement = requirement_of(endpoint)
        assert requirement is not None, f"page {template} declares no requirement"
        path = world.fill(template)
        for kind in PAGE_KINDS:
            answer = await _page(app, world, kind, path)
            if kind in PAGE_RULE[requirement.name]:
                want = PAGE_RULE[requirement.name][kind]
            else:
                want = 401 if template.startswith("/live/") else 303
            if answer.status_code != want:
                mismatches.append(f"{kind:>13}  {template}: {answer.status_code}, want {want}")
            elif want == 303:
                assert re.match(r"/login(\?next=|$)", answer.headers["location"]), template
            if kind == "read session":
                leaked = [what for what, marker in markers.items() if marker in answer.text]
                assert leaked == [], f"{template} shows a read-only session: {leaked}"
    assert mismatches == [], "\n" + "\n".join(mismatches)


async def test_a_page_that_needs_admin_answers_a_read_session_403(
    app: FastAPI, world: World
) -> None:
    """No page needs admin yet; one that does is refused by the same rule."""

    async def admin_page(request: Request, web: AdminPageSession) -> HTMLResponse:
        return render(request, "error.html", web, nav=None, message="for admins")

    app.get("/admins-only", response_class=HTMLResponse)(admin_page)
    assert requirement_of(admin_page) is ADMIN
    refused = await _page(app, world, "read session", "/admins-only")
    assert refused.status_code == 403
    assert "this token&#39;s scope is &#39;read&#39;" in refused.text
    assert refused.headers["content-security-policy"]
    assert (await _page(app, world, "admin session", "/admins-only")).status_code == 200
    assert (await _page(app, world, "none", "/admins-only")).status_code == 303
