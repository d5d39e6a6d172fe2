"""The dashboard's routes over ASGI: login, sessions, CSRF, scopes, every page."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from tests.web.conftest import csrf_of, login
from unity.auth.sessions import end_dead_sessions
from unity.auth.tokens import has_admin_token, revoke_token

PAGES = [
    "/",
    "/plugins",
    "/plugins/counter",
    "/plugins/configured",
    "/external",
    "/credentials",
    "/servers",
]
FRAGMENTS = ["/live/overview", "/live/plugins/counter", "/live/plugins/counter/history"]


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client without credentials, like a fresh browser."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client


async def test_pages_send_strangers_to_the_login_page(browser: httpx.AsyncClient) -> None:
    for path in PAGES:
        answer = await browser.get(path)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/login"), path
    assert (await browser.get("/plugins/counter")).headers["location"] == (
        "/login?next=/plugins/counter"
    )
    for path in FRAGMENTS:
        assert (await browser.get(path)).status_code == 401, path
    page = await browser.get("/login")
    assert page.status_code == 200
    assert 'type="password"' in page.text


async def test_login_starts_a_cookie_session_that_hides_the_token(
    browser: httpx.AsyncClient, admin_token: str
) -> None:
    answer = await login(browser, admin_token, "/plugins")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/plugins"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "unity_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie or "samesite=strict" in cookie.lower()
    assert "Secure" not in cookie, "plain http on loopback: a Secure cookie would never be sent"
    assert admin_token not in cookie
    secret = admin_token.split("_", 2)[2]
    assert secret not in cookie
    assert secret not in (await browser.get("/")).text
    page = await browser.get("/")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert (await browser.get("/login")).headers["location"] == "/"


async def test_the_cookie_is_secure_over_https(app: FastAPI, admin_token: str) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://hub") as client:
        answer = await login(client, admin_token)
    cookie = next(c for c in answer.headers.get_list("set-cookie") if "unity_session=" in c)
    assert "Secure" in cookie


async def test_login_refusals(browser: httpx.AsyncClient, admin_token: str) -> None:
    wrong = await login(browser, "unity_aaaaaaaaaaaa_" + "b" * 43)
    assert wrong.status_code == 401
    assert "not valid" in wrong.text
    assert "unity_session" not in browser.cookies
    no_nonce = await browser.post("/login", data={"token": admin_token, "nonce": "x"})
    assert no_nonce.status_code == 400
    away = await login(browser, admin_token, "//evil.example/steal")
    assert away.headers["location"] == "/", "never a redirect to another site"
    session_value = browser.cookies["unity_session"]
    browser.cookies.clear()
    assert (await login(browser, session_value)).status_code == 401, "a session is not a login"


@pytest.mark.parametrize("scope", ["admin", "read"])
async def test_every_page_renders_for_admin_and_reader(
    browser: httpx.AsyncClient, admin_token: str, read_token: str, scope: str
) -> None:
    await login(browser, admin_token if scope == "admin" else read_token)
    for path in PAGES + FRAGMENTS:
        answer = await browser.get(path)
        assert answer.status_code == 200, (path, answer.text[:500])
    missing = await browser.get("/plugins/no-such-plugin")
    assert missing.status_code == 404
    plugin = (await browser.get("/plugins/configured")).text
    locked = 'disabled title="Read-only token: changes are disabled"'
    assert (locked in plugin) is (scope == "read")


async def test_api_calls_with_the_cookie_need_the_csrf_token(
    browser: httpx.AsyncClient, admin_token: str
) -> None:
    await login(browser, admin_token)
    csrf = csrf_of((await browser.get("/")).text)
    assert (await browser.get("/api/plugins/v2/counter")).status_code == 200, "reads need none"
    refused = await browser.post("/api/plugins/v2/counter/enable")
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["error"]["message"]
    wrong = await browser.post("/api/plugins/v2/counter/enable", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    elsewhere = await browser.post(
        "/api/plugins/v2/counter/enable",
        headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
    )
    assert elsewhere.status_code == 403
    proxied = await browser.post(
        "/api/plugins/v2/counter/disable",
        headers={
            "X-CSRF-Token": csrf,
            "Origin": "https://hub.example",
            "X-Forwarded-Host": "hub.example",
        },
    )
    assert proxied.status_code == 200, "behind a proxy the forwarded host is the origin"
    done = await browser.post(
        "/api/plugins/v2/counter/enable",
        headers={"X-CSRF-Token": csrf, "Origin": "http://hub"},
    )
    assert done.status_code == 200
    assert done.json()["enabled"]
    invalid = await browser.put(
        "/api/plugins/v2/configured/config", json={"port": 0}, headers={"X-CSRF-Token": csrf}
    )
    assert invalid.status_code == 422
    assert {tuple(d["loc"]) for d in invalid.json()["error"]["details"]} == {("url",), ("port",)}


async def test_a_read_only_session_cannot_change_anything(
    browser: httpx.AsyncClient, read_token: str
) -> None:
    await login(browser, read_token)
    page = (await browser.get("/")).text
    assert "read-only" in page
    csrf = csrf_of(page)
    for method, path in [
        ("POST", "/api/plugins/v2/counter/enable"),
        ("POST", "/api/plugins/v2/counter/execute"),
        ("PUT", "/api/plugins/v2/counter/config"),
        ("POST", "/api/enrollment-tokens"),
        ("POST", "/api/credentials"),
    ]:
        answer = await browser.request(method, path, json={}, headers={"X-CSRF-Token": csrf})
        assert answer.status_code == 403, (method, path)


async def test_logout_ends_the_session(browser: httpx.AsyncClient, admin_token: str) -> None:
    await login(browser, admin_token)
    csrf = csrf_of((await browser.get("/")).text)
    old = browser.cookies["unity_session"]
    assert (await browser.post("/logout", data={"csrf": "nope"})).status_code == 403
    out = await browser.post("/logout", data={"csrf": csrf})
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert (await browser.get("/")).status_code == 303
    browser.cookies.set("unity_session", old)
    assert (await browser.get("/")).status_code == 303, "the old cookie is dead, not just dropped"
    assert (await browser.get("/api/plugins/v2")).status_code == 401


async def test_revoking_the_login_token_ends_its_sessions(
    app: FastAPI, browser: httpx.AsyncClient, admin_token: str
) -> None:
    await login(browser, admin_token)
    assert (await browser.get("/")).status_code == 200
    async with app.state.db.session() as session:
        assert await revoke_token(session, admin_token.split("_")[1])
    await end_dead_sessions(app.state.db)
    async with app.state.db.session() as session:
        assert not await has_admin_token(session), "a dead session must not pass for an admin"
    assert (await browser.get("/")).status_code == 303
    assert (await browser.get("/api/plugins/v2")).status_code == 401


async def test_static_files_and_the_vendored_chart_library(browser: httpx.AsyncClient) -> None:
    for path in ["/static/app.js", "/static/plugin.js", "/static/app.css"]:
        assert (await browser.get(path)).status_code == 200, path
    library = await browser.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert library.status_code == 200
    licence = await browser.get("/static/vendor/uplot/LICENSE")
    assert "MIT License" in licence.text


async def test_external_page_lists_agents_and_revokes_their_keys(
    browser: httpx.AsyncClient, client: httpx.AsyncClient, admin_token: str
) -> None:
    await login(browser, admin_token)
    csrf = csrf_of((await browser.get("/")).text)
    made = await browser.post(
        "/api/enrollment-tokens", json={"name": "garage-pi"}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status_code == 201
    metadata = {
        "id": "garage-temp",
        "name": "Garage temperature",
        "version": "1.0.0",
        "metrics": [{"name": "celsius", "unit": "°C"}],
        "default_interval": 30,
    }
    registered = await client.post(
        "/api/plugins/v2/register",
        json={"metadata": metadata, "hostname": "garage-pi"},
        headers={"Authorization": f"Bearer {made.json()['token']}"},
    )
    assert registered.status_code == 201
    key_id = registered.json()["key_id"]
    page = (await browser.get("/external")).text
    assert "Garage temperature" in page
    assert f"unityk_{key_id}_" in page
    assert "used up" in page, "the one-use enrollment token was spent"
    assert made.json()["token"] not in page
    revoked = await browser.delete(
        f"/api/plugins/v2/garage-temp/keys/{key_id}", headers={"X-CSRF-Token": csrf}
    )
    assert revoked.status_code == 204
    assert "revoked" in (await browser.get("/plugins/garage-temp")).text
