"""A hub populated for authorization tests: every kind of credential, every kind of id.

``populate`` registers two external plugins, joins an agent, stores a credential
and a server, and issues one credential of each kind the authorization matrix
walks: none, malformed, revoked, expired, read, admin, the first plugin's own
key, the second plugin's key (another plugin's), an agent's key, and dashboard
sessions of both scopes.
Path parameters are filled with ids of objects that no credential depends on,
so an admin request that deletes or revokes one cannot change a later answer's
authentication.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.support.hosts import add_agent_host, add_proposal
from unity.auth.external import issue_plugin_key
from unity.auth.tokens import Scope, create_token, revoke_token

PLUGIN = "ext-a"
HOST = "matrix-host"
OTHER_PLUGIN = "ext-b"
CREDENTIAL = "matrix-cred"
SERVER = "matrix-server"

BEARER_KINDS = (
    "malformed",
    "revoked",
    "expired",
    "read",
    "admin",
    "own key",
    "other key",
    "agent key",
)
AGENT_HOST = "matrix-agent"
SESSION_KINDS = ("read session", "admin session")
# A client that presents no credential at all.
NONE = "none"
UNAUTHENTICATED = ("none", "malformed", "revoked", "expired")


def _metadata(plugin_id: str) -> dict[str, object]:
    return {
        "id": plugin_id,
        "name": plugin_id.upper(),
        "version": "1.0.0",
        "metrics": [{"name": "celsius", "unit": "°C"}],
        "default_interval": 30,
    }


def register_body(plugin_id: str) -> dict[str, object]:
    return {"metadata": _metadata(plugin_id), "hostname": f"{plugin_id}-host"}


def join_body(hostname: str) -> dict[str, object]:
    return {"platform": {"hostname": hostname}}


async def login(client: httpx.AsyncClient, token: str) -> httpx.Response:
    """Log in through the dashboard's form, as a browser does."""
    page = await client.get("/login")
    nonce = re.search(r'name="nonce" value="([^"]+)"', page.text)
    assert nonce is not None, page.text[:300]
    return await client.post("/login", data={"token": token, "nonce": nonce.group(1)})


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', html)
    assert found is not None, "a logged-in page carries its CSRF token"
    return found.group(1)


@dataclass
class Session:
    cookie: str
    csrf: str


@dataclass
class World:
    """What ``populate`` made: bearer values, sessions and path parameter values."""

    bearer: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    enrollment_id: str = ""
    victim_key_id: str = ""
    audit_actor: str = ""
    proposal_id: int = 0

    def params(self, template: str) -> dict[str, str]:
        """Values for the path parameters of ``template``: existing objects."""
        name = SERVER if template.startswith("/api/servers") else CREDENTIAL
        return {
            "plugin_id": PLUGIN,
            "token_id": self.enrollment_id,
            "key_id": self.victim_key_id,
            "name": name,
            "credential": CREDENTIAL,
            "rule_id": "matrix-rule",
            "fingerprint": "0" * 32,
            "silence_id": "1",
            "window_id": "1",
            "host_id": HOST,
            "proposal_id": str(self.proposal_id),
        }

    def fill(self, template: str) -> str:
        values = self.params(template)
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        assert "{" not in path, template
        return path

    def headers(self, kind: str, method: str) -> dict[str, str]:
        if kind in self.bearer:
            return {"Authorization": f"Bearer {self.bearer[kind]}"}
        if kind in self.sessions:
            session = self.sessions[kind]
            headers = {"Cookie": f"unity_session={session.cookie}"}
            if method not in ("GET", "HEAD", "OPTIONS"):
                headers["X-CSRF-Token"] = session.csrf
            return headers
        assert kind == NONE, kind
        return {}


def endpoints(app: FastAPI) -> dict[tuple[str, str], Callable[..., Any]]:
    """``(method, path template) -> route function`` of every route of ``app``."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI before routers were included lazily: routes are flat.
        contexts: list[Any] = list(app.routes)
    else:
        contexts = list(iter_route_contexts(app.routes))
    return {
        (method, context.path): context.endpoint
        for context in contexts
        if getattr(context, "endpoint", None) is not None
        for method in context.methods or ()
    }


def asgi_client(app: FastAPI, address: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://hub")


async def _register(anon: httpx.AsyncClient, enrollment: str, plugin_id: str) -> str:
    answer = await anon.post(
        "/api/plugins/v2/register",
        json=register_body(plugin_id),
        headers={"Authorization": f"Bearer {enrollment}"},
    )
    assert answer.status_code == 201, answer.text
    key: str = answer.json()["api_key"]
    return key


async def _session(app: FastAPI, token: str) -> Session:
    async with asgi_client(app) as browser:
        answer = await login(browser, token)
        assert answer.status_code == 303, answer.text[:300]
        cookie = browser.cookies["unity_session"]
        csrf = csrf_of((await browser.get("/")).text)
    return Session(cookie, csrf)


async def populate(app: FastAPI) -> World:
    world = World()
    async with app.state.db.session() as session:
        admin = await create_token(session, name="matrix-admin", scope=Scope.ADMIN)
        read = await create_token(session, name="matrix-read", scope=Scope.READ)
        revoked = await create_token(session, name="matrix-revoked", scope=Scope.ADMIN)
        expired = await create_token(
            session,
            name="matrix-expired",
            scope=Scope.ADMIN,
            expires_at=datetime.now(UTC) - timedelta(hours=1),
        )
        assert await revoke_token(session, revoked.id)
    world.audit_actor = f"token:{admin.id}"
    auth = {"Authorization": f"Bearer {admin.value}"}
    async with asgi_client(app) as c:
        made = await c.post("/api/enrollment-tokens", json={"max_uses": 3}, headers=auth)
        assert made.status_code == 201, made.text
        own = await _register(c, made.json()["token"], PLUGIN)
        other = await _register(c, made.json()["token"], OTHER_PLUGIN)
        joined = await c.post(
            "/api/agents/v1/join",
            json=join_body(AGENT_HOST),
            headers={"Authorization": f"Bearer {made.json()['token']}"},
        )
        assert joined.status_code == 201, joined.text
        victim = await c.post("/api/enrollment-tokens", json={"name": "victim"}, headers=auth)
        world.enrollment_id = victim.json()["id"]
        stored = await c.post(
            "/api/credentials",
            json={"kind": "api_token", "name": CREDENTIAL, "token": "matrix-secret"},
            headers=auth,
        )
        assert stored.status_code == 201, stored.text
        login_body = {
            "kind": "server_login",
            "name": "matrix-login",
            "host": "127.0.0.1",
            "port": 9,
            "username": "nobody",
            "password": "matrix-password",
        }
        assert (await c.post("/api/credentials", json=login_body, headers=auth)).status_code == 201
        server = {"name": SERVER, "host": "127.0.0.1", "port": 9, "credential": "matrix-login"}
        added = await c.post("/api/servers", json=server, headers=auth)
        assert added.status_code == 201, added.text
    async with app.state.db.session() as session:
        spare = await issue_plugin_key(
            session, plugin_id=PLUGIN, hostname="spare", enrollment_id=None
        )
    world.victim_key_id = spare.id
    # An agent's host with an open proposal (the host pages and /api/hosts/...).
    await add_agent_host(app.state.db, HOST, with_key=False)
    world.proposal_id = await add_proposal(app.state.db, HOST, "matrix:1", "redis")
    world.bearer = {
        "malformed": "unity_not-a-token",
        "revoked": revoked.value,
        "expired": expired.value,
        "read": read.value,
        "admin": admin.value,
        "own key": own,
        "other key": other,
        "agent key": joined.json()["api_key"],
    }
    world.sessions = {
        "read session": await _session(app, read.value),
        "admin session": await _session(app, admin.value),
    }
    return world
