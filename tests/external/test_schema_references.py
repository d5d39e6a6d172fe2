"""Plugin config schemas are self-contained: the hub never fetches a ``$ref``.

A loopback server that accepts connections and never answers stands in for
an attacker's URL: before schemas were confined, validating a config against
a schema pointing at it froze the whole hub until the connection dropped.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from unity.storage import registry
from unity_sdk import PluginMetadata

API = "/api/plugins/v2"


class SilentServer:
    """Accepts TCP connections on loopback and never writes a byte back.

    Each connection is held open for ``hold`` seconds, then closed, so a
    client without a timeout is stuck exactly that long.
    """

    def __init__(self, hold: float = 8.0) -> None:
        self.hold = hold
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/schema.json"

    def _serve(self) -> None:
        held: list[tuple[socket.socket, float]] = []
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                pass
            else:
                self.connections += 1
                held.append((conn, time.monotonic()))
            for conn, since in [h for h in held if time.monotonic() - h[1] > self.hold]:
                conn.close()
                held.remove((conn, since))
        for conn, _ in held:
            conn.close()

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


def _metadata(plugin_id: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": plugin_id,
        "name": plugin_id,
        "version": "1.0.0",
        "metrics": [{"name": "value"}],
        "config_schema": schema,
    }


async def _register(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, metadata: dict[str, Any]
) -> httpx.Response:
    enrollment = await client.post("/api/enrollment-tokens", json={})
    assert enrollment.status_code == 201, enrollment.text
    return await anon.post(
        f"{API}/register",
        json={"metadata": metadata, "hostname": "nas"},
        headers={"Authorization": f"Bearer {enrollment.json()['token']}"},
    )


async def _store_without_checks(app: FastAPI, plugin_id: str, schema: dict[str, Any]) -> None:
    """A registry row as a hub before this check would have stored it."""
    metadata = PluginMetadata.model_validate(_metadata(plugin_id, schema))
    async with app.state.db.session() as session:
        await registry.sync_plugin(session, metadata=metadata, external=True, enable_if_new=False)


async def _while_polling_healthz(
    anon: httpx.AsyncClient, request: Any
) -> tuple[httpx.Response, float, float]:
    """Run ``request`` while /healthz is polled; its answer, its duration and the
    slowest /healthz answer seen meanwhile."""
    slowest = 0.0
    done = asyncio.Event()

    async def poll() -> None:
        nonlocal slowest
        while not done.is_set():
            start = time.monotonic()
            assert (await anon.get("/healthz")).status_code == 200
            slowest = max(slowest, time.monotonic() - start)
            await asyncio.sleep(0.02)

    poller = asyncio.create_task(poll())
    await asyncio.sleep(0.05)
    start = time.monotonic()
    try:
        response = await request
    finally:
        elapsed = time.monotonic() - start
        done.set()
        await poller
    return response, elapsed, slowest


async def test_registration_refuses_a_remote_reference(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, silent: SilentServer
) -> None:
    schema = {"type": "object", "properties": {"sensor": {"$ref": silent.url}}}
    response, elapsed, slowest = await _while_polling_healthz(
        anon, _register(client, anon, _metadata("remote-ref", schema))
    )
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "/properties/sensor/$ref" in message
    assert silent.url in message
    assert elapsed < 3
    assert slowest < 1
    assert silent.connections == 0
    assert (await client.get(f"{API}/remote-ref")).status_code == 404


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "$ref": "other.json"},
        {"type": "object", "properties": {"a": {"$dynamicRef": "https://example.org/s#x"}}},
        {"type": "object", "$defs": {"x": {"allOf": [{"$ref": "file:///etc/passwd"}]}}},
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
    ],
)
async def test_registration_refuses_references_it_cannot_resolve_itself(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    response = await _register(client, anon, _metadata("odd-ref", schema))
    assert response.status_code == 422, response.text
    assert "$ref" in response.json()["error"]["message"].replace("$dynamicRef", "$ref")


async def test_local_references_still_work(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    schema = {
        "type": "object",
        "$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "properties": {"port": {"$ref": "#/$defs/port"}},
    }
    assert (await _register(client, anon, _metadata("local-ref", schema))).status_code == 201
    good = await client.put(f"{API}/local-ref/config", json={"port": 443})
    assert good.status_code == 200, good.text
    bad = await client.put(f"{API}/local-ref/config", json={"port": 0})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["loc"] == ["port"]


async def test_stored_remote_reference_is_never_fetched(
    app: FastAPI, client: httpx.AsyncClient, anon: httpx.AsyncClient, silent: SilentServer
) -> None:
    schema = {"type": "object", "properties": {"sensor": {"$ref": silent.url}}}
    await _store_without_checks(app, "stored-ref", schema)
    put = client.put(f"{API}/stored-ref/config", json={"sensor": "cpu"})
    response, elapsed, slowest = await _while_polling_healthz(anon, put)
    assert response.status_code == 422, response.text
    assert silent.url in str(response.json()["error"])
    assert elapsed < 3
    assert slowest < 1
    assert silent.connections == 0
    row = await app.state.manager.row("stored-ref")
    assert row.config == {}


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"a": {"$ref": "#/properties/a"}}},
    ],
)
async def test_a_broken_stored_schema_is_422_not_500(
    app: FastAPI, client: httpx.AsyncClient, schema: dict[str, Any]
) -> None:
    await _store_without_checks(app, "broken-ref", schema)
    response = await client.put(f"{API}/broken-ref/config", json={"a": 1})
    assert response.status_code == 422, response.text
    assert "schema" in response.json()["error"]["message"]


def _exponential_schema(depth: int) -> dict[str, Any]:
    """Valid and self-contained, but checking a wrong value takes 2**depth steps."""
    defs: dict[str, Any] = {
        f"l{i}": {"anyOf": [{"$ref": f"#/$defs/l{i + 1}"}, {"$ref": f"#/$defs/l{i + 1}"}]}
        for i in range(depth)
    }
    defs[f"l{depth}"] = {"type": "string"}
    return {"type": "object", "$defs": defs, "properties": {"a": {"$ref": "#/$defs/l0"}}}


async def test_a_slow_foreign_schema_is_cut_off_and_the_hub_keeps_serving(
    app: FastAPI,
    client: httpx.AsyncClient,
    anon: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = app.state.manager.settings
    assert (await _register(client, anon, _metadata("slow", _exponential_schema(13)))).is_success
    # The check of a wrong value takes well over this, even on a fast machine.
    monkeypatch.setattr(settings, "schema_check_seconds", 0.2)
    put = client.put(f"{API}/slow/config", json={"a": 1})
    response, elapsed, slowest = await _while_polling_healthz(anon, put)
    assert response.status_code == 422, response.text
    assert "took longer than 0.2s" in response.json()["error"]["message"]
    assert elapsed < 2
    assert slowest < 0.5
    assert (await app.state.manager.row("slow")).config == {}
