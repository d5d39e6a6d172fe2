"""The OpenAPI document: FastAPI's, plus the error answers every operation can give.

FastAPI documents only the success answer and its own 422 shape
(``{"detail": [...]}``), which is not what the hub sends. Here every
operation gets the errors it can return, each with the one ``Error``
envelope of :mod:`unity.api.errors`, and request bodies documented by hand
(``openapi_extra``) have their ``$defs`` moved into ``components`` so each
``$ref`` resolves inside the document. Schema-driven clients and fuzzers
rely on both.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["ERROR_SCHEMA", "install_openapi"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "description": "Every failure: a stable code, a message for people, and optional details "
    "(for validation errors one `{loc, msg}` per problem).",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "examples": ["invalid"]},
                "message": {"type": "string"},
                "details": {"description": "Problems in detail; shape depends on the error"},
            },
        }
    },
}

_DESCRIPTIONS = {
    "400": "Malformed request (a NUL in the URL, a cursor this hub did not issue)",
    "401": "Missing, invalid, expired or revoked credential",
    "403": "The credential may not do this",
    "404": "No such resource (named in the path or the body)",
    "409": "Conflicts with the resource's current state",
    "413": "Request body too large",
    "422": "Request is not valid; details name each problem",
    "429": "Too many requests; retry after the Retry-After header",
    "502": "A server or service the hub talked to for this request failed",
    "503": "The hub cannot serve this now (database unavailable or busy, store locked)",
}
# Routes that reach the credentials store or a server over SSH may fail upstream.
_UPSTREAM_PREFIXES = (
    "/api/servers",
    # A credential referenced in a plugin's config is looked up in the store.
    "/api/hosts/{host_id}/plugins",
    "/api/hosts/{host_id}/proposals/{proposal_id}/accept",
    "/api/credentials",
    "/api/plugins/v2/{plugin_id}/config",
    "/api/alerts/channels",
)
_UNUSED_FASTAPI_SCHEMAS = ("HTTPValidationError", "ValidationError")


def _error_statuses(path: str, method: str, operation: dict[str, Any]) -> list[str]:
    statuses = ["400", "422", "429", "503"]
    if operation.get("security"):
        statuses += ["401", "403"]
    # A path names a resource; a body may name others (a server's credential).
    if "{" in path or "requestBody" in operation:
        statuses.append("404")
    if method != "get":
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("413")
    if path.startswith(_UPSTREAM_PREFIXES):
        statuses.append("502")
    return sorted(statuses)


def _rewrite_refs(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {
            k: (
                v.replace(old, new, 1)
                if k == "$ref" and isinstance(v, str)
                else _rewrite_refs(v, old, new)
            )
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item, old, new) for item in node]
    return node


def _hoist_defs(operation: dict[str, Any], components: dict[str, Any]) -> None:
    """Move a hand-documented body's ``$defs`` into ``components/schemas``."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema")
        if not isinstance(schema, dict) or "$defs" not in schema:
            continue
        definitions = schema.pop("$defs")
        media["schema"] = _rewrite_refs(schema, "#/$defs/", "#/components/schemas/")
        for name, definition in definitions.items():
            components.setdefault(
                name, _rewrite_refs(definition, "#/$defs/", "#/components/schemas/")
            )


def build_document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
        separate_input_output_schemas=app.separate_input_output_schemas,
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            _hoist_defs(operation, components)
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation):
                responses[status] = {"description": _DESCRIPTIONS[status], "content": error_ref}
    for name in _UNUSED_FASTAPI_SCHEMAS:
        components.pop(name, None)
    return document


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_document` (built once) as the app's OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
