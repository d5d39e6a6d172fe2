"""Body limits over ASGI: size from Content-Length and while streaming, and time.

The end-to-end tests (``tests/e2e/test_request_limits.py``) show the same against a
real ``unity serve``, with its memory measured; these cover each route kind
and the deadline quickly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.api.helpers import API, error_of
from unity.settings import Settings

LIMIT = 4096
BODY_TIMEOUT = 1.0


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=database_url,
        autoenable=[],
        bootstrap_token=False,
        max_body_bytes=LIMIT,
        max_batch_bytes=4 * LIMIT,
        body_timeout=BODY_TIMEOUT,
    )


ROUTES = [
    ("PUT", f"{API}/counter/config"),
    ("POST", "/api/credentials"),
    ("POST", f"{API}/register"),
    ("POST", f"{API}/some-plugin/health"),
    ("POST", "/login"),
]


def assert_too_large(response: httpx.Response, where: str) -> None:
    error = error_of(response, 413)
    assert error["code"] == "payload_too_large", where
    assert response.headers["connection"] == "close", where


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_an_announced_body_over_the_limit_is_413(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, method: str, path: str
) -> None:
    for caller in (client, anon):
        response = await caller.request(method, path, content=b"x" * (LIMIT + 1))
        assert_too_large(response, f"{method} {path}")


# /health is left out: it checks the plugin key before it reads a byte (see below).
@pytest.mark.parametrize(("method", "path"), [r for r in ROUTES if not r[1].endswith("/health")])
async def test_a_streamed_body_over_the_limit_is_413(
    client: httpx.AsyncClient, method: str, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    kind = "application/x-www-form-urlencoded" if path == "/login" else "application/json"
    response = await client.request(method, path, content=chunks(), headers={"content-type": kind})
    assert_too_large(response, f"{method} {path}")


async def test_batches_have_their_own_limit(client: httpx.AsyncClient) -> None:
    # Past the general limit but within the batch limit: read, then refused for its content.
    within = await client.post(f"{API}/some-plugin/metrics", content=b"x" * (2 * LIMIT))
    assert within.status_code == 403
    assert_too_large(
        await client.post(f"{API}/some-plugin/metrics", content=b"x" * (4 * LIMIT + 1)), "batch"
    )


async def test_a_body_that_never_arrives_is_408_after_the_deadline(
    app: FastAPI, admin_token: str
) -> None:
    sent: list[dict[str, Any]] = []
    first = True

    async def receive() -> dict[str, Any]:
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b'{"note": ', "more_body": True}
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PUT",
        "scheme": "http",
        "path": f"{API}/counter/config",
        "raw_path": f"{API}/counter/config".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"hub"),
            (b"authorization", f"Bearer {admin_token}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8765),
    }
    started = time.monotonic()
    await asyncio.wait_for(app(scope, receive, send), 10)
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 3
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b'"request_timeout"' in sent[1]["body"]
