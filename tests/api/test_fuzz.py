"""Property-based fuzzing of the whole API from its own OpenAPI document.

schemathesis generates requests for every operation (valid and invalid ones)
and checks each answer: never a server error, a status code the document
declares, the declared content type, and a body matching the declared schema.
One hub serves the whole run, over ASGI, on its own SQLite database; people's
operations carry an admin token, the external-plugin ones that plugin's key.
Runs are derandomized, so a failure reproduces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis import Case, HookContext
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.python import asgi

from tests.support import sample_plugins
from unity.app import create_app
from unity.auth.tokens import Scope, create_token
from unity.plugins.loader import PluginLoader
from unity.settings import Settings
from unity.storage.db import Database

EXTERNAL_ID = "fuzz-ext"
# Plugins the fuzzer's plugin ids are sometimes mapped to, so it reaches real rows.
KNOWN_PLUGINS = ["counter", "failing", "configured", "json-schema", EXTERNAL_ID]
INGEST = {
    ("POST", "/api/plugins/v2/{plugin_id}/metrics"),
    ("POST", "/api/plugins/v2/{plugin_id}/health"),
}
REGISTER = ("POST", "/api/plugins/v2/register")
JOIN = ("POST", "/api/agents/v1/join")
# Servers and logins the fuzzer creates are reached over SSH by `check` and friends:
# they all point at a closed port on loopback, so no request leaves this machine.
LOOPBACK = {"host": "127.0.0.1", "port": 1}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class FuzzHub:
    """The app under test and the credentials each kind of operation uses."""

    def __init__(self, app: FastAPI, admin: str) -> None:
        self.app = app
        self.admin = admin
        self.enrollment = ""
        self.plugin_key = ""
        self.agent_key = ""


def _plugin_loader() -> PluginLoader:
    plugins = [
        sample_plugins.CounterPlugin,
        sample_plugins.FailingPlugin,
        sample_plugins.ConfiguredPlugin,
        sample_plugins.JsonSchemaPlugin,
    ]
    return PluginLoader(plugins, group="unity.plugins.none-in-tests")


async def _admin_token(database_url: str) -> str:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.session() as session:
            issued = await create_token(session, name="fuzz", scope=Scope.ADMIN)
    finally:
        await db.dispose()
    return issued.value


def _pin_to_loopback(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: LOOPBACK[key] if key in LOOPBACK else _pin_to_loopback(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_pin_to_loopback(item) for item in node]
    return node


# The document is the app's own; building it needs no database, so an app that is
# never started serves it at collection time. Requests go to the session's hub.
_DOCUMENT_APP = create_app(Settings(bootstrap_token=False), loader=_plugin_loader())
schema = schemathesis.openapi.from_dict(_DOCUMENT_APP.openapi())
# Reach the API over ASGI; every call names the session's app (``app=``).
schema.app = _DOCUMENT_APP


@schema.hook
def map_path_parameters(context: HookContext, parameters: dict[str, Any]) -> dict[str, Any]:
    if parameters and "host_id" in parameters and len(str(parameters["host_id"])) % 2 == 0:
        # Half the cases reach the hub's own host (its id is its host name's).
        parameters = {**parameters, "host_id": "fuzz-host"}
    if not parameters or "plugin_id" not in parameters or context.operation is None:
        return parameters
    operation = (context.operation.method.upper(), context.operation.path)
    generated = str(parameters["plugin_id"])
    if operation in INGEST:
        return {**parameters, "plugin_id": EXTERNAL_ID}
    # Half the cases keep the generated id (mostly 404s), half hit a known plugin.
    if len(generated) % 2 == 0:
        known = KNOWN_PLUGINS[sum(map(ord, generated)) % len(KNOWN_PLUGINS)]
        return {**parameters, "plugin_id": known}
    return parameters


@schema.hook
def map_body(context: HookContext, body: Any) -> Any:
    if context.operation is not None and context.operation.path.startswith(
        ("/api/servers", "/api/credentials")
    ):
        return _pin_to_loopback(body)
    return body


@pytest.fixture(scope="session")
def fuzz_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzHub]:
    """One hub (one SQLite database) for the whole test session, started on first use."""
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        data_dir=data_dir,
        database_url=f"sqlite+aiosqlite:///{data_dir / 'unity.db'}",
        hostname="fuzz-host",
        autoenable=[],
        bootstrap_token=False,
        scheduler_jitter=0.0,
        ssh_connect_timeout=2,
    )
    hub = FuzzHub(
        create_app(config, loader=_plugin_loader()),
        asyncio.run(_admin_token(config.effective_database_url)),
    )
    admin = {"Authorization": f"Bearer {hub.admin}"}
    with asgi.get_client(hub.app) as http:
        enrollment = http.post("/api/enrollment-tokens", json={"max_uses": None}, headers=admin)
        assert enrollment.status_code == 201, enrollment.text
        hub.enrollment = enrollment.json()["token"]
        metadata = {
            "id": EXTERNAL_ID,
            "name": "Fuzz",
            "version": "1.0.0",
            "metrics": [{"name": "value"}],
        }
        registered = http.post(
            "/api/plugins/v2/register",
            json={"metadata": metadata, "hostname": "fuzz"},
            headers={"Authorization": f"Bearer {hub.enrollment}"},
        )
        assert registered.status_code == 201, registered.text
        hub.plugin_key = registered.json()["api_key"]
        joined = http.post(
            "/api/agents/v1/join",
            json={"platform": {"hostname": "fuzz-agent"}},
            headers={"Authorization": f"Bearer {hub.enrollment}"},
        )
        assert joined.status_code == 201, joined.text
        hub.agent_key = joined.json()["api_key"]
    yield hub
    asgi.shutdown_lifespans()


@schema.parametrize()
@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_answers_every_generated_request_as_documented(
    case: Case, fuzz_hub: FuzzHub
) -> None:
    operation = (case.method.upper(), case.path)
    if operation in INGEST:
        token = fuzz_hub.plugin_key
    elif operation in (REGISTER, JOIN):
        token = fuzz_hub.enrollment
    elif case.path.startswith("/api/agents/"):
        token = fuzz_hub.agent_key
    else:
        token = fuzz_hub.admin
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"}, checks=CHECKS, app=fuzz_hub.app
    )
