"""The OpenAPI document at ``/openapi.json`` and the docs page at ``/docs``."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute

from unity.api.routes import plugins

# SPEC section 8, as far as routes/plugins.py implements it.
SPEC_ROUTES = {
    ("get", "/api/plugins/v2"),
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
