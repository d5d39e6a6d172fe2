"""Reading JSON bodies by hand, after authentication.

FastAPI parses a declared body before any dependency runs, so an anonymous
caller with a malformed body would learn about the body instead of getting
401. Routes that must refuse strangers first take ``Request`` and call
:func:`read_json` after their auth dependency; ``openapi_extra`` keeps the
body in the API docs.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Depends, Request
from pydantic import BaseModel, TypeAdapter, ValidationError

from unity.api.errors import ApiError
from unity_sdk import error_details

__all__ = [
    "body_schema",
    "json_body",
    "merge_patch",
    "parse_body",
    "parse_json",
    "read_body",
    "read_json",
]

M = TypeVar("M", bound=BaseModel)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _keep_constant(name: str) -> float:
    return float(name)


async def read_body(request: Request, limit: int | None = None) -> bytes:
    """The raw body: 413 past ``limit`` bytes (default: the ``max_body_bytes`` setting)."""
    if limit is None:
        limit = int(request.app.state.settings.max_body_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body is larger than {limit} bytes")
    return bytes(body)


def parse_json(body: bytes | str, *, model_checks_numbers: bool = False) -> Any:
    """``body`` as JSON; 422 when it is not strict JSON.

    ``NaN`` and ``Infinity`` are refused here unless ``model_checks_numbers``:
    then the wire model refuses them with the field that holds them
    (:func:`unity_sdk.number_problems`)."""
    try:
        constant = _keep_constant if model_checks_numbers else _reject_constant
        return json.loads(body, parse_constant=constant)
    except ValueError as exc:
        raise ApiError(422, f"body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise ApiError(422, "body is nested too deeply") from exc


async def read_json(
    request: Request, limit: int | None = None, *, model_checks_numbers: bool = False
) -> Any:
    """The body as JSON: 413 past ``limit`` bytes (default: the ``max_body_bytes``
    setting), 422 when it is not strict JSON (see :func:`parse_json`)."""
    body = await read_body(request, limit)
    return parse_json(body, model_checks_numbers=model_checks_numbers)


def parse_body(model: type[M] | TypeAdapter[M], raw: Any) -> M:
    """``raw`` validated as ``model`` (a model class, or a ``TypeAdapter`` for a
    union); 422 with one entry per problem otherwise."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(raw)
        return model.model_validate(raw)
    except ValidationError as exc:
        details = error_details(exc)
        raise ApiError(422, "request body is not valid", details=details) from exc


def json_body(model: type[M], *, optional: bool = False) -> Any:
    """A dependency reading ``model`` from the JSON body by hand.

    Declare it after the route's auth dependency (FastAPI solves dependencies
    in order), so a stranger's body is never parsed; document the body with
    ``openapi_extra=body_schema(...)``. ``optional``: an empty body is ``None``.
    """

    async def read(request: Request) -> M | None:
        if optional and not await request.body():
            return None
        return parse_body(model, await read_json(request))

    return Depends(read)


def body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body read by hand."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def merge_patch(target: Any, patch: Any) -> Any:
    """``patch`` applied to ``target`` as a JSON Merge Patch (RFC 7396).

    Objects merge key by key, ``null`` removes a key, anything else replaces.
    """
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged
