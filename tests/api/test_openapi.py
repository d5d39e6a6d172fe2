"""The OpenAPI document at ``/openapi.json`` and the docs page at ``/docs``."""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import httpx
import jsonschema
from fastapi.routing import APIRoute
from openapi_spec_validator import validate

from unity.api.routes import plugins
from unity_sdk import HealthState, PluginState, RunStatus

# SPEC section 8, as far as routes/plugins.py implements it.
SPEC_ROUTES = {
    ("get", "/api/plugins/v2"),
    ("post", "/api/plugins/v2/rescan"),
    ("get", "/api/plugins/v2/{plugin_id}"),
    ("post", "/api/plugins/v2/{plugin_id}/enable"),
    ("post", "/api/plugins/v2/{plugin_id}/disable"),
    ("post", "/api/plugins/v2/{plugin_id}/execute"),
    ("get", "/api/plugins/v2/{plugin_id}/config"),
    ("put", "/api/plugins/v2/{plugin_id}/config"),
    ("patch", "/api/plugins/v2/{plugin_id}/config"),
    ("get", "/api/plugins/v2/{plugin_id}/health"),
    ("get", "/api/plugins/v2/{plugin_id}/metrics"),
    ("get", "/api/plugins/v2/{plugin_id}/executions"),
    ("get", "/api/plugins/v2/{plugin_id}/events"),
}


async def test_openapi_lists_every_route_of_the_plugins_api(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Unity"
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    assert documented >= SPEC_ROUTES
    implemented = {
        (method.lower(), route.path)
        for route in plugins.router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }
    assert implemented == SPEC_ROUTES
    assert ("get", "/metrics") in documented
    assert ("get", "/healthz") in documented


async def test_route_docstrings_and_parameters_are_documented(anon: httpx.AsyncClient) -> None:
    paths = (await anon.get("/openapi.json")).json()["paths"]
    for path, ops in paths.items():
        if not path.startswith("/api/plugins/v2"):
            continue
        for method, operation in ops.items():
            if (method, path) in SPEC_ROUTES:
                assert operation.get("description"), (method, path)
    listing = {p["name"] for p in paths["/api/plugins/v2"]["get"]["parameters"]}
    assert {"category", "enabled", "external", "limit", "cursor"} <= listing
    metrics = {p["name"] for p in paths["/api/plugins/v2/{plugin_id}/metrics"]["get"]["parameters"]}
    assert {"start", "end", "host", "limit", "cursor", "field", "step"} <= metrics
    put = paths["/api/plugins/v2/{plugin_id}/config"]["put"]
    assert "application/json" in put["requestBody"]["content"]
    assert "422" in put["responses"]


async def test_bearer_auth_is_declared(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    operation = document["paths"]["/api/plugins/v2"]["get"]
    assert operation.get("security")


async def test_docs_page_is_served(anon: httpx.AsyncClient) -> None:
    response = await anon.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict), f"{ref} does not resolve"
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


async def test_every_reference_in_the_document_resolves(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    refs = set(_refs(document))
    assert "#/components/schemas/Sample" in refs
    for ref in refs:
        _resolve(document, ref)


async def test_the_document_is_valid_openapi_3_1(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_every_operation_declares_its_errors_with_the_error_envelope(
    anon: httpx.AsyncClient,
) -> None:
    document = (await anon.get("/openapi.json")).json()
    envelope = _resolve(document, "#/components/schemas/Error")
    assert envelope["required"] == ["error"]
    assert envelope["properties"]["error"]["required"] == ["code", "message"]
    operations = [
        (method, path, operation)
        for path, ops in document["paths"].items()
        for method, operation in ops.items()
    ]
    assert len(operations) >= 36
    for method, path, operation in operations:
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        assert {"422", "503"} <= set(errors), (method, path, sorted(errors))
        if operation.get("security"):
            assert {"401", "403"} <= set(errors), (method, path)
        if "{" in path:
            assert "404" in errors, (method, path)
        if "requestBody" in operation:
            assert "413" in errors, (method, path)
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


async def test_error_answers_match_the_declared_envelope(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    envelope = _resolve(document, "#/components/schemas/Error")
    for response in (
        await client.get("/api/plugins/v2/nope"),
        await client.get("/api/plugins/v2", params={"limit": 0}),
        await client.get("/api/plugins/v2/counter/metrics", params={"cursor": "x"}),
    ):
        assert response.status_code in {400, 404, 422}
        jsonschema.validate(response.json(), envelope)


async def test_states_and_outcomes_are_documented_as_their_enums(anon: httpx.AsyncClient) -> None:
    document = (await anon.get("/openapi.json")).json()
    schemas = document["components"]["schemas"]
    fields: list[tuple[str, str, type[StrEnum]]] = [
        ("PluginSummary", "state", PluginState),
        ("HealthOut", "status", HealthState),
        ("ExecutionOut", "status", RunStatus),
        ("RunResultOut", "status", RunStatus),
    ]
    for model, name, enum in fields:
        assert schemas[enum.__name__]["enum"] == [member.value for member in enum]
        assert schemas[model]["properties"][name]["$ref"] == f"#/components/schemas/{enum.__name__}"
    history = document["paths"]["/api/plugins/v2/{plugin_id}/executions"]["get"]["parameters"]
    status = next(p for p in history if p["name"] == "status")
    assert all(outcome in status["description"] for outcome in RunStatus)
