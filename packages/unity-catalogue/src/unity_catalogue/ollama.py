"""The ``ollama`` built-in plugin: an Ollama model server's version, models and memory.

Reads the Ollama HTTP API (tested with recorded answers of Ollama 0.11):
``GET /api/version``, ``GET /api/tags`` (installed models with size, family,
parameter size and quantization) and ``GET /api/ps`` (models loaded in memory
with their total and VRAM size, context length and when they unload).
An unreachable server raises :class:`PluginNotReadyError` and makes the health
check unhealthy.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from unity_sdk import (
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricDisplay,
    MetricField,
    MetricKind,
    PluginAuthError,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    PluginNotReadyError,
    Proposal,
    Requirements,
)

from ._proposing import service_proposals

if TYPE_CHECKING:
    import httpx

__all__ = ["OllamaConfig", "OllamaPlugin"]

_INFO = MetricKind.INFO

_METRICS = [
    MetricField(
        name="up",
        unit="count",
        display=MetricDisplay.STATE,
        description="1 when the server answered",
    ),
    MetricField(name="version", kind=_INFO, description="Ollama version"),
    MetricField(name="models.count", unit="count", description="Models installed"),
    MetricField(name="models.size", unit="bytes", description="Disk size of all installed models"),
    MetricField(name="loaded.count", unit="count", description="Models loaded in memory"),
    MetricField(name="loaded.size", unit="bytes", description="Memory of all loaded models"),
    MetricField(
        name="loaded.size_vram", unit="bytes", description="GPU memory of all loaded models"
    ),
    MetricField(name="installed.*.size", unit="bytes", description="Disk size of a model"),
    MetricField(name="installed.*.family", kind=_INFO, description="Model family (llama, qwen2)"),
    MetricField(
        name="installed.*.parameter_size", kind=_INFO, description="Parameters (8.0B, 7.6B)"
    ),
    MetricField(
        name="installed.*.quantization", kind=_INFO, description="Quantization (Q4_K_M, F16)"
    ),
    MetricField(
        name="installed.*.modified_at", unit="s", description="When the model was pulled or changed"
    ),
    MetricField(name="running.*.size", unit="bytes", description="Memory of a loaded model"),
    MetricField(
        name="running.*.size_vram", unit="bytes", description="GPU memory of a loaded model"
    ),
    MetricField(
        name="running.*.vram_percent",
        unit="%",
        description="Share of a loaded model in GPU memory (100 is all on the GPU)",
    ),
    MetricField(name="running.*.expires_at", unit="s", description="When Ollama unloads the model"),
    MetricField(
        name="running.*.context_length",
        unit="tokens",
        description="Context window it was loaded with (Ollama 0.9+)",
    ),
]


class OllamaConfig(BaseModel):
    """Config of the ``ollama`` plugin."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        default="http://127.0.0.1:11434",
        pattern=r"^https?://",
        description="Base URL of the Ollama server.",
    )
    timeout: float = Field(default=5.0, gt=0, le=60, description="Seconds to wait per request.")


class OllamaPlugin(PluginBase[OllamaConfig]):
    """Reports whether an Ollama server answers, what it has installed and what is loaded."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="ollama",
            name="Ollama",
            version="1.0.0",
            description="Ollama model server: reachability, version, installed models and "
            "the memory and VRAM of loaded models, from its HTTP API.",
            author="Unity developers",
            category=PluginCategory.AI_ML,
            tags=["ollama", "llm", "ai", "models", "gpu"],
            config_schema=OllamaConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["httpx"]),
            default_interval=60,
            timeout=30,
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """An Ollama server on its port, 11434 (its model runners listen elsewhere: not those)."""
        return service_proposals(
            cls,
            facts,
            service="Ollama",
            ports=[11434],
            config=lambda socket: {"url": socket.url(path="")},
        )

    async def collect_data(self) -> dict[str, Any]:
        # httpx is imported where it is used: a hub that never runs this plugin never loads it.
        import httpx

        cfg = self.config
        async with httpx.AsyncClient(base_url=cfg.url, timeout=cfg.timeout) as client:
            version = await _get(client, "/api/version")
            tags = await _get(client, "/api/tags")
            ps = await _get(client, "/api/ps")
        installed = {
            str(m["name"]): _installed(m) for m in _models(tags) if m.get("name") is not None
        }
        running = {str(m["name"]): _running(m) for m in _models(ps) if m.get("name") is not None}
        return {
            "up": 1,
            "version": str(version.get("version", "")),
            "models": {
                "count": len(installed),
                "size": sum(m.get("size", 0) for m in installed.values()),
            },
            "loaded": {
                "count": len(running),
                "size": sum(m["size"] for m in running.values()),
                "size_vram": sum(m["size_vram"] for m in running.values()),
            },
            "installed": installed,
            "running": running,
        }

    async def health_check(self) -> HealthStatus:
        import httpx

        cfg = self.config
        try:
            async with httpx.AsyncClient(base_url=cfg.url, timeout=cfg.timeout) as client:
                version = await _get(client, "/api/version")
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return HealthStatus.healthy(f"Ollama {version.get('version', '?')}")


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    import httpx

    url = f"{client.base_url}{path.lstrip('/')}"
    try:
        response = await client.get(path)
    except httpx.TimeoutException as exc:
        raise PluginNotReadyError(f"Ollama did not answer {url} in time") from exc
    except httpx.TransportError as exc:
        raise PluginNotReadyError(f"Ollama at {client.base_url} is not reachable: {exc}") from exc
    if response.status_code in (401, 403):
        raise PluginAuthError(f"{url} refused the request (HTTP {response.status_code})")
    if response.status_code >= 400:
        raise CollectionError(
            f"{url} answered HTTP {response.status_code}: {response.text.strip()[:200]}"
        )
    try:
        body = response.json()
    except ValueError as exc:
        raise CollectionError(f"{url} did not answer JSON: is this an Ollama server?") from exc
    if not isinstance(body, dict):
        raise CollectionError(f"{url} answered JSON that is not an object")
    return body


def _models(body: dict[str, Any]) -> list[dict[str, Any]]:
    models = body.get("models") or []
    return [m for m in models if isinstance(m, dict)] if isinstance(models, list) else []


def _unix(value: Any) -> float | None:
    """Unix time of Ollama's RFC 3339 timestamps (nanoseconds and offsets included)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Python 3.11 parses at most microseconds: cut the fraction to 6 digits.
    head, dot, rest = text.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = f"{head}.{rest[: min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _size(model: dict[str, Any], key: str) -> int:
    value = model.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _installed(model: dict[str, Any]) -> dict[str, Any]:
    raw = model.get("details")
    details: dict[str, Any] = raw if isinstance(raw, dict) else {}
    entry: dict[str, Any] = {"size": _size(model, "size")}
    for key, name in (
        ("family", "family"),
        ("parameter_size", "parameter_size"),
        ("quantization_level", "quantization"),
    ):
        if details.get(key):
            entry[name] = str(details[key])
    modified = _unix(model.get("modified_at"))
    if modified is not None:
        entry["modified_at"] = modified
    return entry


def _running(model: dict[str, Any]) -> dict[str, Any]:
    size = _size(model, "size")
    vram = _size(model, "size_vram")
    entry: dict[str, Any] = {
        "size": size,
        "size_vram": vram,
        "vram_percent": round(vram / size * 100, 1) if size else 0.0,
    }
    expires = _unix(model.get("expires_at"))
    if expires is not None:
        entry["expires_at"] = expires
    if _size(model, "context_length"):
        entry["context_length"] = _size(model, "context_length")
    return entry
