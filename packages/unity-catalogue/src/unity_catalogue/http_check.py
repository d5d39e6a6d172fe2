"""The ``http-check`` built-in plugin: is each configured HTTP(S) endpoint up?

For every endpoint it sends one GET or HEAD request with httpx (HTTP/1.1) and
reports whether the answer came, its status code, the time to the full answer,
whether the body holds the expected text, and whether the TLS certificate was
verified. A failing endpoint is data, not an error: the document says why
(timeout, refused, TLS verification failed, wrong status, content missing) and
``assess`` turns degraded while some endpoints are down, unhealthy while all are.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from unity_sdk import (
    AlertRule,
    CollectionError,
    HealthStatus,
    HostFacts,
    MetricField,
    MetricKind,
    PluginBase,
    PluginCategory,
    PluginError,
    PluginMetadata,
    Proposal,
    Requirements,
)

from ._proposing import propose, seen

if TYPE_CHECKING:
    import httpx

__all__ = ["Endpoint", "HttpCheckConfig", "HttpCheckPlugin"]

# Enough of a page to find a marker in it; a huge download must not stall the check.
MAX_BODY_BYTES = 1024 * 1024
# Discovery proposes a check for a listener on the ports web apps commonly
# use (Grafana 3000, Home Assistant 8123, Prometheus 9090...), not for every
# open port: most of those do not speak HTTP.
_HTTP_PORTS = (80, 3000, 5000, 8000, 8008, 8080, 8081, 8088, 8123, 8888, 9000, 9090)
# ...and not for the FastCGI of PHP, which squats on 9000.
_NOT_HTTP = ("php-fpm",)
# A discovered app is up when it answers at all: a redirect to its login page
# or a refusal to strangers counts.
_UP_STATUSES = [200, 204, 301, 302, 303, 307, 308, 401, 403]

_METRICS = [
    MetricField(name="endpoints_up", unit="count", description="Endpoints that are up"),
    MetricField(name="endpoints_down", unit="count", description="Endpoints that are down"),
    MetricField(
        name="endpoints.*.up",
        unit="bool",
        description="1 when the endpoint answered with an expected status (and the "
        "expected content), else 0",
    ),
    MetricField(
        name="endpoints.*.status_code",
        unit="code",
        description="HTTP status code of the answer (absent when none came)",
    ),
    MetricField(
        name="endpoints.*.latency_ms",
        unit="ms",
        description="Time from sending the request to the end of the answer read",
    ),
    MetricField(
        name="endpoints.*.content_matched",
        unit="bool",
        description="1 when the body contains the configured text, else 0 (only with contains)",
    ),
    MetricField(
        name="endpoints.*.tls_verified",
        unit="bool",
        description="1 when the certificate was verified, 0 when verification failed or is "
        "switched off (https only)",
    ),
    MetricField(name="endpoints.*.url", kind=MetricKind.INFO, description="The URL checked"),
    MetricField(
        name="endpoints.*.error",
        kind=MetricKind.INFO,
        description="Why the endpoint is down (absent when it is up)",
    ),
]


class Endpoint(BaseModel):
    """One URL to check."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Name shown in the metrics.")
    url: AnyHttpUrl = Field(description="http:// or https:// URL to request.")
    method: Literal["GET", "HEAD"] = Field(default="GET", description="HTTP method.")
    expected_status: list[int] = Field(
        default_factory=lambda: [200],
        min_length=1,
        description="Status codes that count as up.",
    )
    contains: str | None = Field(
        default=None,
        min_length=1,
        description="Text the body must contain to count as up (GET only).",
    )
    timeout: float = Field(default=10.0, gt=0, le=120, description="Seconds to wait in all.")
    verify_tls: bool = Field(default=True, description="Verify the server's TLS certificate.")
    follow_redirects: bool = Field(
        default=False, description="Follow redirects and judge the final answer."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Extra request headers. Stored and shown in plain text: no credentials.",
    )

    @field_validator("expected_status")
    @classmethod
    def _status_codes(cls, value: list[int]) -> list[int]:
        bad = [code for code in value if not 100 <= code <= 599]
        if bad:
            raise ValueError(f"not HTTP status codes: {bad}")
        return value


class HttpCheckConfig(BaseModel):
    """Config of the ``http-check`` plugin."""

    model_config = ConfigDict(extra="forbid")

    endpoints: list[Endpoint] = Field(
        default_factory=list, description="The endpoints to check, each with a unique name."
    )
    ca_bundle: str | None = Field(
        default=None,
        description="PEM file of CA certificates to trust instead of the system store "
        "(for endpoints with verify_tls).",
    )

    @field_validator("endpoints")
    @classmethod
    def _unique_names(cls, value: list[Endpoint]) -> list[Endpoint]:
        names = [endpoint.name for endpoint in value]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"endpoint names used twice: {', '.join(duplicates)}")
        return value


class HttpCheckPlugin(PluginBase[HttpCheckConfig]):
    """Checks that web services answer, answer fast and answer the right thing."""

    def get_metadata(self) -> PluginMetadata:
        return PluginMetadata(
            id="http-check",
            name="HTTP check",
            version="1.0.0",
            description="Status, latency, content match and TLS verification of HTTP(S) endpoints.",
            author="Unity developers",
            category=PluginCategory.APPLICATION,
            tags=["http", "https", "uptime", "latency", "web"],
            config_schema=HttpCheckConfig,
            metrics=_METRICS,
            requires=Requirements(packages=["httpx"]),
            default_interval=60,
            timeout=130,
            alert_rules=[
                AlertRule(
                    id="endpoint-down",
                    metric="endpoints.*.up",
                    op="==",
                    threshold=0,
                    for_seconds=60,
                    severity="critical",
                    summary="{item} is down (two checks in a row)",
                ),
            ],
        )

    @classmethod
    def discover(cls, facts: HostFacts) -> list[Proposal]:
        """Web servers on the ports web apps commonly use (not every open port)."""
        return [
            propose(
                cls,
                what=str(socket.port),
                title=f"HTTP on port {socket.port}"
                + (f" ({socket.process})" if socket.process else ""),
                reason=f"{seen(socket)}. Up means it answers (a login redirect counts).",
                config={
                    "endpoints": [
                        {
                            "name": _endpoint_name(socket.process or "http", socket.port),
                            "url": socket.url(),
                            "expected_status": _UP_STATUSES,
                        }
                    ]
                },
            )
            for socket in facts.listening(ports=_HTTP_PORTS)
            if not socket.process.startswith(_NOT_HTTP)
        ]

    async def collect_data(self) -> dict[str, Any]:
        # httpx is imported where it is used: a hub that never runs this plugin never loads it.
        import httpx

        cfg = self.config
        verified = _tls_context(cfg.ca_bundle)
        async with (
            httpx.AsyncClient(verify=verified) as checked,
            httpx.AsyncClient(verify=False) as unchecked,
        ):
            results = await asyncio.gather(
                *(
                    _check(checked if endpoint.verify_tls else unchecked, endpoint)
                    for endpoint in cfg.endpoints
                )
            )
        endpoints = {
            endpoint.name: result for endpoint, result in zip(cfg.endpoints, results, strict=True)
        }
        up = sum(result["up"] for result in endpoints.values())
        return {"endpoints_up": up, "endpoints_down": len(endpoints) - up, "endpoints": endpoints}

    async def health_check(self) -> HealthStatus:
        try:
            document = await self.collect_data()
        except PluginError as exc:
            return HealthStatus.unhealthy(str(exc))
        return self.assess(document)

    def assess(self, document: dict[str, Any]) -> HealthStatus:
        """Some endpoints down: degraded; every one down: unhealthy."""
        endpoints: dict[str, dict[str, Any]] = document["endpoints"]
        if not endpoints:
            return HealthStatus.not_applicable("no endpoints configured")
        down = {name: result["error"] for name, result in endpoints.items() if not result["up"]}
        if not down:
            return HealthStatus.healthy(f"{len(endpoints)} endpoint(s) up")
        listing = "; ".join(f"{name}: {error}" for name, error in down.items())
        if len(down) == len(endpoints):
            return HealthStatus.unhealthy(
                f"all {len(endpoints)} endpoint(s) down: {listing}", endpoints=down
            )
        return HealthStatus.degraded(
            f"{len(down)} of {len(endpoints)} endpoint(s) down: {listing}", endpoints=down
        )


def _tls_context(ca_bundle: str | None) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise CollectionError(f"cannot load the CA bundle {ca_bundle}: {exc}") from exc


async def _check(client: httpx.AsyncClient, endpoint: Endpoint) -> dict[str, Any]:
    import httpx

    url = str(endpoint.url)
    result: dict[str, Any] = {"url": url}
    https = endpoint.url.scheme == "https"
    started = time.perf_counter()
    body = b""
    try:
        async with asyncio.timeout(endpoint.timeout):
            async with client.stream(
                endpoint.method,
                url,
                headers=endpoint.headers,
                timeout=endpoint.timeout,
                follow_redirects=endpoint.follow_redirects,
            ) as response:
                if endpoint.contains is not None and endpoint.method == "GET":
                    async for chunk in response.aiter_bytes():
                        body += chunk
                        if len(body) >= MAX_BODY_BYTES:
                            break
                else:
                    await response.aclose()
        result["latency_ms"] = (time.perf_counter() - started) * 1000
    except (TimeoutError, httpx.TimeoutException):
        return _down(result, f"timed out after {endpoint.timeout:g}s", https)
    except httpx.HTTPError as exc:
        return _down(result, _describe(exc), https)
    result["status_code"] = response.status_code
    if https:
        result["tls_verified"] = int(endpoint.verify_tls)
    if endpoint.contains is not None:
        text = body.decode(response.encoding or "utf-8", errors="replace")
        result["content_matched"] = int(endpoint.contains in text)
    error = None
    if response.status_code not in endpoint.expected_status:
        expected = ", ".join(str(code) for code in endpoint.expected_status)
        error = f"status {response.status_code}, expected {expected}"
    elif result.get("content_matched") == 0:
        error = "the expected content is missing from the body"
    if error is not None:
        result["error"] = error
    result["up"] = int(error is None)
    return result


def _down(result: dict[str, Any], error: str, https: bool) -> dict[str, Any]:
    result["up"] = 0
    result["error"] = error
    if https:
        result["tls_verified"] = 0
    return result


def _describe(exc: httpx.HTTPError) -> str:
    """One line on why no answer came; TLS verification failures say so plainly."""
    import httpx

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    if isinstance(exc, httpx.ConnectError):
        return f"connection failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _endpoint_name(process: str, port: int) -> str:
    """``"grafana-3000"``: a process name made safe as a metric key (no dots) and
    short enough for ``Endpoint.name``."""
    safe = "".join(c if c.isalnum() or c in "-_" else "-" for c in process[:64]).strip("-")
    return f"{safe or 'http'}-{port}"
