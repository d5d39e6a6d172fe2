"""The ``ollama`` plugin against a real HTTP server on 127.0.0.1 serving recorded Ollama answers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from pydantic import ValidationError
from services_support import FIXTURES, check_class, collect_checked, free_port, make, serve_http
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from unity_catalogue.ollama import OllamaPlugin
from unity_sdk import CollectionError, HealthState, PluginAuthError, PluginNotReadyError

RECORDED = FIXTURES / "ollama"
GB = 10**9


@dataclass
class Server:
    """What the recorded Ollama answers with; tests swap files or force a status."""

    url: str = ""
    files: dict[str, str] = field(
        default_factory=lambda: {
            "/api/version": "version.json",
            "/api/tags": "tags.json",
            "/api/ps": "ps.json",
        }
    )
    status: int = 200
    requests: list[str] = field(default_factory=list)


def ollama_app(server: Server) -> Starlette:
    async def answer(request: Request) -> Response:
        server.requests.append(request.url.path)
        if server.status != 200:
            return PlainTextResponse("Unauthorized", status_code=server.status)
        name = server.files.get(request.url.path)
        if name is None:
            return PlainTextResponse("404 page not found", status_code=404)
        return JSONResponse(json.loads((RECORDED / name).read_text()))

    return Starlette(routes=[Route("/api/{endpoint}", answer)])


@pytest.fixture
async def ollama() -> AsyncIterator[Server]:
    server = Server()
    async with serve_http(ollama_app(server)) as url:
        server.url = url
        yield server


def test_metadata() -> None:
    metadata = check_class(OllamaPlugin, "ollama", "ai_ml")
    assert not metadata.supports_remote
    assert make(OllamaPlugin).config.url == "http://127.0.0.1:11434"
    with pytest.raises(ValidationError):
        make(OllamaPlugin, url="127.0.0.1:11434")


async def test_models_and_the_loaded_one(ollama: Server) -> None:
    plugin = make(OllamaPlugin, url=ollama.url)
    document = await collect_checked(plugin)
    assert ollama.requests == ["/api/version", "/api/tags", "/api/ps"]
    assert document["up"] == 1
    assert document["version"] == "0.11.4"
    assert document["models"] == {"count": 3, "size": 4683087332 + 4920753328 + 274302450}
    assert document["installed"]["llama3.1:8b"] == {
        "size": 4920753328,
        "family": "llama",
        "parameter_size": "8.0B",
        "quantization": "Q4_K_M",
        "modified_at": datetime.fromisoformat("2025-07-28T21:04:52.118403+02:00").timestamp(),
    }
    assert document["installed"]["qwen2.5-coder:7b"]["parameter_size"] == "7.6B"
    assert document["loaded"] == {"count": 1, "size": 5957935104, "size_vram": 5957935104}
    assert document["running"] == {
        "llama3.1:8b": {
            "size": 5957935104,
            "size_vram": 5957935104,
            "vram_percent": 100.0,
            "expires_at": datetime.fromisoformat("2025-08-03T10:37:45.012345+02:00").timestamp(),
            "context_length": 4096,
        }
    }
    health = await plugin.health_check()
    assert health.status is HealthState.HEALTHY
    assert health.message == "Ollama 0.11.4"


async def test_partly_offloaded_and_idle(ollama: Server) -> None:
    ollama.files["/api/ps"] = "ps-partial-offload.json"
    document = await collect_checked(make(OllamaPlugin, url=ollama.url))
    assert document["running"]["qwen2.5-coder:7b"]["vram_percent"] == 60.0
    assert document["loaded"]["size"] - document["loaded"]["size_vram"] > 2 * GB
    ollama.files["/api/ps"] = "ps-empty.json"
    document = await collect_checked(make(OllamaPlugin, url=ollama.url))
    assert document["loaded"] == {"count": 0, "size": 0, "size_vram": 0}
    assert document["running"] == {}


async def test_not_reachable() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    plugin = make(OllamaPlugin, url=url)
    with pytest.raises(PluginNotReadyError, match=rf"Ollama at {url}/? is not reachable"):
        await plugin.collect_data()
    health = await plugin.health_check()
    assert health.status is HealthState.UNHEALTHY
    assert "is not reachable" in health.message


async def test_proxy_refuses(ollama: Server) -> None:
    ollama.status = 401
    plugin = make(OllamaPlugin, url=ollama.url)
    with pytest.raises(PluginAuthError, match="HTTP 401"):
        await plugin.collect_data()
    assert (await plugin.health_check()).status is HealthState.UNHEALTHY


async def test_not_an_ollama_server(ollama: Server) -> None:
    ollama.files.pop("/api/tags")
    with pytest.raises(CollectionError, match="api/tags answered HTTP 404"):
        await make(OllamaPlugin, url=ollama.url).collect_data()
